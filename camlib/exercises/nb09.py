"""Checks for the exercises of notebook 09 (a real network on real photographs).

* :func:`check_pp_weight_interval` (predict): the interval that holds Grad-CAM++'s channel weight
  ``w++_k = sum_{g > 0} g / (2 + s_k g)`` for **either** sign of ``s_k`` (docs/math.md 7.2 assumes
  ``s_k >= 0``; on O-Net's ``prelu3`` a third of the channels have ``s_k < 0``).
* :func:`check_known_answer_maps` (design): three maps whose landmark pointing game has a known
  answer (1, 0 and chance), the check a measure must pass before it ranks anything.
* :func:`check_xgrad_counterexample` (counterexample): activations and gradients of one image for
  which XGrad-CAM's weight ``sum_ij A g / sum_ij A`` is not an average of the gradients: it lies
  outside ``[min g, max g]``.

Each check runs the learner's answer, compares it with what it must satisfy, and says which idea
is missing, without writing the answer.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = [
    "pp_weight_interval_reference",
    "check_pp_weight_interval",
    "check_known_answer_maps",
    "check_xgrad_counterexample",
]


# --------------------------------------------------------------------------- predict: the Grad-CAM++ interval


def _pp_weights(s: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM++'s eq. 19 weights ``sum_{g > 0} g / (2 + s g)`` for (K,) sums and (K, Z) gradients."""
    pos = g > 0
    den = torch.where(pos, 2 + s[:, None] * g, torch.ones_like(g))
    return torch.where(pos, g / den, torch.zeros_like(g)).sum(dim=1)


def pp_weight_interval_reference(s: Tensor, g: Tensor) -> Tensor:
    """(2, K): the bounds ``W+ / 2`` and ``W+ / (2 + s g_max)``, the smaller one first.

    ``W+ = sum ReLU(g)`` and ``g_max = max g`` per channel; valid where ``2 + s g_max > 0``.
    """
    w_plus = g.clamp_min(0).sum(dim=1)
    g_max = g.max(dim=1).values
    a = w_plus / (2 + s * g_max)
    b = w_plus / 2
    return torch.stack([torch.minimum(a, b), torch.maximum(a, b)])


def _interval_cases() -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(909)
    cases = []
    for k, z in [(6, 9), (8, 64), (5, 4)]:
        g = 0.2 * torch.randn(k, z, generator=gen, dtype=torch.float64)
        g_max = g.max(dim=1).values.clamp_min(1e-3)
        # sums of both signs, never past the pole: 2 + s g_max stays above 0.2
        u = torch.rand(k, generator=gen, dtype=torch.float64)
        s = torch.where(torch.arange(k) % 2 == 0, 20 * u, -1.8 * u / g_max)
        cases.append((s, g))
    g = 0.1 * torch.randn(3, 9, generator=gen, dtype=torch.float64)
    g[1] = -g[1].abs()  # a channel with no positive gradient: both bounds are 0
    cases.append((torch.tensor([3.0, -2.0, -4.0], dtype=torch.float64), g))
    return cases


def _as_pair(fn: Callable[[Tensor, Tensor], tuple]) -> Callable[[Tensor, Tensor], Tensor]:
    def wrapped(s: Tensor, g: Tensor) -> Tensor:
        out = fn(s.clone(), g.clone())
        if isinstance(out, (tuple, list)) and len(out) == 2:
            return torch.stack([torch.as_tensor(out[0], dtype=s.dtype), torch.as_tensor(out[1], dtype=s.dtype)])
        return torch.as_tensor(out)

    return wrapped


def _close(a: Tensor, b: Tensor) -> bool:
    a = torch.as_tensor(a)
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-6, atol=1e-9))


def _unswapped(s: Tensor, g: Tensor) -> Tensor:
    w_plus = g.clamp_min(0).sum(dim=1)
    return torch.stack([w_plus / (2 + s * g.max(dim=1).values), w_plus / 2])


def _signed_sum(s: Tensor, g: Tensor) -> Tensor:
    w = g.sum(dim=1)
    a, b = w / (2 + s * g.max(dim=1).values), w / 2
    return torch.stack([torch.minimum(a, b), torch.maximum(a, b)])


def _means(s: Tensor, g: Tensor) -> Tensor:
    return pp_weight_interval_reference(s, g) / g.shape[1]


def _with_min(s: Tensor, g: Tensor) -> Tensor:
    w_plus = g.clamp_min(0).sum(dim=1)
    a, b = w_plus / (2 + s * g.min(dim=1).values), w_plus / 2
    return torch.stack([torch.minimum(a, b), torch.maximum(a, b)])


