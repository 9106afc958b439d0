"""What camlib is given: models, inputs, layers, targets, scores and baselines (private).

This module is the one place where camlib checks its arguments. The methods, camlib.metrics,
camlib.axioms and camlib.widgets all call these helpers, so the same mistake gets the same
error, naming the fix, from every entry point:

* :func:`check_model` -- an ``nn.Module``; a ``torch.compile``'d module is unwrapped to the
  original module (``_orig_mod``), which camlib runs eagerly.
* :func:`check_input` -- a finite floating-point ``(N, C, H, W)`` batch, moved to the model's
  device and dtype (finiteness is checked *after* that cast).
* :func:`find_layer` -- a submodule or its dotted name, with close names suggested.
* :func:`run_model` -- the model's output ``(N, classes)``, checked.
* :func:`resolve_target` -- ``None`` (argmax) | int | ints of length N | output name(s).
* :func:`check_score` / :func:`select_score` -- ``"logit" | "softmax" | "log_softmax"``.
* :func:`score_gradient` -- ``dy/dv``, or an error when ``y`` does not depend on ``v``.
* :func:`baseline_like` -- a float or a tensor broadcast to the input, finite.
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
    "LOW_PRECISION",
    "check_model",
    "check_input",
    "place_like_model",
    "find_layer",
    "run_model",
    "check_output",
    "resolve_target",
    "check_score",
    "select_score",
    "score_gradient",
    "refuse_underflow",
    "baseline_like",
    "check_count",
    "check_seed",
    "check_real",
    "as_pair",
]

SCORES = ("logit", "softmax", "log_softmax")


# --------------------------------------------------------------------------- the model


def unwrap_compiled(module: nn.Module) -> nn.Module:
    """The original module behind (possibly nested) ``torch.compile`` wrappers."""
    while isinstance(getattr(module, "_orig_mod", None), nn.Module):
        module = module._orig_mod
    return module


def check_model(model: object) -> nn.Module:
    """Return the module camlib runs: ``model``, or the original module of a compiled one.

    camlib explains a ``torch.compile``'d model through its original module, eagerly: compiled
    graphs do not give hooks the gradients of intermediate layers.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module; got {type(model).__name__}. Pass the network itself "
            "(for a plain function, wrap it in an nn.Module whose forward calls it)."
        )
    model = unwrap_compiled(model)
    for kind, tensors in (("parameters", model.parameters()), ("buffers", model.buffers())):
        if any(t.is_inference() for t in tensors):
            raise ValueError(
                f"the model's {kind} are inference tensors (the model was created or loaded inside "
                "torch.inference_mode()), so no gradient can flow through them. Create or load the "
                "model outside inference mode; camlib can then explain it even when called inside "
                "torch.inference_mode()."
            )
    return model


def _reference_tensor(model: nn.Module) -> Tensor | None:
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t
    return next(model.parameters(), next(model.buffers(), None))


# --------------------------------------------------------------------------- the input


def check_input(x: object, model: nn.Module | None = None, what: str = "x") -> Tensor:
    """A finite floating-point (N, C, H, W) tensor on the model's device and dtype.

    The result is a normal tensor, never an inference tensor (so that it can enter autograd),
    and it is never the caller's tensor object when a copy was needed. Finiteness is checked
    after the cast, so an input that overflows the model's dtype is refused too.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor of shape (N, C, H, W); got {type(x).__name__}. "
            f"Convert it with torch.as_tensor({what}, dtype=torch.float32)."
        )
    if x.ndim != 4:
        hint = f" For a single image use {what}.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(
            f"{what} must be a 4-D batch of images (N, C, H, W); got shape {tuple(x.shape)}.{hint}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor; got {x.dtype}. Use {what}.float().")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch (N = 0); pass at least one image.")
    if x.is_inference():
        with torch.inference_mode(False):
            x = x.clone()
    if model is not None:
        x = place_like_model(model, x)
    if not bool(torch.isfinite(x).all()):
        dtype = f" after conversion to the model's dtype {x.dtype}" if model is not None else ""
        raise ValueError(
            f"{what} contains NaN or infinite values{dtype}; clean the input first (for example "
            "torch.nan_to_num) or scale it into the range the model's dtype can hold."
        )
    return x


def place_like_model(model: nn.Module, x: Tensor) -> Tensor:
    """Move ``x`` to the device and floating dtype of the model's first floating parameter or buffer."""
    ref = _reference_tensor(model)
    if ref is None:
        return x
    dtype = ref.dtype if ref.is_floating_point() else x.dtype
    return x.to(device=ref.device, dtype=dtype)


