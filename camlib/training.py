"""Deterministic training of the course models and the command that regenerates their weights.

``python -m camlib.training --out DIR`` retrains every model in
:data:`camlib.models.MODEL_NAMES` from scratch, writes ``DIR/<name>.pt`` and updates
``DIR/weights.json`` (SHA-256, accuracies, seed, training time; entries of other models, such as
a third-party network's, are kept) and prints the accuracy and time of each. ``--only gap``
retrains one model. The folder is required, and a folder inside site-packages is refused: an
installed camlib's bundled files are never rewritten. In a repository checkout,
``python3 course.py weights`` passes ``--out camlib/weights`` to rewrite the bundled files.

Training minimises the mean cross-entropy ``-(1/B) sum_i log softmax(f(x_i))_{y_i}`` with Adam and
a cosine learning-rate schedule on a training set ``make_shapes(n, seed=TRAIN_SEED + k)``
(the held-out set uses ``TEST_SEED``). During training every convolution is followed by
BatchNorm (:func:`with_batchnorm`); afterwards it is folded into the convolution
(:func:`fold_batchnorm`), so the saved model is the plain BatchNorm-free network of
:mod:`camlib.models`. Determinism: ``torch.manual_seed(seed)``, a seeded
``torch.Generator`` for shuffling, ``torch.use_deterministic_algorithms(True)`` and a fixed
thread count during training (all restored afterwards).

``"permuted"`` is the ``gap`` architecture trained on the same kind of images with their labels
randomly permuted (a seeded permutation of the training labels, so each image carries the label
of another one), until it fits them: the model of Adebayo et al.'s data-randomisation test. Its
record holds ``train_permuted``, the accuracy on the permuted training labels, beside ``test``
(the held-out accuracy on the true labels, near chance).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data as _data
from . import models as _models

__all__ = [
    "TrainConfig",
    "CONFIGS",
    "accuracy",
    "with_batchnorm",
    "fold_batchnorm",
    "train_model",
    "evaluate",
    "regenerate",
    "main",
]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the defaults are the bundled models')."""

    n_train: int = 6000
    epochs: int = 2
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    head_lr: float | None = None  # learning rate of ``.head`` (default: ``lr``)
    spurious: Literal["train"] | None = None
    seed: int = 0
    threads: int = 2
    permute_labels: bool = False  # train on a seeded permutation of the labels (data randomisation)


CONFIGS: dict[str, TrainConfig] = {
    "gap": TrainConfig(),
    # the 4096-input hidden layer of the FC head needs a small Adam step, else its ReLUs die
    "fc": TrainConfig(head_lr=5e-4),
    "spurious": TrainConfig(spurious="train", n_train=6000, epochs=1),
    # memorising labels that carry no information takes many passes over a small set
    "permuted": TrainConfig(n_train=128, epochs=100, permute_labels=True),
}

_DATA_SEED_OFFSET = {"gap": 0, "fc": 1, "spurious": 2, "permuted": 3}


def _training_data(name: str, cfg: TrainConfig) -> tuple[Tensor, Tensor]:
    """The training images of ``name`` and the labels it is trained on (permuted if ``cfg`` says so)."""
    train = _data.make_shapes(cfg.n_train, seed=_data.TRAIN_SEED + 1000 * cfg.seed
                              + _DATA_SEED_OFFSET[name], spurious=cfg.spurious)
    labels = train.labels
    if cfg.permute_labels:
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        labels = labels[torch.randperm(cfg.n_train, generator=gen)]
    return train.images, labels


def with_batchnorm(model: nn.Module) -> nn.Module:
    """Training copy of a course model: each ``features[i]`` conv becomes ``conv -> BatchNorm2d``.

    The conv loses its bias (BatchNorm's shift replaces it). Indices in ``features`` are
    unchanged, so :func:`fold_batchnorm` can map every pair back onto the plain model.
    """
    model = copy.deepcopy(model)
    for i, layer in enumerate(model.features):
        if isinstance(layer, nn.Conv2d):
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                             stride=layer.stride, padding=layer.padding, bias=False)
            model.features[i] = nn.Sequential(conv, nn.BatchNorm2d(layer.out_channels))
    return model


