"""The course CNNs, MTCNN's O-Net, their bundled weights (SHA-256 checked), an ImageNet helper.

Bundled networks, all loaded by :func:`load_model` in eval mode on the CPU:

* ``"gap"``, ``"fc"``, ``"spurious"`` (:data:`MODEL_NAMES`): the course's own shape classifiers,
  trained by ``python -m camlib.training``; ``"permuted"``, the ``gap`` architecture trained on
  permuted labels (the data-randomisation test of notebook 08);
* ``"onet"``: the O-Net of MTCNN (Zhang, Zhang, Li & Qiao, IEEE Signal Processing Letters
  2016), a real face network trained on real photographs; its weights are copied byte for
  byte from the facenet-pytorch 2.6.0 wheel (MIT licence, see
  ``camlib/weights/LICENSE-facenet-pytorch``) and are never retrained here. See :class:`ONet`.

Every model takes images in [0, 1] (0 = black, 0.5 = grey) and normalises inside, so the same
baselines (0 = black, 0.5 = grey) mean the same thing for all of them.

The course models normalise as ``z = (x - 0.5) / 0.25``, so a grey baseline is the all-zero
input of the first convolution.
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
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from .data import CLASSES

__all__ = [
    "Normalize",
    "ShapesGAPNet",
    "ShapesFCNet",
    "ONet",
    "ONetOutputs",
    "FlattenWHC",
    "MODEL_NAMES",
    "THIRD_PARTY_MODELS",
    "ALL_MODELS",
    "ONET_SIZE",
    "ONET_HEADS",
    "ONET_LANDMARKS",
    "ONET_OUTPUT_NAMES",
    "WEIGHTS_DIR",
    "WeightsError",
    "build_model",
    "weights_info",
    "weights_path",
    "sha256_file",
    "load_model",
    "landmarks_to_pixels",
    "pixels_to_landmarks",
    "imagenet_model",
]

#: The course models, trained by ``python -m camlib.training`` (which writes only these).
MODEL_NAMES: tuple[str, ...] = ("gap", "fc", "spurious", "permuted")
#: Bundled networks trained elsewhere; their files are checked, never regenerated, by camlib.
THIRD_PARTY_MODELS: tuple[str, ...] = ("onet",)
#: Every name :func:`load_model` accepts.
ALL_MODELS: tuple[str, ...] = MODEL_NAMES + THIRD_PARTY_MODELS
WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
#: How to retrain the course models' weight files (``python -m camlib.training`` needs ``--out``).
_REGENERATE = (
    "`python -m camlib.training --out DIR`, DIR being the weights folder (in a repository "
    "checkout `python3 course.py weights` retrains into camlib/weights), or reinstall camlib"
)
_RESTORE_ONET = (
    "pip download --no-deps facenet-pytorch==2.6.0 -d DIR, then "
    "python -m camlib.provenance onet DIR/facenet_pytorch-2.6.0-py3-none-any.whl --restore"
)


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

    output_names = CLASSES

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

    output_names = CLASSES

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


# ---------------------------------------------------------------------------------------------
# MTCNN's O-Net

#: Side of O-Net's square input crop in pixels.
ONET_SIZE: int = 48
#: What :class:`ONet`'s ``forward`` returns, chosen by ``head=``.
ONET_HEADS: tuple[str, ...] = ("face", "box", "landmarks")
#: O-Net's five facial points in the order of its landmark outputs. "left" and "right" are the
#: image's (the viewer's): ``left_eye`` is the eye on the left of the picture, which is the
#: person's right eye; ``mouth_left`` is the mouth corner on the left of the picture.
ONET_LANDMARKS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: ``model.output_names`` of each head (what a ``target`` string selects).
ONET_OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "face": ("non_face", "face"),
    "box": ("left_shift", "top_shift", "right_shift", "bottom_shift"),
    "landmarks": tuple(f"{p}_x" for p in ONET_LANDMARKS) + tuple(f"{p}_y" for p in ONET_LANDMARKS),
}
_ONET_OUTPUT_KIND = {"face": "classification", "box": "regression", "landmarks": "regression"}


class FlattenWHC(nn.Module):
    """Flatten (N, C, H, W) in width-height-channel order: ``x.permute(0, 3, 2, 1).flatten(1)``.

    Feature ``w * (H * C) + h * C + c`` of the result is ``x[n, c, h, w]``. O-Net's ``dense5``
    was trained on this order (a trace of the original MTCNN, which ran on transposed images).
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 3, 2, 1).flatten(1)


