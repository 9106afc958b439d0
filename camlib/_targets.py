"""Input checks, layer lookup, target and score resolution (private).

Every public method of camlib goes through these helpers, so that a learner who passes
something unexpected gets the same clear error, naming the fix, from every method.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "SCORES",
    "check_input",
    "place_like_model",
    "find_layer",
    "check_output",
    "resolve_target",
    "select_score",
    "as_pair",
]

SCORES = ("logit", "softmax", "log_softmax")


def check_input(x: object) -> Tensor:
    """Return ``x`` if it is a finite floating-point (N, C, H, W) tensor, else raise."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"x must be a torch.Tensor of shape (N, C, H, W); got {type(x).__name__}. "
            "Convert it with torch.as_tensor(x, dtype=torch.float32)."
        )
    if x.ndim != 4:
        hint = " For a single image use x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(
            f"x must be a 4-D batch of images (N, C, H, W); got shape {tuple(x.shape)}.{hint}"
        )
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got {x.dtype}. Use x.float().")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch (N = 0); pass at least one image.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            "x contains NaN or infinite values; clean the input first "
            "(for example torch.nan_to_num(x)) so that the explanation is meaningful."
        )
    return x


def place_like_model(model: nn.Module, x: Tensor) -> Tensor:
    """Move ``x`` to the device and floating dtype of the model's first parameter or buffer."""
    ref = next(model.parameters(), None)
    if ref is None:
        ref = next(model.buffers(), None)
    if ref is None:
        return x
    dtype = ref.dtype if ref.is_floating_point() else x.dtype
    return x.to(device=ref.device, dtype=dtype)


def find_layer(model: nn.Module, layer: object, what: str = "layer") -> tuple[str, nn.Module]:
    """Resolve ``layer`` (a submodule of ``model`` or its dotted name) to ``(name, module)``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    named = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for name, module in named.items():
            if module is layer:
                return name, module
        raise ValueError(
            f"the module passed as {what}= is not inside this model. Pass one of the model's own "
            f"submodules or its dotted name, e.g. one of {_some_names(named)}."
        )
    if isinstance(layer, str):
        if layer in named and layer != "":
            return layer, named[layer]
        candidates = [n for n in named if n]
        close = difflib.get_close_matches(layer, candidates, n=5, cutoff=0.4)
        hint = f"Did you mean one of {close}?" if close else f"Available names include {_some_names(named)}."
        raise ValueError(f"{what}={layer!r} is not a submodule of this model. {hint}")
    raise TypeError(
        f"{what} must be an nn.Module inside the model or its dotted name (str); "
        f"got {type(layer).__name__}."
    )


def _some_names(named: dict[str, nn.Module], k: int = 8) -> list[str]:
    names = [n for n in named if n]
    return names[-k:]


def check_output(out: object, n: int) -> Tensor:
    """Check that the model returned one score per class: a tensor of shape (N, classes)."""
    if not isinstance(out, Tensor):
        raise TypeError(
            f"the model must return a tensor of shape (N, classes); got {type(out).__name__}. "
            "Wrap it so that forward returns the logits tensor."
        )
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(
            f"the model output must have shape (N, classes) = ({n}, classes); got {tuple(out.shape)}. "
            "Wrap the model so that it returns one logit per class, e.g. "
            "nn.Sequential(model, nn.Flatten())."
        )
    return out


def resolve_target(target: object, out: Tensor) -> Tensor:
    """Turn ``target`` into a (N,) long tensor of class indices, checked against ``out``.

    ``None`` -> ``out.argmax(1)``; an int -> broadcast to the batch; a sequence, 1-D
    tensor or numpy array of length N -> one class per sample.
    """
    n, c = out.shape
    device = out.device
    if target is None:
        return out.detach().argmax(dim=1)
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(target)
    if isinstance(target, bool):
        raise TypeError("target must be an int class index, not a bool.")
    if isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long, device=device)
    elif isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"target tensor must hold integer class indices; got dtype {target.dtype}.")
        if target.ndim == 0:
            t = torch.full((n,), int(target.item()), dtype=torch.long, device=device)
        elif target.ndim == 1:
            t = target.to(device=device, dtype=torch.long)
        else:
            raise ValueError(
                f"target must be an int or a 1-D sequence of length N = {n}; got a tensor of shape "
                f"{tuple(target.shape)}. Use target.flatten() if it holds one class per image."
            )
    elif isinstance(target, Sequence) and not isinstance(target, str):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in target):
            raise TypeError("target sequence must contain int class indices only.")
        t = torch.tensor([int(v) for v in target], dtype=torch.long, device=device)
    else:
        raise TypeError(
            f"target must be None (argmax), an int, or a sequence/1-D tensor of length N; "
            f"got {type(target).__name__}."
        )
    if t.shape[0] != n:
        raise ValueError(
            f"target has {t.shape[0]} entries but the batch has N = {n} images. Pass one class per "
            "image, or a single int to use the same class for the whole batch."
        )
    if bool(((t < 0) | (t >= c)).any()):
        bad = t[(t < 0) | (t >= c)].tolist()
        raise ValueError(
            f"target class(es) {bad} out of range: the model has {c} classes, so use 0..{c - 1}."
        )
    return t


def select_score(out: Tensor, target: Tensor, score: str) -> Tensor:
    """The explained score per sample: logit ``Y^c``, ``softmax(Y)_c`` or ``log softmax(Y)_c``."""
    if score == "logit":
        s = out
    elif score == "softmax":
        s = torch.softmax(out, dim=1)
    elif score == "log_softmax":
        s = torch.log_softmax(out, dim=1)
    else:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
    return s.gather(1, target.view(-1, 1)).squeeze(1)


def as_pair(value: object, name: str) -> tuple[int, int]:
    """An int or a pair of ints as ``(rows, cols)``; both positive."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols); got {value!r}.")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive; got {pair}.")
    return pair
