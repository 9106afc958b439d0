"""Checks for the exercises of notebook 08 (evaluating explanations).

* :func:`check_pointing_hits` -- pointing game: is the (first) maximum of each map inside its mask?
* :func:`check_energy_inside` -- share of the positive map mass that falls inside the mask,
  ``sum(relu(M) * mask) / sum(relu(M))`` (0 for a map with no positive value).
* :func:`check_curve_auc` -- area under a deletion / insertion curve sampled at ``T`` equally spaced
  fractions of [0, 1], by the trapezoidal rule: ``(sum_t s_t - s_0/2 - s_{T-1}/2) / (T - 1)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_pointing_hits", "check_energy_inside", "check_curve_auc"]


def _close(a: Tensor, b: Tensor) -> bool:
    a = torch.as_tensor(a)
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=1e-7))


def _as_float(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Wrap a function returning booleans so that its answer can be compared numerically."""

    def wrapped(*case):
        answer = fn(*case)
        if isinstance(answer, (list, tuple)):
            answer = torch.as_tensor(answer)
        if isinstance(answer, Tensor):
            return answer.to(torch.float64)
        return answer

    return wrapped


# --------------------------------------------------------------------------- pointing game


def _hits_reference(maps: Tensor, masks: Tensor) -> Tensor:
    n = maps.shape[0]
    flat_index = maps.reshape(n, -1).argmax(dim=1)
    return masks.reshape(n, -1).gather(1, flat_index[:, None])[:, 0].bool()


def _hits_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(7)
    cases = []
    for n, h, w in [(12, 6, 6), (10, 4, 7), (9, 8, 5)]:
        maps = torch.rand(n, h, w, generator=generator, dtype=torch.float64)
        masks = torch.zeros(n, h, w, dtype=torch.bool)
        for i in range(n):
            top = int(torch.randint(0, h - 2, (1,), generator=generator))
            left = int(torch.randint(0, w - 2, (1,), generator=generator))
            masks[i, top : top + 3, left : left + 2] = True
            if i % 2 == 0:  # half of the maps peak inside the mask
                maps[i, top + 2, left + 1] = 2.0
            else:  # the other half peak somewhere outside it
                outside = (~masks[i]).nonzero()
                pick = outside[int(torch.randint(0, len(outside), (1,), generator=generator))]
                maps[i, pick[0], pick[1]] = 2.0
        cases.append((maps, masks))
    return cases