def _first_conv(model: nn.Module) -> nn.Module | None:
    return next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)


def run_model(model: nn.Module, x: Tensor, batch_size: int | None = None) -> Tensor:
    """``model(x)`` (``batch_size`` images at a time when given), checked to be (N, classes).

    A forward pass that fails because ``x`` has the wrong number of channels for the model's
    first convolution raises camlib's ValueError instead of the convolution's own message.
    """
    chunks = [x] if batch_size is None else [x[i : i + batch_size] for i in range(0, x.shape[0], batch_size)]
    outs = []
    for chunk in chunks:
        try:
            out = model(chunk)
        except RuntimeError as exc:
            conv = _first_conv(model)
            if conv is not None and conv.in_channels != x.shape[1]:
                raise ValueError(
                    f"x has {x.shape[1]} channels but the model's first convolution expects "
                    f"{conv.in_channels}; pass images of shape (N, {conv.in_channels}, H, W) "
                    "(for a grey image, repeat it: x.expand(-1, 3, -1, -1))."
                ) from exc
            raise
        outs.append(_check_values(check_output(out, chunk.shape[0]), chunk))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


#: floating dtypes narrow enough for a network's values to overflow or underflow in practice
LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_values(out: Tensor, x: Tensor) -> Tensor:
    """Refuse outputs that no explanation can be honest about, for a finite input ``x``.

    A non-finite output from a finite input means the model overflowed (typically in float16);
    every gradient and score built on it would be NaN. In float16 / bfloat16 an output that is
    exactly zero for every class of a non-zero input means its values underflowed: every
    explanation of it would be a zero map that says nothing about the model.
    """
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise ValueError(
            f"the model's output contains NaN or infinite values although its input is finite "
            f"(dtype {out.dtype}): its values overflowed or the model divides by zero. Run the model "
            "in a wider dtype (model.float() or model.double()) or fix the model."
        )
    if out.dtype in LOW_PRECISION and not bool(out.detach().any()) and bool(x.detach().any()):
        raise ValueError(
            f"every output of the model is exactly 0 in {out.dtype}: its values underflowed, so any "
            "explanation of it would be an all-zero map. Run the model in float32 (model.float())."
        )
    return out


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


# --------------------------------------------------------------------------- layers


def _strip_compiled(name: str) -> str:
    return ".".join(part for part in name.split(".") if part != "_orig_mod")


def find_layer(model: nn.Module, layer: object, what: str = "layer") -> tuple[str, nn.Module]:
    """Resolve ``layer`` (a submodule of ``model`` or its dotted name) to ``(name, module)``.

    Names of compiled submodules may include or omit their ``_orig_mod`` segment; the name
    returned never includes it.
    """
    model = check_model(model)
    named = {_strip_compiled(n): unwrap_compiled(m) for n, m in model.named_modules()}
    if isinstance(layer, nn.Module):
        layer = unwrap_compiled(layer)
        for name, module in named.items():
            if module is layer and name:
                return name, module
        raise ValueError(
            f"the module passed as {what}= is not inside this model. Pass one of the model's own "
            f"submodules or its dotted name, e.g. one of {_some_names(named)}."
        )
    if isinstance(layer, str):
        key = _strip_compiled(layer)
        if key in named and key != "":
            return key, named[key]
        candidates = [n for n in named if n]
        close = difflib.get_close_matches(key, candidates, n=5, cutoff=0.4)
        hint = f"Did you mean one of {close}?" if close else f"Available names include {_some_names(named)}."
        raise ValueError(f"{what}={layer!r} is not a submodule of this model. {hint}")
    raise TypeError(
        f"{what} must be an nn.Module inside the model or its dotted name (str); "
        f"got {type(layer).__name__}."
    )


def _some_names(named: dict[str, nn.Module], k: int = 8) -> list[str]:
    names = [n for n in named if n]
    return names[-k:]


# --------------------------------------------------------------------------- targets


