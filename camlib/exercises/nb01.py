"""Checks for the exercises of notebook 01 (gradients of a linear regression).

Exercise 1, ``occlusion_deltas(f, x, baseline)``: for a function ``f`` of a 1-D tensor,
return the vector ``delta`` with ``delta[i] = f(x) - f(x with x[i] replaced by baseline[i])``.

Exercise 2, ``integrated_gradients_riemann(f, x, baseline, m)``: Integrated Gradients with
the right Riemann sum of Sundararajan et al. (2017),
``IG_i = (x_i - x'_i) * (1/m) * sum_{k=1..m} df/dx_i(x' + (k/m) (x - x'))``.

Each check runs the learner's function on several inputs (linear and non-linear ``f``),
compares with the reference within a tolerance, and explains what differs without printing
the reference code.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = ["check_occlusion_deltas", "check_integrated_gradients"]

ScalarFunction = Callable[[Tensor], Tensor]


def _linear(w: Tensor, w0: float) -> ScalarFunction:
    def f(x: Tensor) -> Tensor:
        return w0 + (w * x).sum()

    return f


def _product(x: Tensor) -> Tensor:
    # an interaction: f(x) = x0 * x1 + x2, not linear
    return x[0] * x[1] + x[2]


def _smooth(x: Tensor) -> Tensor:
    # a smooth non-linear function of every feature
    return torch.sin(x).sum() + 0.5 * (x**2).sum()


def _reference_occlusion(f: ScalarFunction, x: Tensor, baseline: Tensor) -> Tensor:
    """Delta_i = f(x) - f(x with x_i <- b_i), one forward pass per feature."""
    full = f(x)
    out = torch.empty_like(x)
    for i in range(x.numel()):
        occluded = x.clone()
        occluded[i] = baseline[i]
        out[i] = full - f(occluded)
    return out.detach()


def _guard_mutation(name: str, learner: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Wrap the learner's function so that changing ``x`` or ``baseline`` in place is reported."""

    def wrapped(f: ScalarFunction, x: Tensor, baseline: Tensor, *rest: object) -> Tensor:
        x_copy, b_copy = x.clone(), baseline.clone()
        got = learner(f, x_copy, b_copy, *rest)
        if not torch.equal(x_copy, x) or not torch.equal(b_copy, baseline):
            raise ExerciseError(
                f"{name}: your function changed its input tensor in place.\n"
                "Hint: `occluded = x` does not copy a tensor; both names point to the same memory, so "
                "each occlusion stays in x for the next feature. Use `occluded = x.clone()` before "
                "writing into it."
            )
        if isinstance(got, Tensor):
            got = got.detach()
        return got

    return wrapped


def _occlusion_cases() -> list[tuple[ScalarFunction, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(1)
    w = torch.tensor([3.0, -1.5, 0.25], dtype=torch.float64)
    x = torch.tensor([2.0, 4.0, -1.0], dtype=torch.float64)
    return [
        (_linear(w, 5.0), x, torch.zeros(3, dtype=torch.float64)),
        (_linear(w, 5.0), x, torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)),
        (_product, torch.tensor([2.0, 3.0, 1.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64)),
        (_smooth, torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)),
    ]


def check_occlusion_deltas(occlusion_deltas: Callable[[ScalarFunction, Tensor, Tensor], Tensor]) -> None:
    """Check ``occlusion_deltas(f, x, baseline)`` = ``f(x) - f(x_{i <- b_i})`` for every ``i``."""
    name = "occlusion_deltas"
    hints = [
        (
            lambda got, exp, f, x, b: torch.allclose(got, -exp, atol=1e-9) and exp.abs().max() > 0,
            "your values have the opposite sign. The course defines the occlusion effect as the DROP "
            "of the output, f(original) - f(occluded).",
        ),
        (
            lambda got, exp, f, x, b: torch.allclose(got, _reference_occlusion(f, x, torch.zeros_like(b)), atol=1e-9),
            "your answer is what occlusion with a baseline of 0 gives. Replace x[i] by baseline[i], "
            "not by zero.",
        ),
        (
            lambda got, exp, f, x, b: torch.allclose(got, torch.full_like(exp, (f(x) - f(b)).item()), atol=1e-9),
            "every entry equals f(x) - f(baseline): you replaced all the features at once. Occlude one "
            "feature at a time and keep the others at their original values.",
        ),
        (
            lambda got, exp, f, x, b: torch.allclose(got.sum(), (f(x) - f(b)).detach(), atol=1e-9),
            "your values add up to f(x) - f(baseline), as if each occlusion were kept while the next "
            "feature is occluded. Start every occlusion from a fresh copy of the original x.",
        ),
    ]
    compare_outputs(
        name,
        _guard_mutation(name, occlusion_deltas),
        _reference_occlusion,
        _occlusion_cases(),
        hints,
        rtol=1e-6,
        atol=1e-8,
    )
    return passed(name)


def _gradient(f: ScalarFunction, point: Tensor) -> Tensor:
    point = point.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(point), point)
    return grad