class ONetOutputs(NamedTuple):
    """All three heads of O-Net for one batch (from one pass through the shared trunk).

    Attributes:
        face: (N, 2) logits ``(non_face, face)``.
        box: (N, 4) shifts of the crop's left, top, right and bottom edges, as fractions of the
            crop's side: the refined box is ``left + s * box[:, 0]``, ``top + s * box[:, 1]``,
            ``right + s * box[:, 2]``, ``bottom + s * box[:, 3]`` for a crop of side ``s``.
        landmarks: (N, 10) the five points' x coordinates, then their y coordinates, as
            fractions of the crop's side (see :func:`landmarks_to_pixels`).
    """

    face: Tensor
    box: Tensor
    landmarks: Tensor

    @property
    def face_probability(self) -> Tensor:
        """(N,) ``softmax(face)[:, 1] = sigmoid(z_face - z_non_face)``."""
        return self.face.softmax(dim=1)[:, 1]

    @property
    def landmark_pixels(self) -> Tensor:
        """(N, 5, 2) the landmarks as (x, y) pixel coordinates in the 48 x 48 crop."""
        return landmarks_to_pixels(self.landmarks)


def landmarks_to_pixels(landmarks: Tensor, size: int = ONET_SIZE) -> Tensor:
    """O-Net's landmark outputs (N, 10) -> (x, y) pixel coordinates (N, 5, 2) in the crop.

    ``x_k = size * u_k - 0.5`` and ``y_k = size * v_k - 0.5``, where ``u_k`` (outputs 0-4) and
    ``v_k`` (outputs 5-9) are fractions of the crop's width and height. Pixel coordinates follow
    matplotlib's ``imshow`` and scikit-image: the pixel in row ``i``, column ``j`` has its centre
    at ``(x, y) = (j, i)``, so the crop spans ``[-0.5, size - 0.5]`` and a point can be drawn with
    ``plt.imshow(img); plt.plot(x, y)``. Points follow :data:`ONET_LANDMARKS`.

    (facenet-pytorch's detector maps the same fractions with ``w * u + x1 - 1``, a convention
    carried over from MATLAB's 1-based indices, 0.5 px away from this one. Neither the hand
    annotations of :mod:`camlib.faces` (O-Net is 0.1 to 1.3 px from them) nor mirroring the
    100 LFW faces (the network's own centre lies about 0.2 px from this convention and 0.3 px
    from that one) can tell the two apart; this one treats the crop's two sides alike.)
    """
    if not isinstance(landmarks, Tensor) or landmarks.ndim != 2 or landmarks.shape[1] != 10:
        raise ValueError("expected O-Net's landmark outputs of shape (N, 10), e.g. "
                         "load_model('onet', head='landmarks')(x) or model.outputs(x).landmarks")
    u, v = landmarks[:, :5], landmarks[:, 5:]
    return torch.stack((size * u - 0.5, size * v - 0.5), dim=-1)


def pixels_to_landmarks(points: Tensor, size: int = ONET_SIZE) -> Tensor:
    """Inverse of :func:`landmarks_to_pixels`: (N, 5, 2) pixel (x, y) -> (N, 10) fractions."""
    if not isinstance(points, Tensor) or points.ndim != 3 or points.shape[1:] != (5, 2):
        raise ValueError("expected (N, 5, 2) pixel coordinates (x, y) of the five landmarks")
    frac = (points + 0.5) / size
    return torch.cat((frac[..., 0], frac[..., 1]), dim=1)


