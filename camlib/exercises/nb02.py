"""Checks for the exercises of notebook 02 (occlusion sensitivity).

Exercise 1, ``occlusion_grid(f, x, patch, stride, baseline)``: slide a ``patch x patch``
window over the image ``x`` (shape ``(1, C, H, W)``) with the given stride, replace the
window by ``baseline`` in every channel, and return the drops

    drop[r, c] = f(x) - f(x with the window at (r * stride, c * stride) set to baseline)

``f`` maps a batch ``(N, C, H, W)`` to scores ``(N,)``. The convention is camlib's (and
Captum's): windows start at 0, stride, 2 * stride, ... and continue until the image is
covered, so there are ``ceil((H - patch) / stride) + 1`` rows of windows (likewise for the
columns) and the last window of a row or column may be cut off by the border.

Exercise 2, ``linear_occlusion_drop(w, x, baseline, top, left, patch)``: for the linear model
``f(x) = sum(w * x) + b`` predict, without calling ``f``, the drop caused by occluding the
window at ``(top, left)``:  ``sum over the window of w * (x - baseline)`` (``w`` and ``x`` have
the same shape ``(C, H, W)``; the window covers every channel).
"""

from __future__ import annotations

from typing import Callable

import math

import torch
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = ["check_occlusion_grid", "check_linear_occlusion_drop"]


# ----------------------------------------------------------------------------- references


def _reference_occlusion_grid(
    f: Callable[[Tensor], Tensor], x: Tensor, patch: int, stride: int, baseline: float
) -> Tensor:
    _, _, height, width = x.shape
    rows = math.ceil((height - patch) / stride) + 1
    cols = math.ceil((width - patch) / stride) + 1
    clean = f(x)[0]
    drops = torch.empty(rows, cols, dtype=x.dtype)
    for r in range(rows):
        for c in range(cols):
            occluded = x.clone()
            occluded[..., r * stride : r * stride + patch, c * stride : c * stride + patch] = baseline
            drops[r, c] = clean - f(occluded)[0]
    return drops


def _reference_linear_drop(w: Tensor, x: Tensor, baseline: float, top: int, left: int, patch: int) -> Tensor:
    window = (slice(None), slice(top, top + patch), slice(left, left + patch))
    return (w[window] * (x[window] - baseline)).sum()


# ----------------------------------------------------------------------------- test inputs


def _linear_f(w: Tensor, bias: float) -> Callable[[Tensor], Tensor]:
    def f(batch: Tensor) -> Tensor:
        return (batch * w).flatten(1).sum(1) + bias

    return f


def _nonlinear_f(w: Tensor) -> Callable[[Tensor], Tensor]:
    def f(batch: Tensor) -> Tensor:
        # a smooth non-linear score: the drops are no longer additive over pixels
        return torch.tanh((batch * w).flatten(1).sum(1)) + (batch**2).flatten(1).mean(1)

    return f


def _grid_cases() -> list[tuple]:
    gen = torch.Generator().manual_seed(2)
    cases = []
    for channels, height, width, patch, stride, baseline, linear in [
        (1, 6, 6, 2, 2, 0.0, True),
        (3, 7, 9, 3, 2, 0.5, True),
        (2, 8, 8, 4, 3, -1.0, False),
        (1, 5, 7, 2, 1, 0.25, False),
    ]:
        x = torch.rand(1, channels, height, width, generator=gen, dtype=torch.float64)
        w = torch.randn(channels, height, width, generator=gen, dtype=torch.float64)
        f = _linear_f(w, 0.3) if linear else _nonlinear_f(w)
        cases.append((f, x, patch, stride, baseline))
    return cases


def _grid_hints():
    def sign_flipped(got, expected, *case):
        return got.shape == expected.shape and torch.allclose(got, -expected, atol=1e-9)

    def missing_last(got, expected, *case):
        return got.shape[0] == expected.shape[0] - 1 or got.shape[1] == expected.shape[1] - 1

    def too_many(got, expected, *case):
        return got.shape[0] > expected.shape[0] or got.shape[1] > expected.shape[1]

    def transposed(got, expected, *case):
        return got.shape == expected.shape[::-1] and torch.allclose(got, expected.T, atol=1e-9)

    def zero_baseline(got, expected, f, x, patch, stride, baseline):
        return got.shape == expected.shape and torch.allclose(
            got, _reference_occlusion_grid(f, x, patch, stride, 0.0), atol=1e-9
        )

    def accumulated(got, expected, f, x, patch, stride, baseline):
        return got.shape == expected.shape and torch.allclose(got.flatten()[0], expected.flatten()[0], atol=1e-9)

    return [
        (transposed, "the grid is transposed: rows index the vertical (height) position, columns the horizontal one."),
        (sign_flipped, "every value has the wrong sign: the drop is f(x) minus the score of the occluded image."),
        (
            missing_last,
            "your grid misses the last window: the windows start at 0, stride, 2*stride, ... and continue "
            "until the image is covered, so there are ceil((H - patch) / stride) + 1 of them; the last one "
            "may stick out of the image (slicing cuts it off for you).",
        ),
        (
            too_many,
            "your grid has too many windows: stop as soon as a window reaches the border, "
            "ceil((H - patch) / stride) + 1 windows per axis.",
        ),
        (zero_baseline, "you occluded with 0 rather than with the `baseline` argument."),
        (
            accumulated,
            "the first window is right but later ones are wrong: occlude a fresh copy (x.clone()) for every "
            "window, otherwise earlier patches stay grey.",
        ),
    ]


