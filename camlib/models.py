"""The course CNNs, their bundled weights (SHA-256 checked) and a cache-only ImageNet helper.

Both course models take images in [0, 1] (0 = black, 0.5 = grey) and normalise inside:
``z = (x - 0.5) / 0.25``, so a grey baseline is the all-zero input of the first convolution.
They contain no BatchNorm, no Dropout and no in-place operation: the forward pass is a plain
piecewise-linear function (convolutions, ReLU, max-pool, linear), which the exact identities
of the course (for example XGrad-CAM's Euler identity) need. (Training uses BatchNorm after each
convolution for speed; :func:`camlib.training.fold_batchnorm` folds it into the convolution's
weights and bias afterwards, so the bundled model is the plain network.)

``ShapesGAPNet``:  x -> norm -> features (N,64,8,8) -> pool (mean over h, w) -> fc (64 -> 4),
so ``logit_c = b_c + sum_k w_ck * mean_ij A^k_ij`` and CAM applies.

``ShapesFCNet``:   x -> norm -> features (N,64,8,8) -> head: flatten -> Linear(4096, 32)
-> ReLU -> Linear(32, 4); not GAP-linear, so CAM does not apply but Grad-CAM does.

The CAM layer of both is ``"features"`` (the output of its last ReLU).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "Normalize",
    "ShapesGAPNet",
    "ShapesFCNet",
    "MODEL_NAMES",
    "WEIGHTS_DIR",
    "WeightsError",
    "build_model",
    "weights_info",
    "sha256_file",
    "load_model",
    "imagenet_model",
]

MODEL_NAMES: tuple[str, ...] = ("gap", "fc", "spurious")
WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
_REGENERATE = "python -m camlib.training"


class WeightsError(ValueError):
    """A bundled weight file is missing, altered, or does not match weights.json."""


class Normalize(nn.Module):
    """``(x - mean) / std`` with fixed scalars (no parameters, no in-place op)."""

    def __init__(self, mean: float = 0.5, std: float = 0.25) -> None:
        super().__init__()
        self.mean = float(mean)
        self.std = float(std)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


def _features() -> nn.Sequential:
    """Five 3x3 conv layers, three 2x2 max-pools: (N,3,64,64) -> (N,64,8,8), ending in ReLU.

    The receptive field of one output cell is 46 x 46 pixels, larger than every object, so the
    evidence for a shape can gather at the object's centre.
    """
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(48, 64, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(inplace=False),
    )


class GlobalAvgPool(nn.Module):
    """Mean over the spatial axes: (N,K,h,w) -> (N,K), ``a_k = (1/Z) sum_ij A^k_ij``, Z = h*w."""

    def forward(self, a: Tensor) -> Tensor:
        return a.mean(dim=(2, 3))


class ShapesGAPNet(nn.Module):
    """Shapes classifier with a GAP-linear head: ``y = fc(mean_ij features(norm(x)))``.

    ``logit_c = b_c + sum_k w_ck * (1/Z) sum_ij A^k_ij`` with ``A = features(norm(x))``,
    ``Z = h * w`` (8 * 8 for 64 x 64 inputs). Input: (N,3,H,W) in [0, 1].
    """

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.norm = Normalize()
        self.features = _features()
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(self.norm(x))))


class ShapesFCNet(nn.Module):
    """Shapes classifier whose head is not GAP-linear.

    ``y = W2 relu(W1 flatten(A) + b1) + b2`` with ``A = features(norm(x))`` of shape
    (N,64,8,8), hidden width 32. Input: (N,3,64,64) in [0, 1] (the head fixes the size).
    """

    def __init__(self, num_classes: int = 4, hidden: int = 32, spatial: int = 8) -> None:
        super().__init__()
        self.norm = Normalize()
        self.features = _features()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * spatial * spatial, hidden),
            nn.ReLU(inplace=False),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.norm(x)))


_ARCH = {"gap": ShapesGAPNet, "fc": ShapesFCNet, "spurious": ShapesGAPNet}


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")


def build_model(name: Literal["gap", "fc", "spurious"]) -> nn.Module:
    """A freshly initialised (untrained) model of the architecture used for ``name``."""
    _check_name(name)
    return _ARCH[name]()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_info(weights_dir: str | os.PathLike | None = None) -> dict:
    """The parsed ``weights.json``: per model its file, sha256, accuracies, seed and time."""
    wdir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    path = wdir / "weights.json"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; regenerate the bundled weights with "
                           f"`{_REGENERATE}`")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_model(
    name: Literal["gap", "fc", "spurious"],
    weights_dir: str | os.PathLike | None = None,
) -> nn.Module:
    """The course model ``name`` with its bundled weights, in eval mode, on the CPU.

    The file's SHA-256 is compared with the one recorded in ``weights.json`` before
    ``torch.load(..., weights_only=True)``; a missing or altered file raises
    :class:`WeightsError` (a ``ValueError``) that says how to regenerate it.
    ``weights_dir`` (default: the package's ``camlib/weights``) is for tests and retraining.
    """
    _check_name(name)
    wdir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    info = weights_info(wdir)
    if name not in info:
        raise WeightsError(f"weights.json in {wdir} has no entry for {name!r}; regenerate "
                           f"the bundled weights with `{_REGENERATE}`")
    entry = info[name]
    path = wdir / entry["file"]
    if not path.is_file():
        raise WeightsError(f"weight file {path} is missing; regenerate it with `{_REGENERATE}`")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise WeightsError(
            f"weight file {path} has SHA-256 {digest}, but weights.json records "
            f"{entry['sha256']}: the file was altered or is stale. Restore it from the "
            f"package or regenerate it with `{_REGENERATE}`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(name)
    model.load_state_dict(state)
    model.eval()
    return model


def imagenet_model(name: str = "resnet18", pretrained: bool = False) -> nn.Module:
    """A torchvision ImageNet classifier in eval mode; never downloads anything.

    ``pretrained=False``: random initialisation (seed it yourself for reproducibility).
    ``pretrained=True``: the default torchvision weights, but only if their file is already in
    torch.hub's local cache (``<torch.hub.get_dir()>/checkpoints/``); otherwise a
    ``FileNotFoundError`` says how to fetch the file on a machine with internet access.
    """
    import torchvision

    try:
        builder_weights = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as err:
        raise ValueError(f"unknown torchvision model {name!r}, e.g. 'resnet18', "
                         f"'resnet50', 'vgg16'") from err
    model = torchvision.models.get_model(name, weights=None)
    if pretrained:
        weights = builder_weights.DEFAULT
        fname = os.path.basename(weights.url)
        path = Path(torch.hub.get_dir()) / "checkpoints" / fname
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained weights for {name} are not in the local cache ({path}). camlib "
                f"never downloads. On a machine with internet run:\n"
                f"  python -c \"import torchvision; torchvision.models.get_model('{name}', "
                f"weights='DEFAULT')\"\n"
                f"then copy {fname} into {path.parent} here, or use pretrained=False."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    model.eval()
    return model