def _check_head(head: object) -> str:
    if not isinstance(head, str) or head not in ONET_HEADS:
        raise ValueError(f"unknown O-Net head {head!r}; choose one of {ONET_HEADS}: 'face' "
                         "(2 logits: non-face, face), 'box' (4 edge shifts) or 'landmarks' "
                         "(10 coordinates: five x, then five y)")
    return head


def _check_onet_input(x: object) -> None:
    """Cheap shape checks so that wrong input fails with a message that says what to do."""
    if not isinstance(x, Tensor):
        raise TypeError(f"O-Net takes a torch.Tensor of shape (N, 3, 48, 48) in [0, 1]; got "
                        f"{type(x).__name__}. Prepare images with camlib.faces.onet_input(images).")
    shape = tuple(x.shape)
    fix = "Prepare images with camlib.faces.onet_input(images), which also resizes them."
    if x.ndim != 4:
        hint = " For one image use x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(f"O-Net takes a batch of shape (N, 3, 48, 48); got {shape}.{hint} {fix}")
    if shape[1] != 3:
        if shape[-1] == 3:
            raise ValueError(f"O-Net takes channels first, (N, 3, 48, 48); got {shape}, which "
                             f"looks channels-last: use x.permute(0, 3, 1, 2). {fix}")
        raise ValueError(f"O-Net takes RGB images with 3 channels, (N, 3, 48, 48); got {shape}. "
                         f"A greyscale image must be repeated to three channels. {fix}")
    if shape[2:] != (ONET_SIZE, ONET_SIZE):
        raise ValueError(f"O-Net takes 48 x 48 crops, (N, 3, 48, 48); got {shape}: its dense "
                         f"layer fixes the size. {fix} (camlib.faces.lfw_subset() gives the "
                         f"LFW images ready for O-Net.)")