def _output_index(name: str, model: nn.Module | None, c: int) -> int:
    names = getattr(model, "output_names", None)
    if names is None:
        raise TypeError(
            f"target={name!r} is a name, but this model has no output_names; pass the class index "
            f"(an int in 0..{c - 1}) or set model.output_names to a sequence of {c} names."
        )
    names = list(names)
    if name in names:
        return names.index(name)
    close = difflib.get_close_matches(name, [str(n) for n in names], n=5, cutoff=0.5)
    hint = f"Did you mean one of {close}?" if close else f"The names are {names[:12]}{' ...' if len(names) > 12 else ''}."
    raise ValueError(f"target={name!r} is not one of the model's output_names. {hint}")


def _check_range(values: list[int], c: int) -> None:
    bad = list(dict.fromkeys(v for v in values if not 0 <= v < c))
    if bad:
        shown = bad[:8]
        raise ValueError(
            f"target class(es) {shown} out of range: the model has {c} outputs, so use 0..{c - 1}."
        )


def _as_index(value: object, model: nn.Module | None, c: int) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("target must be an int class index, not a bool.")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        return _output_index(value, model, c)
    if isinstance(value, numbers.Real):
        raise TypeError(
            f"target entries must be int class indices or output names (str); got {type(value).__name__} "
            f"{value!r}. Do not round a float: pass the class index itself."
        )
    raise TypeError(
        f"target entries must be int class indices or output names (str); got {type(value).__name__}."
    )


def resolve_target(target: object, out: Tensor, model: nn.Module | None = None) -> Tensor:
    """Turn ``target`` into a (N,) long tensor of class indices, checked against ``out`` (N, classes).

    ``None`` -> ``out.argmax(1)``; an int or a name -> broadcast to the batch; a sequence,
    1-D tensor or numpy array of length N (ints or names) -> one class per sample. Names are
    looked up in ``model.output_names``. Floats, bools and out-of-range indices raise.
    """
    n, c = out.shape
    device = out.device
    if target is None:
        return out.detach().argmax(dim=1)
    if isinstance(target, np.ndarray):
        if target.dtype.kind in "US":
            target = target.tolist()
        elif target.dtype.kind in "iu":
            target = torch.from_numpy(np.ascontiguousarray(target).astype(np.int64))
        else:
            raise TypeError(
                f"target array must hold integer class indices; got dtype {target.dtype}. Do not "
                "round floats: pass the class indices themselves (e.g. labels.astype(int))."
            )
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(
                f"target tensor must hold integer class indices; got dtype {target.dtype}. Do not "
                "round floats: pass the class indices themselves (e.g. labels.long())."
            )
        if target.ndim > 1:
            raise ValueError(
                f"target must be an int or a 1-D sequence of length N = {n}; got a tensor of shape "
                f"{tuple(target.shape)}. Use target.flatten() if it holds one class per image."
            )
        values = target.reshape(-1).tolist() if target.ndim == 1 else [int(target.item())] * n
    elif isinstance(target, (str, numbers.Real, bool, np.bool_)):
        values = [_as_index(target, model, c)] * n
    elif isinstance(target, Sequence):
        values = [_as_index(v, model, c) for v in target]
    else:
        raise TypeError(
            "target must be None (argmax), an int, an output name, or a sequence / 1-D tensor of "
            f"length N; got {type(target).__name__}."
        )
    if len(values) != n:
        raise ValueError(
            f"target has {len(values)} entries but the batch has N = {n} images. Pass one class per "
            "image, or a single int to use the same class for the whole batch."
        )
    _check_range(values, c)
    return torch.tensor(values, dtype=torch.long, device=device)


# --------------------------------------------------------------------------- scores


def check_score(score: object, model: nn.Module | None = None) -> str:
    """``score`` if it is one of :data:`SCORES` and allowed for the model's outputs, else raise.

    A model with ``output_kind = "regression"`` returns values, not class logits: only
    ``score="logit"`` (the raw output) is meaningful for it.
    """
    if not isinstance(score, str) or score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}.")
    if score != "logit" and getattr(model, "output_kind", None) == "regression":
        raise ValueError(
            f"score={score!r} needs class logits, but this model's outputs are regression values "
            "(model.output_kind = 'regression'); use score='logit' to explain the raw output."
        )
    return score


def select_score(out: Tensor, target: Tensor, score: str, model: nn.Module | None = None) -> Tensor:
    """The explained score per sample: logit ``Y^c``, ``softmax(Y)_c`` or ``log softmax(Y)_c``."""
    check_score(score, model)
    if score == "logit":
        s = out
    elif score == "softmax":
        s = torch.softmax(out, dim=1)
    else:
        s = torch.log_softmax(out, dim=1)
    return s.gather(1, target.to(s.device).view(-1, 1)).squeeze(1)