def check_pp_weight_interval(fn: Callable[[Tensor, Tensor], tuple]) -> None:
    """Check ``fn(s (K,), g (K, Z)) -> (low (K,), high (K,))`` for channels of either sign of ``s``.

    The interval must hold Grad-CAM++'s weight ``sum_{g>0} g / (2 + s g)`` of every channel and be
    the tight one built from ``W+ = sum ReLU(g)`` and ``g_max`` (the test cases keep
    ``2 + s g_max > 0``: no pole).
    """
    name = "pp_weight_interval"
    learner = _as_pair(fn)
    hints = [
        (lambda got, exp, s, g: got.shape != exp.shape,
         "return two tensors (low, high), one number per channel each (shape (K,))."),
        (lambda got, exp, s, g: _close(got, _unswapped(s, g)),
         "right for channels with s_k >= 0. Where s_k < 0, is 1 / (2 + s_k g) above or below 1/2 for g > 0? "
         "Then which of your two bounds is the larger one?"),
        (lambda got, exp, s, g: _close(got, _signed_sum(s, g)),
         "only positions with a positive gradient enter Grad-CAM++'s weight (it multiplies alpha by ReLU(g))."),
        (lambda got, exp, s, g: _close(got, _means(s, g)),
         "Grad-CAM++'s weight is a sum over positions, not a mean (so is W+ in the bound)."),
        (lambda got, exp, s, g: _close(got, _with_min(s, g)),
         "alpha = 1 / (2 + s g) is monotone in g on the positive gradients: its extreme values are at "
         "g -> 0 and at the largest gradient of the channel."),
        (lambda got, exp, s, g: bool((got[0] > _pp_weights(s, g) + 1e-9).any() or (got[1] < _pp_weights(s, g) - 1e-9).any()),
         "your interval does not contain Grad-CAM++'s actual weight for some channels; compare it with "
         "sum_{g > 0} g / (2 + s g) channel by channel."),
    ]
    compare_outputs(name, learner, pp_weight_interval_reference, _interval_cases(), hints, rtol=1e-6, atol=1e-9)
    passed(name)


# --------------------------------------------------------------------------- design: known answers


def check_known_answer_maps(fn: Callable[..., dict], size: int = 48, tolerance: int = 4) -> None:
    """Check ``fn(points (N, 2), other (N, 2), size, tolerance) -> {"hit", "miss", "chance"}``.

    Each value is an (N, size, size) map. With :func:`camlib.metrics.pointing_game` (ties shared)
    against the pixel nearest each point dilated by ``tolerance``: ``"hit"`` must score 1 on every
    image; ``"miss"`` must score 0 on every image and have its maximum within 1.5 px of ``other``
    (a map that points at the wrong landmark); ``"chance"`` must score exactly the share of the
    crop that the tolerance disk covers (what a map without information scores).
    """
    from ..figures.nb09 import pointing

    name = "known_answer_maps"
    gen = torch.Generator().manual_seed(99)
    n = 5
    points = torch.stack([8 + 32 * torch.rand(n, generator=gen), 8 + 32 * torch.rand(n, generator=gen)], dim=1)
    points[0] = torch.tensor([2.4, 45.6])  # near a corner: the disk is cut by the border
    angle = 2 * torch.pi * torch.rand(n, generator=gen)
    other = (points + 14 * torch.stack([angle.cos(), angle.sin()], dim=1)).clamp(0, size - 1)
    other[0] = torch.tensor([16.4, 40.0])  # 15 px from the corner point, inside the crop
    try:
        maps = fn(points.clone(), other.clone(), size, tolerance)
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}.") from error
    if not isinstance(maps, dict) or set(maps) != {"hit", "miss", "chance"}:
        raise ExerciseError(f"{name}: return a dict with the keys 'hit', 'miss' and 'chance'.")
    for key, value in maps.items():
        if not isinstance(value, Tensor) or tuple(value.shape) != (n, size, size):
            raise ExerciseError(f"{name}: maps['{key}'] must be a tensor of shape ({n}, {size}, {size}), "
                                f"one map per point; got {tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__}.")
        if not bool(torch.isfinite(value).all()):
            raise ExerciseError(f"{name}: maps['{key}'] contains NaN or infinite values.")
    score = {k: pointing(v.float(), points, tolerance).values.double() for k, v in maps.items()}
    transposed = pointing(maps["hit"].float().transpose(1, 2), points, tolerance).values
    if not bool((score["hit"] == 1).all()):
        hint = ("rows and columns are swapped: a point (x, y) is column x, row y of the map."
                if bool((transposed == 1).all()) else
                "the map's maximum (all its maximal pixels, if there are ties) must lie within the tolerance "
                "of the point.")
        raise ExerciseError(f"{name}: the 'hit' map scores {score['hit'].tolist()} instead of 1 on every "
                            f"image.\nHint: {hint}")
    peak = maps["miss"].flatten(1).argmax(dim=1)
    rows, cols = peak // size, peak % size
    far = ((cols.float() - other[:, 0]) ** 2 + (rows.float() - other[:, 1]) ** 2).sqrt()
    if not bool((score["miss"] == 0).all()) or bool((far > 1.5).any()):
        raise ExerciseError(
            f"{name}: the 'miss' map scores {score['miss'].tolist()} (must be 0 everywhere) and its maximum lies "
            f"{[round(v, 1) for v in far.tolist()]} px from the other landmark (must be within 1.5 px).\n"
            "Hint: it should point confidently at the wrong place: one clear maximum at the other landmark.")
    chance = pointing(torch.ones(n, size, size), points, tolerance).values.double()
    if not torch.allclose(score["chance"], chance, atol=1e-9):
        raise ExerciseError(
            f"{name}: the 'chance' map scores {[round(v, 4) for v in score['chance'].tolist()]}; a map without "
            f"information scores the disk's share of the crop, {[round(v, 4) for v in chance.tolist()]}.\n"
            "Hint: with ties shared, the score is the fraction of the map's maximal pixels that lie in the disk. "
            "Which map makes that fraction the disk's share of the whole crop?")
    print(f"Correct: {name}: hit 1, miss 0 (maximum at the other landmark), chance "
          f"{float(chance.mean()):.4f} on average (the tolerance disk's share of the crop).")