def _linear_cases() -> list[tuple]:
    gen = torch.Generator().manual_seed(3)
    cases = []
    for channels, height, width, baseline, top, left, patch in [
        (1, 6, 6, 0.5, 1, 2, 3),
        (3, 8, 8, 0.2, 0, 4, 4),
        (2, 5, 9, -0.5, 2, 1, 2),
    ]:
        w = torch.randn(channels, height, width, generator=gen, dtype=torch.float64)
        x = torch.rand(channels, height, width, generator=gen, dtype=torch.float64)
        cases.append((w, x, baseline, top, left, patch))
    return cases


def _linear_hints():
    def gradient_only(got, expected, w, x, baseline, top, left, patch):
        window = (slice(None), slice(top, top + patch), slice(left, left + patch))
        return torch.allclose(got, w[window].sum(), atol=1e-9)

    def forgot_baseline(got, expected, w, x, baseline, top, left, patch):
        window = (slice(None), slice(top, top + patch), slice(left, left + patch))
        return torch.allclose(got, (w[window] * x[window]).sum(), atol=1e-9)

    def sign_flipped(got, expected, *case):
        return torch.allclose(got, -expected, atol=1e-9)

    def rows_cols_swapped(got, expected, w, x, baseline, top, left, patch):
        window = (slice(None), slice(left, left + patch), slice(top, top + patch))
        return torch.allclose(got, (w[window] * (x[window] - baseline)).sum(), atol=1e-9)

    return [
        (gradient_only, "you summed the weights only (the gradient); the drop also depends on how far each "
         "pixel moves, x - baseline."),
        (forgot_baseline, "you used w * x: occlusion moves a pixel from x to the baseline, not to 0."),
        (sign_flipped, "wrong sign: the drop is f(x) - f(occluded), which is w * (x - baseline) summed."),
        (rows_cols_swapped, "`top` indexes rows (the H axis) and `left` indexes columns (the W axis)."),
    ]


# ----------------------------------------------------------------------------- checks


def check_occlusion_grid(occlusion_grid: Callable[..., Tensor]) -> None:
    """Check exercise 1: ``occlusion_grid(f, x, patch, stride, baseline) -> (rows, cols)`` drops."""
    if not callable(occlusion_grid):
        raise TypeError("check_occlusion_grid expects your function occlusion_grid itself, not its result.")
    cases = _grid_cases()
    for f, x, patch, stride, baseline in cases:
        probe = x.clone()
        try:
            occlusion_grid(f, probe, patch, stride, baseline)
        except NotImplementedError:
            raise
        except Exception:
            break  # compare_outputs below reports the error with its test case
        if not torch.equal(probe, x):
            raise ExerciseError("occlusion_grid: your function changed the input image x in place.\n"
                                "Hint: occlude a copy (x.clone()) so that x itself stays untouched.")
    compare_outputs("occlusion_grid", occlusion_grid, _reference_occlusion_grid, cases, _grid_hints(),
                    rtol=1e-6, atol=1e-8)
    return passed("occlusion_grid")


def check_linear_occlusion_drop(linear_occlusion_drop: Callable[..., Tensor]) -> None:
    """Check exercise 2: the predicted drop ``sum_{window} w * (x - baseline)`` of a linear model."""
    if not callable(linear_occlusion_drop):
        raise TypeError("check_linear_occlusion_drop expects your function itself, not its result.")
    cases = _linear_cases()
    compare_outputs("linear_occlusion_drop", linear_occlusion_drop, _reference_linear_drop, cases,
                    _linear_hints(), rtol=1e-6, atol=1e-8)
    # the prediction must also equal what a real forward pass of the linear model gives
    for w, x, baseline, top, left, patch in cases:
        f = _linear_f(w, -0.7)
        occluded = x.clone()
        occluded[:, top : top + patch, left : left + patch] = baseline
        measured = f(x[None])[0] - f(occluded[None])[0]
        got = torch.as_tensor(linear_occlusion_drop(w, x, baseline, top, left, patch), dtype=measured.dtype)
        if not torch.allclose(got, measured, atol=1e-8):
            raise ExerciseError("linear_occlusion_drop: your prediction does not match the measured drop "
                                "f(x) - f(occluded) of a linear model.")
    return passed("linear_occlusion_drop")
