"""Checks for the exercises of notebook 06 (axioms: XGrad-CAM and Integrated Gradients).

* :func:`check_xgrad_cam_weights` -- the XGrad-CAM channel weights
  ``w_k = sum_ij A^k_ij g^k_ij / sum_ij A^k_ij`` (0 for a channel whose activations sum to 0).
* :func:`check_ig_trapezoid` -- Integrated Gradients with the trapezoidal rule on ``m`` nodes
  ``t_k = k/(m-1)``: ``IG_i = (x_i - x'_i) * sum_k w_k dF/dx_i(x' + t_k (x - x'))`` with
  ``w_k = 1/(m-1)``, halved for ``k = 0`` and ``k = m-1``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_xgrad_cam_weights", "check_ig_trapezoid"]


# --------------------------------------------------------------------------- XGrad-CAM weights


def _xgrad_reference(activations: Tensor, gradients: Tensor) -> Tensor:
    total = activations.sum(dim=(2, 3))
    weighted = (activations * gradients).sum(dim=(2, 3))
    safe = torch.where(total == 0, torch.ones_like(total), total)
    return torch.where(total == 0, torch.zeros_like(total), weighted / safe)


def _xgrad_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(6)
    cases = []
    for n, k, h, w in [(1, 3, 4, 4), (2, 5, 3, 6), (3, 4, 5, 5)]:
        activations = torch.relu(torch.randn(n, k, h, w, generator=generator, dtype=torch.float64))
        gradients = torch.randn(n, k, h, w, generator=generator, dtype=torch.float64)
        cases.append((activations, gradients))
    # a "dead" channel (all activations zero), as post-ReLU layers often have
    activations = torch.relu(torch.randn(2, 4, 4, 4, generator=generator, dtype=torch.float64)) + 0.1
    activations[1, 2] = 0.0
    gradients = torch.randn(2, 4, 4, 4, generator=generator, dtype=torch.float64)
    cases.append((activations, gradients))
    return cases


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=1e-7))


def check_xgrad_cam_weights(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(activations, gradients) -> weights`` of shape (N, K) against XGrad-CAM's formula."""
    name = "xgrad_cam_weights"
    hints = [
        (
            lambda got, exp, a, g: got.shape == (a.shape[0], a.shape[2], a.shape[3]),
            "you summed over the channel axis; the weight of channel k sums over the two spatial "
            "axes (dims 2 and 3) and keeps the batch and channel axes.",
        ),
        (
            lambda got, exp, a, g: got.shape != exp.shape,
            "the answer should have one weight per image and channel, shape (N, K): reduce over "
            "dims (2, 3) only.",
        ),
        (
            lambda got, exp, a, g: bool(torch.isnan(got).any() or torch.isinf(got).any()),
            "a channel whose activations are all zero gives 0/0. Its map is zero whatever its "
            "weight, so define the weight as 0 there (torch.where helps).",
        ),
        (
            lambda got, exp, a, g: _close(got, g.mean(dim=(2, 3))),
            "this is the plain average of the gradient, i.e. Grad-CAM's weight. XGrad-CAM weights "
            "each gradient by its activation's share of the channel total, A_ij / sum_ab A_ab.",
        ),
        (
            lambda got, exp, a, g: _close(got, (a * g).sum(dim=(2, 3))),
            "you have the numerator sum_ij A_ij g_ij; divide it by the channel's activation sum "
            "sum_ij A_ij.",
        ),
        (
            lambda got, exp, a, g: _close(got, (a * g).mean(dim=(2, 3))),
            "you divided by the number of pixels Z; the denominator is the channel's activation "
            "sum sum_ij A_ij, not Z.",
        ),
        (
            lambda got, exp, a, g: _close(got, (a * g).sum(dim=(2, 3)) / (a.sum(dim=(2, 3)) ** 2)),
            "the denominator is the plain sum of the activations, not its square.",
        ),
    ]
    compare_outputs(name, fn, _xgrad_reference, _xgrad_cases(), hints, rtol=1e-5, atol=1e-7)
    return passed(name)


# --------------------------------------------------------------------------- IG, trapezoid rule


def _ig_reference(grad_fn: Callable[[Tensor], Tensor], x: Tensor, baseline: Tensor, steps: int) -> Tensor:
    total = torch.zeros_like(x)
    for k in range(steps):
        weight = 0.5 if k in (0, steps - 1) else 1.0
        total = total + weight * grad_fn(baseline + (k / (steps - 1)) * (x - baseline))
    return (x - baseline) * total / (steps - 1)