@torch.no_grad()
def fold_batchnorm(trained: nn.Module, plain: nn.Module) -> nn.Module:
    """Fold each eval-mode ``conv -> BatchNorm2d`` pair of ``trained`` into one conv of ``plain``.

    With ``s = gamma / sqrt(running_var + eps)``: ``W' = W * s`` (per output channel) and
    ``b' = beta - running_mean * s``, so ``conv'(x) = BN(conv(x))`` exactly in eval mode (up to
    float32 rounding). The other parameters are copied. Returns ``plain`` in eval mode.
    """
    trained.eval()
    state = {}
    for name, value in trained.state_dict().items():
        if not name.startswith("features."):
            state[name] = value
    for i, layer in enumerate(trained.features):
        if isinstance(layer, nn.Sequential):
            conv, bn = layer[0], layer[1]
            s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            w = conv.weight.double() * s[:, None, None, None]
            b = bn.bias.double() - bn.running_mean.double() * s
            state[f"features.{i}.weight"] = w.float()
            state[f"features.{i}.bias"] = b.float()
    plain.load_state_dict(state)
    plain.eval()
    return plain


@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 250) -> float:
    """Fraction of images whose arg-max logit equals the label: ``mean(argmax f(x) == y)``."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError("images and labels must have the same length")
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        pred = model(images[i:i + batch_size]).argmax(dim=1)
        correct += int((pred == labels[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / images.shape[0]


def train_model(
    name: Literal["gap", "fc", "spurious", "permuted"],
    config: TrainConfig | None = None,
    verbose: bool = False,
) -> tuple[nn.Module, dict]:
    """Train model ``name`` from scratch; return it (eval mode) and a record of the run.

    The record holds ``seed``, ``n_train``, ``epochs``, ``train_seconds`` (training loop only)
    and ``data_seconds`` (generating the training set).
    """
    _models._check_name(name)
    cfg = config if config is not None else CONFIGS[name]
    t0 = time.perf_counter()
    images, labels = _training_data(name, cfg)
    t1 = time.perf_counter()
    with _deterministic(cfg.threads):
        torch.manual_seed(cfg.seed)
        model = with_batchnorm(_models.build_model(name))
        model.train()
        head = list(model.head.parameters()) if hasattr(model, "head") else []
        head_ids = {id(p) for p in head}
        groups = [{"params": [p for p in model.parameters() if id(p) not in head_ids]}]
        if head:
            groups.append({"params": head, "lr": cfg.head_lr or cfg.lr})
        opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = math.ceil(cfg.n_train / cfg.batch_size)
        total = cfg.epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
        gen = torch.Generator().manual_seed(cfg.seed)
        for epoch in range(cfg.epochs):
            perm = torch.randperm(cfg.n_train, generator=gen)
            running = 0.0
            for b in range(steps_per_epoch):
                idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running += float(loss.detach())
            if verbose:
                print(f"  [{name}] epoch {epoch + 1}/{cfg.epochs} "
                      f"loss {running / steps_per_epoch:.4f} "
                      f"({time.perf_counter() - t1:.1f} s)", flush=True)
    t2 = time.perf_counter()
    model = fold_batchnorm(model, _models.build_model(name))
    record = {
        "seed": cfg.seed,
        "n_train": cfg.n_train,
        "epochs": cfg.epochs,
        "spurious": cfg.spurious,
        "permute_labels": cfg.permute_labels,
        "threads": cfg.threads,
        "data_seconds": round(t1 - t0, 2),
        "train_seconds": round(t2 - t1, 2),
    }
    return model, record


def evaluate(name: str, model: nn.Module, n: int = 1000, config: TrainConfig | None = None) -> dict[str, float]:
    """Held-out accuracies: ``test`` for every model, plus cue present/absent/swapped; for a model
    trained on permuted labels also ``train_permuted``, its fit to those labels (``config``: the
    run's settings, default :data:`CONFIGS`)."""
    out: dict[str, float] = {}
    cfg = config if config is not None else CONFIGS.get(name)
    if cfg is not None and cfg.permute_labels:
        images, labels = _training_data(name, cfg)
        out["train_permuted"] = accuracy(model, images, labels)
    if name == "spurious":
        for kind in ("train", "absent", "swapped"):
            ts = _data.test_set(n, spurious=kind)
            out[f"test_cue_{kind}"] = accuracy(model, ts.images, ts.labels)
        out["test"] = out["test_cue_train"]
    else:
        ts = _data.test_set(n)
        out["test"] = accuracy(model, ts.images, ts.labels)
    return out


def _inside_site_packages(path: Path) -> bool:
    """Whether ``path`` lies in an installation folder of Python packages (site-packages)."""
    import site
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    roots.add(site.getusersitepackages())
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots if root)