# --------------------------------------------------------------------------- counterexample: XGrad-CAM


def check_xgrad_counterexample(fn: Callable[[], tuple]) -> None:
    """Check ``fn() -> (A, g)``, two (1, K, h, w) tensors: activations and gradients of one image.

    At least one channel must have a non-zero activation sum ``s_k`` and an XGrad-CAM weight
    ``sum_ij A^k_ij g^k_ij / s_k`` outside ``[min g^k, max g^k]``: not an average of its gradients.
    """
    name = "xgrad_counterexample"
    try:
        answer = fn()
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}.") from error
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        raise ExerciseError(f"{name}: return two tensors, (A, g).")
    a, g = (torch.as_tensor(v, dtype=torch.float64) for v in answer)
    if a.ndim != 4 or a.shape[0] != 1 or a.shape != g.shape:
        raise ExerciseError(f"{name}: A and g must both have shape (1, K, h, w) (one image); got "
                            f"{tuple(a.shape)} and {tuple(g.shape)}.")
    if not bool(torch.isfinite(a).all() and torch.isfinite(g).all()):
        raise ExerciseError(f"{name}: A and g must be finite.")
    s = a.flatten(2).sum(-1)[0]
    weighted = (a * g).flatten(2).sum(-1)[0]
    g_min, g_max = g.flatten(2).min(-1).values[0], g.flatten(2).max(-1).values[0]
    nonzero = s.abs() > 1e-9 * a.flatten(2).abs().sum(-1)[0].clamp_min(1e-300)
    w = torch.where(nonzero, weighted / torch.where(nonzero, s, torch.ones_like(s)), torch.zeros_like(s))
    outside = nonzero & ((w < g_min - 1e-9) | (w > g_max + 1e-9))
    if bool(outside.any()):
        k = int(outside.nonzero()[0])
        print(f"Correct: {name}: in channel {k} the activations sum to {float(s[k]):.3g} and XGrad-CAM's weight "
              f"{float(w[k]):.3g} lies outside the gradients' range [{float(g_min[k]):.3g}, {float(g_max[k]):.3g}].")
        return
    if not bool(nonzero.any()):
        hint = ("every channel's activations sum to 0, where XGrad-CAM gives weight 0 (camlib's convention); "
                "choose activations with a non-zero sum.")
    elif bool((a >= 0).all()):
        hint = ("with non-negative activations, A / s is a set of non-negative weights that sum to 1, so the weight "
                "is an average of g and cannot leave [min g, max g]. What sign did O-Net's prelu3 activations have?")
    else:
        hint = ("your activations have both signs, but the weight still lands inside the range. Make the sum s_k "
                "small compared with the individual activations, and let the large activations meet different "
                "gradients.")
    raise ExerciseError(f"{name}: in every channel XGrad-CAM's weight lies inside [min g, max g] (weights "
                        f"{[round(v, 4) for v in w.tolist()]}).\nHint: {hint}")