def _riemann(f: ScalarFunction, x: Tensor, baseline: Tensor, m: int, start: int) -> Tensor:
    """(x - x') * mean over k = start..start+m-1 of grad f(x' + k/m (x - x'))."""
    total = torch.zeros_like(x)
    for k in range(start, start + m):
        total = total + _gradient(f, baseline + (k / m) * (x - baseline))
    return ((x - baseline) * total / m).detach()


def _reference_ig(f: ScalarFunction, x: Tensor, baseline: Tensor, m: int) -> Tensor:
    """Right Riemann sum of Integrated Gradients with m steps."""
    return _riemann(f, x, baseline, m, start=1)


def _ig_cases() -> list[tuple[ScalarFunction, Tensor, Tensor, int]]:
    g = torch.Generator().manual_seed(2)
    w = torch.tensor([3.0, -1.5, 0.25], dtype=torch.float64)
    x = torch.tensor([2.0, 4.0, -1.0], dtype=torch.float64)
    zeros = torch.zeros(3, dtype=torch.float64)
    return [
        (_product, torch.tensor([2.0, 3.0, 1.0], dtype=torch.float64), zeros, 4),
        (_linear(w, 5.0), x, torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64), 1),
        (_linear(w, 5.0), x, zeros, 7),
        (_smooth, torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64), 10),
    ]


def _safe_ratio(a: Tensor, b: Tensor) -> Tensor:
    keep = b.abs() > 1e-9
    return a[keep] / b[keep]


def check_integrated_gradients(integrated_gradients_riemann: Callable[..., Tensor]) -> None:
    """Check ``integrated_gradients_riemann(f, x, baseline, m)`` against the right Riemann sum."""
    name = "integrated_gradients_riemann"
    hints = [
        (
            lambda got, exp, f, x, b, m: torch.allclose(got * (x - b), exp, atol=1e-9),
            "your answer is the average gradient along the path, but Integrated Gradients multiplies it "
            "by the displacement (x - baseline), feature by feature.",
        ),
        (
            lambda got, exp, f, x, b, m: m > 1 and torch.allclose(got, m * exp, atol=1e-9),
            "your answer is m times too large: average the m gradients (divide the sum by m).",
        ),
        (
            lambda got, exp, f, x, b, m: torch.allclose(got, _riemann(f, x, b, m, start=0), atol=1e-9),
            "you used the left end points k = 0, ..., m-1. This exercise asks for the right Riemann sum, "
            "k = 1, ..., m, so that the last point on the path is x itself.",
        ),
        (
            lambda got, exp, f, x, b, m: torch.allclose(got, (x - b) * _gradient(f, x), atol=1e-9),
            "you evaluated the gradient only at x. Integrated Gradients averages the gradient over the "
            "points x' + (k/m)(x - x') on the straight path from the baseline to x.",
        ),
        (
            lambda got, exp, f, x, b, m: torch.allclose(got, x * _reference_ig(f, x, b, m) / (x - b), atol=1e-9)
            if bool(((x - b).abs() > 1e-12).all())
            else False,
            "you multiplied by x instead of (x - baseline). The two agree only for a zero baseline.",
        ),
    ]
    compare_outputs(name, _guard_mutation(name, integrated_gradients_riemann), _reference_ig, _ig_cases(), hints, rtol=1e-6, atol=1e-8)
    return passed(name)