def regenerate(
    names: tuple[str, ...] = _models.MODEL_NAMES,
    out_dir: str | Path | None = None,
    verbose: bool = True,
    configs: dict[str, TrainConfig] | None = None,
    allow_site_packages: bool = False,
) -> dict:
    """Retrain ``names``, write ``<name>.pt`` and update ``weights.json`` in ``out_dir``.

    ``out_dir=None`` means the bundled folder :data:`camlib.models.WEIGHTS_DIR`. A folder inside
    site-packages (an installed camlib's own files) raises ValueError unless
    ``allow_site_packages``. Entries of ``weights.json`` for other models are kept.
    ``configs`` overrides :data:`CONFIGS` per name (the tests use tiny runs).
    """
    wdir = Path(out_dir) if out_dir is not None else _models.WEIGHTS_DIR
    if not allow_site_packages and _inside_site_packages(wdir):
        raise ValueError(
            f"refusing to write model weights into {wdir}, inside site-packages (an installed "
            "package's files); give another folder, e.g. `python -m camlib.training --out my_weights`"
        )
    wdir.mkdir(parents=True, exist_ok=True)
    jpath = wdir / "weights.json"
    for name in names:
        _models._check_name(name)
    info: dict = {}
    if jpath.is_file():
        with open(jpath, encoding="utf-8") as f:
            info = json.load(f)
    for name in names:
        if verbose:
            print(f"training {name!r} ...", flush=True)
        cfg = (configs or {}).get(name, CONFIGS[name])
        model, record = train_model(name, cfg, verbose=verbose)
        record["accuracy"] = {k: round(v, 4) for k, v in evaluate(name, model, config=cfg).items()}
        path = wdir / f"{name}.pt"
        torch.save(model.state_dict(), path)
        record["file"] = path.name
        record["sha256"] = _models.sha256_file(path)
        record["bytes"] = path.stat().st_size
        record["torch"] = torch.__version__.split("+")[0]
        info[name] = record
        with open(jpath, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        if verbose:
            accs = ", ".join(f"{k} {100 * v:.1f}%" for k, v in record["accuracy"].items())
            print(f"{name}: {accs}; training {record['train_seconds']:.1f} s "
                  f"(+ data {record['data_seconds']:.1f} s); {record['bytes'] / 1e6:.2f} MB",
                  flush=True)
    return info


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m camlib.training --out DIR [--only NAME ...]``."""
    parser = argparse.ArgumentParser(prog="python -m camlib.training",
                                     description="Retrain the camlib course models into a folder.")
    parser.add_argument("--only", nargs="+", choices=_models.MODEL_NAMES,
                        default=list(_models.MODEL_NAMES))
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for <name>.pt and weights.json (created if missing; "
                             "python3 course.py weights passes the repository's camlib/weights)")
    parser.add_argument("--allow-site-packages", action="store_true",
                        help="allow DIR inside site-packages (overwrites an installed package's files)")
    args = parser.parse_args(argv)
    try:
        regenerate(tuple(args.only), args.out, allow_site_packages=args.allow_site_packages)
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