def score_gradient(y: Tensor, wrt: Tensor, what: str) -> Tensor:
    """``d(sum_n y_n)/d wrt``; a ValueError when the score does not depend on ``wrt`` at all.

    A gradient that is exactly zero is an answer; a score that is not connected to ``wrt`` in
    the autograd graph is a mistake (a ``.detach()``, a layer off the path), never a zero map.
    """
    g = None
    if y.requires_grad:
        (g,) = torch.autograd.grad(y.sum(), wrt, allow_unused=True)
    if g is None:
        raise ValueError(
            f"the explained score does not depend on {what}: no gradient flows from the score back "
            "to it (a .detach() after it, or a module that is not on the path to the output). "
            "Choose a layer or input that the model's output is computed from."
        )
    return g


def refuse_underflow(values: Tensor, what: str, exact: Tensor | None = None) -> Tensor:
    """``values``, unless they are all exactly 0 in float16 / bfloat16 where they should not be.

    Without ``exact``: an all-zero gradient in low precision is refused (it is almost always an
    underflow; run in float32 to tell). With ``exact`` (the same quantity recomputed in float32):
    refused only when that one is not all zero.
    """
    if values.dtype not in LOW_PRECISION or bool(values.any()):
        return values
    if exact is not None and not bool(exact.any()):
        return values
    raise ValueError(
        f"{what} is exactly 0 everywhere in {values.dtype}: the values underflowed, so the map would "
        "be all zero without saying anything about the model. Run the model in float32 "
        "(model.float())."
    )


# --------------------------------------------------------------------------- baselines and counts


def baseline_like(baseline: object, x: Tensor, what: str = "baseline") -> Tensor:
    """A float, or a tensor broadcast to ``x`` ((C,H,W), (1,C,H,W) or (N,C,H,W)), finite.

    The result has ``x``'s device and dtype; finiteness is checked after that cast.
    ``None`` means zeros.
    """
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, (bool, np.bool_)):
        raise TypeError(f"{what} must be a float or a tensor, not a bool.")
    if isinstance(baseline, numbers.Real):
        b = torch.full_like(x, float(baseline))
    elif isinstance(baseline, Tensor):
        b = baseline.detach()
        if b.is_inference():
            with torch.inference_mode(False):
                b = b.clone()
        if not (b.is_floating_point() or b.dtype in (torch.int32, torch.int64, torch.uint8)):
            raise TypeError(f"{what} tensor must hold numbers; got dtype {b.dtype}.")
        b = b.to(device=x.device, dtype=x.dtype)
        try:
            b = torch.broadcast_to(b, x.shape)
        except RuntimeError:
            raise ValueError(
                f"{what} of shape {tuple(baseline.shape)} does not match the input {tuple(x.shape)}; "
                "pass a float, a (C, H, W) image or an (N, C, H, W) batch of the input's size."
            ) from None
        b = b.clone()
    elif isinstance(baseline, np.ndarray):
        raise TypeError(
            f"{what} is a numpy array; convert it with torch.as_tensor({what}) (same shape as one "
            "image (C, H, W) or the batch (N, C, H, W))."
        )
    else:
        raise TypeError(f"{what} must be None, a float or a tensor; got {type(baseline).__name__}.")
    if not bool(torch.isfinite(b).all()):
        raise ValueError(
            f"{what} contains NaN or infinite values (after conversion to {x.dtype}); pass finite values."
        )
    return b


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """A Python or numpy integer ``>= minimum`` (``steps``, ``batch_size``), else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}.")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {int(value)}.")
    return int(value)


def check_seed(value: object, name: str = "seed") -> int:
    """A Python or numpy integer (a random seed), else camlib's TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}.")
    return int(value)


def check_real(value: object, name: str, *, positive: bool = False, minimum: float | None = None) -> float:
    """A finite real number (Python, numpy or 0-d tensor), optionally > 0 or >= ``minimum``."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}.")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}.")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0; got {v}.")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {v}.")
    return v


def as_pair(value: object, name: str) -> tuple[int, int]:
    """An int or a pair of ints as ``(rows, cols)``; both positive."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (Sequence, Tensor, np.ndarray))
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (rows, cols); got {value!r}.")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive; got {pair}.")
    return pair