def check_pointing_hits(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(maps (N,H,W), masks (N,H,W) bool) -> hits (N,) bool``."""
    name = "pointing_hits"
    hints = [
        (
            lambda got, exp, maps, masks: got.shape == (maps.shape[0], maps.shape[2]) or got.shape == (maps.shape[0], maps.shape[1]),
            "you took the maximum along one axis only; flatten each map to one row "
            "(maps.reshape(N, -1)) and take the argmax of that row.",
        ),
        (
            lambda got, exp, maps, masks: got.numel() == 1 or got.ndim == 0,
            "you returned one value for the whole batch: the answer has one hit (True/False) per image.",
        ),
        (
            lambda got, exp, maps, masks: got.shape != exp.shape,
            "return one boolean per image, shape (N,).",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _swapped(maps, masks)),
            "rows and columns are swapped: a flat index f in a map of width W is row f // W, "
            "column f % W.",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _hits_reference(-maps, masks).double()),
            "you located the minimum of the map; the pointing game looks at its maximum.",
        ),
    ]
    compare_outputs(name, _as_float(fn), lambda *c: _hits_reference(*c).double(), _hits_cases(), hints)
    return passed(name)


def _swapped(maps: Tensor, masks: Tensor) -> Tensor:
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    row, col = flat // w, flat % w
    out = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        if col[i] < h and row[i] < w:
            out[i] = float(masks[i, col[i], row[i]])
    return out


# --------------------------------------------------------------------------- energy inside the mask


def _energy_reference(maps: Tensor, masks: Tensor) -> Tensor:
    positive = torch.relu(maps)
    total = positive.sum(dim=(1, 2))
    inside = (positive * masks).sum(dim=(1, 2))
    safe = torch.where(total == 0, torch.ones_like(total), total)
    return torch.where(total == 0, torch.zeros_like(total), inside / safe)


def _energy_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(70)
    cases = []
    for n, h, w in [(3, 5, 5), (4, 6, 4)]:
        maps = torch.randn(n, h, w, generator=generator, dtype=torch.float64)  # signed, like raw maps
        masks = torch.rand(n, h, w, generator=generator) < 0.3
        cases.append((maps, masks))
    maps = torch.rand(3, 4, 4, generator=generator, dtype=torch.float64)
    maps[1] = -1.0  # a map with no positive value at all
    masks = torch.rand(3, 4, 4, generator=generator) < 0.5
    cases.append((maps, masks))
    return cases


def check_energy_inside(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(maps (N,H,W), masks (N,H,W) bool) -> share (N,)``."""
    name = "energy_inside"

    def _no_relu(maps, masks):
        total = maps.sum(dim=(1, 2))
        return (maps * masks).sum(dim=(1, 2)) / total

    hints = [
        (
            lambda got, exp, maps, masks: bool(torch.isnan(got).any() or torch.isinf(got).any()),
            "a map with no positive value gives 0/0; define the share as 0 for it (torch.where helps).",
        ),
        (
            lambda got, exp, maps, masks: got.shape != exp.shape,
            "return one number per image, shape (N,): sum over dims (1, 2).",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _no_relu(maps, masks)),
            "the maps here are signed; keep only their positive part (torch.relu) before summing, "
            "as the displayed explanation does.",
        ),
        (
            lambda got, exp, maps, masks: _close(got, masks.double().mean(dim=(1, 2))),
            "this is the share of pixels that lie in the mask; weight each pixel by its map value.",
        ),
        (
            lambda got, exp, maps, masks: _close(
                got, (torch.relu(maps) * masks).sum(dim=(1, 2)) / masks.sum(dim=(1, 2)).clamp(min=1)
            ),
            "you averaged the map over the mask; divide by the map's total positive mass instead, so "
            "that the answer is a share between 0 and 1.",
        ),
    ]
    compare_outputs(name, _as_float(fn), _energy_reference, _energy_cases(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)


# --------------------------------------------------------------------------- AUC of a curve


def _auc_reference(curves: Tensor) -> Tensor:
    t = curves.shape[-1]
    return (curves.sum(dim=-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / (t - 1)


def _auc_cases() -> list[tuple[Tensor]]:
    generator = torch.Generator().manual_seed(700)
    return [
        (torch.rand(3, 11, generator=generator, dtype=torch.float64),),
        (torch.linspace(1.0, 0.0, 5, dtype=torch.float64)[None].repeat(2, 1),),
        (torch.rand(4, 3, generator=generator, dtype=torch.float64),),
        (torch.full((1, 6), 0.8, dtype=torch.float64),),
    ]


def check_curve_auc(fn: Callable[[Tensor], Tensor]) -> None:
    """Check ``fn(curves (N,T)) -> auc (N,)``, the trapezoidal area on a uniform grid over [0, 1]."""
    name = "curve_auc"
    hints = [
        (
            lambda got, exp, c: got.shape != exp.shape,
            "return one area per curve, shape (N,): the T samples lie along the last axis.",
        ),
        (
            lambda got, exp, c: _close(got, c.mean(dim=-1)),
            "the plain mean gives the two end points full weight; in the trapezoidal rule they "
            "count half.",
        ),
        (
            lambda got, exp, c: _close(got, (c.sum(dim=-1) - c[..., 0] / 2 - c[..., -1] / 2) / c.shape[-1]),
            "T samples on [0, 1] are 1/(T - 1) apart, so divide by T - 1, not T.",
        ),
        (
            lambda got, exp, c: _close(got, c.sum(dim=-1)),
            "the samples are spaced 1/(T - 1) apart on [0, 1]: multiply the sum by that spacing.",
        ),
    ]
    compare_outputs(name, fn, _auc_reference, _auc_cases(), hints, rtol=1e-9, atol=1e-12)
    return passed(name)