def _ig_rule(grad_fn, x, baseline, steps, nodes, weights):
    total = torch.zeros_like(x)
    for t, w in zip(nodes, weights):
        total = total + w * grad_fn(baseline + t * (x - baseline))
    return (x - baseline) * total


def _ig_right(grad_fn, x, baseline, steps):
    return _ig_rule(grad_fn, x, baseline, steps, [k / steps for k in range(1, steps + 1)], [1 / steps] * steps)


def _ig_unhalved(grad_fn, x, baseline, steps):
    nodes = [k / (steps - 1) for k in range(steps)]
    return _ig_rule(grad_fn, x, baseline, steps, nodes, [1 / steps] * steps)


def _ig_spacing_m(grad_fn, x, baseline, steps):
    nodes = [k / (steps - 1) for k in range(steps)]
    weights = [(0.5 if k in (0, steps - 1) else 1.0) / steps for k in range(steps)]
    return _ig_rule(grad_fn, x, baseline, steps, nodes, weights)


def _grad_cubic(point: Tensor) -> Tensor:
    # F(x) = sum_i c_i x_i^3 / 3  ->  dF/dx_i = c_i x_i^2
    c = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=point.dtype)
    return c * point**2


def _grad_saturating(point: Tensor) -> Tensor:
    # F(x) = sum_i (1 - relu(1 - x_i))  ->  dF/dx_i = 1 where x_i < 1, else 0
    return (point < 1).to(point.dtype)


def _grad_sine(point: Tensor) -> Tensor:
    # F(x) = sum_i sin(x_i)
    return torch.cos(point)


def _ig_cases() -> list[tuple]:
    d = torch.float64
    return [
        (_grad_cubic, torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=d), torch.zeros(4, dtype=d), 4),
        (_grad_saturating, torch.tensor([2.0, 0.5, 3.0], dtype=d), torch.zeros(3, dtype=d), 10),
        (_grad_sine, torch.tensor([1.0, 2.5, -0.7], dtype=d), torch.tensor([0.5, -1.0, 0.2], dtype=d), 7),
        (_grad_cubic, torch.tensor([[1.0, 2.0, 0.0, 1.5]], dtype=d), torch.full((1, 4), 0.25, dtype=d), 3),
    ]


def _safe_diff(x: Tensor, b: Tensor) -> Tensor:
    return (x - b).where(x != b, torch.ones_like(x))


def check_ig_trapezoid(fn: Callable[[Callable[[Tensor], Tensor], Tensor, Tensor, int], Tensor]) -> None:
    """Check ``fn(grad_fn, x, baseline, steps)`` against IG with the trapezoidal rule on ``steps`` nodes."""
    name = "ig_trapezoid"
    hints = [
        (
            lambda got, exp, gf, x, b, m: _close(got, _ig_right(gf, x, b, m)),
            "this is the right Riemann sum (nodes k/m, k = 1..m). The trapezoidal rule uses m nodes "
            "t_k = k/(m-1), k = 0..m-1, which include both end points.",
        ),
        (
            lambda got, exp, gf, x, b, m: _close(got, _ig_unhalved(gf, x, b, m)),
            "in the trapezoidal rule the two end points count half: weights 1/(2(m-1)) at t = 0 and "
            "t = 1, and 1/(m-1) in between.",
        ),
        (
            lambda got, exp, gf, x, b, m: _close(got, _ig_spacing_m(gf, x, b, m)),
            "m nodes from 0 to 1 are 1/(m-1) apart, so the weights are 1/(m-1) (halved at the ends), "
            "not 1/m.",
        ),
        (
            lambda got, exp, gf, x, b, m: _close(got, exp / _safe_diff(x, b)),
            "the average gradient along the path still has to be multiplied by (x - baseline), "
            "feature by feature.",
        ),
        (
            lambda got, exp, gf, x, b, m: _close(got, (x - b) * gf(x)),
            "this is gradient x (input - baseline), the gradient at the end point only. IG averages "
            "the gradient over the points of the straight path from the baseline to x.",
        ),
        (
            lambda got, exp, gf, x, b, m: _close(got, x * exp / _safe_diff(x, b)),
            "multiply by (x - baseline), not by x: the two differ when the baseline is not zero.",
        ),
    ]
    compare_outputs(name, fn, _ig_reference, _ig_cases(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)