class ONet(nn.Module):
    """The O-Net of MTCNN: a 48 x 48 face classifier, box refiner and landmark locator.

    Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment Using Multitask Cascaded
    Convolutional Networks", IEEE Signal Processing Letters 23(10), 2016. Architecture written
    for camlib from the published layer list; weights: :func:`load_model` ``("onet")``.

    Input: ``x`` of shape (N, 3, 48, 48), values in [0, 1] (0 = black, 0.5 = grey), RGB (in
    BGR order the two portrait faces of :func:`camlib.faces.face_photos` lose about a quarter
    of their log-odds), rows top to bottom and columns left to right as the image is displayed
    (do not transpose: a transposed face lies on its side and is mostly missed, see
    :mod:`camlib.faces`). The crop should be a square box around one face, forehead to chin. ``norm`` maps [0, 1] to
    MTCNN's scaling ``(255 x - 127.5) / 128 = (x - 0.5) / (128 / 255)``, so 0.5 (grey) enters
    the first convolution as 0. Use :func:`camlib.faces.onet_input` to prepare other images;
    a greyscale (N, 1, H, W), channels-last or non-48 x 48 input raises a ``ValueError``.

    Layers (dotted names for ``layer=``), with the shape of their output for one image::

        norm                                      (3, 48, 48)
        conv1 3->32, 3x3    prelu1    pool1 3/2   (32, 46, 46) -> (32, 23, 23)
        conv2 32->64, 3x3   prelu2    pool2 3/2   (64, 21, 21) -> (64, 10, 10)
        conv3 64->64, 3x3   prelu3    pool3 2/2   (64, 8, 8)   -> (64, 4, 4)
        conv4 64->128, 2x2  prelu4                (128, 3, 3)
        flatten (width-height-channel order, :class:`FlattenWHC`)   (1152,)
        dense5 1152->256    prelu5                (256,)
        dense6_1 256->2 (face logits)  dense6_2 256->4 (box)  dense6_3 256->10 (landmarks)

    Pools are max-pools with ``ceil_mode=True``. Good CAM layers: ``"prelu3"`` (8 x 8) and
    ``"prelu4"`` (3 x 3, the last spatial layer), or the convolutions before them.

    Activations are signed. ``PReLU(z) = max(0, z) + a * min(0, z)`` with a learnt slope ``a``
    per channel: where ``a > 0`` the channel is negative for ``z < 0``; where ``a < 0`` (106 of
    the 128 channels of ``prelu4``) it is never negative but V-shaped, not monotone. Like ReLU,
    PReLU is piecewise linear and positively homogeneous (``PReLU(t z) = t PReLU(z)`` for
    ``t > 0``); what changes is the sign. The course's arguments that assume non-negative
    activations (CAM maps as sums of non-negative parts, Grad-CAM++'s bounds, XGrad-CAM's
    axioms as derived for ReLU networks) therefore need not hold here.

    Heads. ``forward`` returns one head, chosen at construction, as an (N, outputs) tensor, so
    that every camlib method explains ``model(x)[n, target]``:

    * ``head="face"`` (default): 2 logits, ``output_names = ("non_face", "face")``,
      ``output_kind = "classification"``. The face probability is ``p = softmax(...)[:, 1] =
      sigmoid(z_face - z_non_face)``; its gradient is ``p (1 - p)`` times that of the log-odds
      ``z_face - z_non_face``, so a map built from the gradient at ``x`` (saliency, Grad-CAM)
      with ``score="softmax"`` is the log-odds map times a positive number per image (path
      methods such as Integrated Gradients differ), while ``score="logit"`` explains
      ``z_face`` alone.
    * ``head="box"``: 4 shifts of the crop's edges as fractions of its side,
      ``output_names = ("left_shift", "top_shift", "right_shift", "bottom_shift")``,
      ``output_kind = "regression"``.
    * ``head="landmarks"``: 10 coordinates, ``output_names = ("left_eye_x", "right_eye_x",
      "nose_x", "mouth_left_x", "mouth_right_x", "left_eye_y", ..., "mouth_right_y")``,
      fractions of the crop's side (:func:`landmarks_to_pixels` gives pixels),
      ``output_kind = "regression"``. "Left" is the image's left (:data:`ONET_LANDMARKS`).

    For a regression head only ``score="logit"`` (the raw output) makes sense. All heads share
    one trunk and the same weights: :meth:`with_head` gives the same network (the same
    parameter tensors) with another head, :meth:`outputs` all three heads from one pass.
    """

    def __init__(self, head: Literal["face", "box", "landmarks"] = "face") -> None:
        super().__init__()
        self._head = _check_head(head)
        self.norm = Normalize(mean=0.5, std=128.0 / 255.0)
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.flatten = FlattenWHC()
        self.dense5 = nn.Linear(128 * 3 * 3, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    @property
    def head(self) -> str:
        """Which head ``forward`` returns: ``"face"``, ``"box"`` or ``"landmarks"``."""
        return self._head

    @property
    def output_names(self) -> tuple[str, ...]:
        """Name of each output of ``forward`` (a ``target`` may be one of these strings)."""
        return ONET_OUTPUT_NAMES[self._head]

    @property
    def output_kind(self) -> str:
        """``"classification"`` for the face head, ``"regression"`` for box and landmarks."""
        return _ONET_OUTPUT_KIND[self._head]

    def extra_repr(self) -> str:
        return f"head={self._head!r}"

    def trunk(self, x: Tensor) -> Tensor:
        """The shared 256 features ``prelu5(dense5(...))`` that all three heads read: (N, 256)."""
        _check_onet_input(x)
        a = self.pool1(self.prelu1(self.conv1(self.norm(x))))
        a = self.pool2(self.prelu2(self.conv2(a)))
        a = self.pool3(self.prelu3(self.conv3(a)))
        a = self.prelu4(self.conv4(a))
        return self.prelu5(self.dense5(self.flatten(a)))

    def forward(self, x: Tensor) -> Tensor:
        """The selected head's outputs for ``x`` (N, 3, 48, 48) in [0, 1]: (N, 2 | 4 | 10)."""
        h = self.trunk(x)
        if self._head == "face":
            return self.dense6_1(h)
        if self._head == "box":
            return self.dense6_2(h)
        return self.dense6_3(h)

    def outputs(self, x: Tensor) -> ONetOutputs:
        """All three heads from one pass: ``ONetOutputs(face, box, landmarks)``."""
        h = self.trunk(x)
        return ONetOutputs(self.dense6_1(h), self.dense6_2(h), self.dense6_3(h))

    def with_head(self, head: Literal["face", "box", "landmarks"]) -> "ONet":
        """The same network with another head: shares every layer (and parameter) with ``self``.

        Changing a weight of one changes the other, and a hook on a layer of one fires for
        both. Use :func:`load_model` ``("onet", head=...)`` for an independent copy.
        """
        other = ONet(head)
        for name, module in self.named_children():
            setattr(other, name, module)
        other.train(self.training)
        return other


_ARCH = {"gap": ShapesGAPNet, "fc": ShapesFCNet, "spurious": ShapesGAPNet, "permuted": ShapesGAPNet, "onet": ONet}


def _check_name(name: str) -> None:
    """Accept only the course models (what :mod:`camlib.training` may train and overwrite)."""
    if name in THIRD_PARTY_MODELS:
        raise ValueError(
            f"{name!r} is not a course model: its weights were trained elsewhere and are only "
            f"checked by camlib, never retrained or overwritten (re-check them against the "
            f"original wheel with `python -m camlib.provenance {name} WHEEL`). "
            f"The course models are {MODEL_NAMES}"
        )
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")


def _check_any_name(name: object) -> str:
    if not isinstance(name, str) or name not in ALL_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {ALL_MODELS}")
    return name


def build_model(
    name: Literal["gap", "fc", "spurious", "onet"],
    *,
    head: Literal["face", "box", "landmarks"] | None = None,
) -> nn.Module:
    """A freshly initialised (untrained) model of the architecture used for ``name``.

    ``head`` selects O-Net's output (default ``"face"``); it is an error for the course models.
    """
    _check_any_name(name)
    if name == "onet":
        return ONet("face" if head is None else head)
    if head is not None:
        raise ValueError(f"head= applies only to 'onet'; the course model {name!r} has one "
                         "output (its class logits)")
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
                           f"{_REGENERATE}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _fix_for(name: str) -> str:
    """How to get a good file back: retrain a course model, re-extract a third-party one."""
    if name in THIRD_PARTY_MODELS:
        return f"reinstall camlib, or re-extract it from the original wheel: {_RESTORE_ONET}"
    return f"regenerate it with {_REGENERATE}"


def weights_path(
    name: str, weights_dir: str | os.PathLike | None = None, info: dict | None = None
) -> Path:
    """The weight file recorded for ``name`` in ``weights.json``, checked to stay in the folder.

    The ``file`` field must be a plain relative path inside the weights folder: an absolute
    path, a ``..`` component, a backslash or a symbolic link that resolves outside the folder
    raises :class:`WeightsError`. The file itself need not exist (``load_model`` checks that).
    """
    wdir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    if info is None:
        info = weights_info(wdir)
    if name not in info:
        raise WeightsError(f"weights.json in {wdir} has no entry for {name!r}; "
                           f"{_fix_for(name)}")
    rel = info[name].get("file") if isinstance(info[name], dict) else None
    bad = (not isinstance(rel, str) or rel == "" or "\\" in rel or "\x00" in rel
           or Path(rel).is_absolute() or os.path.isabs(rel) or ".." in Path(rel).parts)
    if not bad:
        root = wdir.resolve()
        target = (wdir / rel).resolve()
        bad = target == root or root not in target.parents
    if bad:
        raise WeightsError(
            f"weights.json in {wdir} gives {name!r} the file {rel!r}, which is not a plain "
            f"relative path inside that folder (absolute paths, '..' and links that leave the "
            f"folder are refused). Restore weights.json from the package"
        )
    return wdir / rel


def load_model(
    name: Literal["gap", "fc", "spurious", "onet"],
    weights_dir: str | os.PathLike | None = None,
    *,
    head: Literal["face", "box", "landmarks"] | None = None,
) -> nn.Module:
    """The bundled model ``name`` with its weights, in eval mode, on the CPU.

    ``name``: a course model (``"gap"``, ``"fc"``, ``"spurious"``) or ``"onet"``, MTCNN's O-Net
    (:class:`ONet`; ``head="face"`` by default, or ``"box"`` / ``"landmarks"``; ``head`` is an
    error for the course models).

    The file's SHA-256 is compared with the one recorded in ``weights.json`` before
    ``torch.load(..., weights_only=True)``; a missing or altered file, or a ``file`` entry
    that points outside the weights folder, raises :class:`WeightsError` (a ``ValueError``)
    that says how to get a good file back (retrain a course model; re-extract O-Net from the
    facenet-pytorch wheel with ``python -m camlib.provenance``).
    ``weights_dir`` (default: the package's ``camlib/weights``) is for tests and retraining.
    """
    _check_any_name(name)
    model = build_model(name, head=head)
    wdir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    try:
        info = weights_info(wdir)
    except WeightsError as err:
        if name in THIRD_PARTY_MODELS:
            raise WeightsError(f"{wdir / 'weights.json'} is missing; reinstall camlib") from err
        raise
    path = weights_path(name, wdir, info)
    entry = info[name]
    if not path.is_file():
        raise WeightsError(f"weight file {path} is missing; {_fix_for(name)}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise WeightsError(
            f"weight file {path} has SHA-256 {digest}, but weights.json records "
            f"{entry['sha256']}: the file was altered or is stale. Restore it from the "
            f"package, or {_fix_for(name)}"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def imagenet_model(
    name: str = "resnet18", pretrained: bool = False, download: bool = False
) -> nn.Module:
    """A torchvision ImageNet classifier in eval mode; downloads only when ``download=True``.

    Unlike the course models it expects ImageNet-normalised input,
    ``(x - IMAGENET_MEAN) / IMAGENET_STD`` (e.g. :func:`camlib.data.photo` with its default
    ``normalize=True``).

    * ``pretrained=False``: random initialisation (seed it yourself for reproducibility).
    * ``pretrained=True``: torchvision's default weights for ``name``, read from torch.hub's
      local cache, ``<torch.hub.get_dir()>/checkpoints/<file>`` (``$TORCH_HOME/hub`` when
      ``TORCH_HOME`` is set). When the file is not there, ``download=False`` (the default)
      raises a ``FileNotFoundError`` that says to pass ``download=True``; ``download=True``
      fetches it into that cache first (checking torchvision's hash prefix) and needs internet.
      Nothing is ever downloaded unless the caller passes ``download=True``. The pretrained
      model gets ``output_names``: the 1000 ImageNet category names, so ``target="tabby"``
      selects a class by name.

    The weights are read with ``torch.load(..., weights_only=True)``.
    """
    import torchvision

    try:
        builder_weights = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as err:
        raise ValueError(f"unknown torchvision model {name!r}, e.g. 'resnet18', "
                         f"'resnet50', 'vgg16'") from err
    if download and not pretrained:
        raise ValueError("download=True only fetches pretrained weights; pass "
                         "pretrained=True as well (or neither, for a random network)")
    model = torchvision.models.get_model(name, weights=None)
    if pretrained:
        weights = builder_weights.DEFAULT
        fname = os.path.basename(weights.url)
        path = Path(torch.hub.get_dir()) / "checkpoints" / fname
        if not path.is_file():
            if not download:
                raise FileNotFoundError(
                    f"pretrained weights for {name} are not in the local torch.hub cache "
                    f"({path}), and camlib downloads nothing unless asked. With internet "
                    f"access, call imagenet_model({name!r}, pretrained=True, download=True) "
                    f"to fetch them ({weights.url}); or copy {fname} into {path.parent}; or "
                    f"use pretrained=False for a random network."
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            match = torch.hub.HASH_REGEX.search(fname)
            torch.hub.download_url_to_file(weights.url, str(path),
                                           hash_prefix=match.group(1) if match else None,
                                           progress=True)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.output_names = tuple(weights.meta["categories"])
    model.eval()
    return model
