"""Exercise checks for notebook 05 (Grad-CAM++ and Grad-CAM with positive gradients).

Each ``check_*`` runs the learner's function on several seeded inputs, compares it with a
reference, and raises :class:`~camlib.exercises._check.ExerciseError` naming what differs and
the likely mistake (mixed denominator indices, an epsilon, a forgotten mask or ReLU). It prints
one success line when every case agrees.

Shapes: activations ``A`` and gradients ``g = dY/dA`` of the logit ``Y`` are ``(N, K, h, w)``
with ``A >= 0`` (a post-ReLU layer); channel weights are ``(N, K)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_gradcampp_alpha", "check_gradcampp_weights", "check_gradcam_plus_weights"]


def _cases() -> list[tuple[Tensor, Tensor]]:
    """Gradients with exact zeros and both signs; non-negative activations.

    The last case has tiny gradients (|g| ~ 1e-3, g^2 ~ 1e-6), where an epsilon of 1e-6 in the
    denominator is no longer negligible.
    """
    gen = torch.Generator().manual_seed(5)
    cases = []
    for (n, k, h, w), scale in [((1, 3, 4, 4), 0.05), ((2, 4, 3, 5), 0.1), ((2, 3, 5, 5), 1e-3)]:
        activations = torch.rand(n, k, h, w, generator=gen, dtype=torch.float64)
        activations[activations < 0.2] = 0.0  # post-ReLU maps have exact zeros
        gradients = torch.randn(n, k, h, w, generator=gen, dtype=torch.float64) * scale
        gradients[torch.rand(n, k, h, w, generator=gen) < 0.25] = 0.0  # dead paths
        cases.append((gradients, activations))
    return cases


def _reference_alpha(gradients: Tensor, activations: Tensor) -> Tensor:
    # eq. 19: alpha = g^2 / (2 g^2 + s_k g^3) with s_k = sum_ab A^k_ab, and alpha = 0 where g = 0
    s = activations.sum(dim=(2, 3), keepdim=True)
    g2 = gradients**2
    denominator = 2 * g2 + s * gradients**3
    safe = torch.where(gradients != 0, denominator, torch.ones_like(denominator))
    return torch.where(gradients != 0, g2 / safe, torch.zeros_like(g2))


def _reference_pp_weights(gradients: Tensor, activations: Tensor) -> Tensor:
    # w_k = sum_ij alpha_ij ReLU(g_ij)
    return (_reference_alpha(gradients, activations) * torch.relu(gradients)).sum(dim=(2, 3))


def _reference_plus_weights(gradients: Tensor) -> Tensor:
    # w+_k = (1/Z) sum_ij ReLU(g_ij)
    return torch.relu(gradients).mean(dim=(2, 3))


def _close(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape:
        return False
    return torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=1e-8, equal_nan=True)


def _alpha_with(gradients: Tensor, activations: Tensor, *, mixed=False, eps=0.0, mean=False) -> Tensor:
    if mean:
        s = activations.mean(dim=(2, 3), keepdim=True)
    else:
        s = activations.sum(dim=(2, 3), keepdim=True)
    g2 = gradients**2
    if mixed:
        third = (activations * gradients**3).sum(dim=(2, 3), keepdim=True)
    else:
        third = s * gradients**3
    denominator = 2 * g2 + third + eps
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    return torch.where(gradients != 0, g2 / safe, torch.zeros_like(g2))


def check_gradcampp_alpha(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(gradients, activations) -> alpha`` (same shape as the gradients):
    ``alpha = g^2 / (2 g^2 + (sum_ab A^k_ab) g^3)``, with ``alpha = 0`` where ``g = 0``."""
    name = "gradcampp_alpha"

    def has_nan(got, expected, gradients, activations):
        return bool(torch.isnan(got).any() or torch.isinf(got).any())

    def mixed(got, expected, gradients, activations):
        return _close(got, _alpha_with(gradients, activations, mixed=True))

    def eps(got, expected, gradients, activations):
        return any(_close(got, _alpha_with(gradients, activations, eps=e)) for e in (1e-5, 1e-6, 1e-7, 1e-8))

    def mean_s(got, expected, gradients, activations):
        return _close(got, _alpha_with(gradients, activations, mean=True))

    def unmasked(got, expected, gradients, activations):
        zero = gradients == 0
        return bool(zero.any()) and _close(got[~zero], expected[~zero]) and not _close(got[zero], expected[zero])

    hints = [
        (has_nan, "your alpha has NaN or inf values. Where g = 0 the formula is 0/0: define alpha = 0 "
                  "there (torch.where), and compute the division only where g != 0."),
        (mixed, "your denominator uses sum_ab A_ab * g_ab^3 (mixed indices). In eq. 19 the activation "
                "sum s_k = sum_ab A^k_ab multiplies g_ij^3 at the SAME pixel (i, j) as the numerator."),
        (eps, "an epsilon in the denominator changes the answer when g^2 is of the same size as the "
              "epsilon (test case 3 has |g| ~ 1e-3). Handle g = 0 with a mask instead."),
        (mean_s, "s_k is the SUM of the activations of channel k over all positions, not their mean."),
        (unmasked, "your alpha is right where g != 0 but not where g = 0: the reference sets alpha = 0 "
                   "where the gradient is exactly zero."),
    ]
    compare_outputs(name, fn, _reference_alpha, _cases(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)


def check_gradcampp_weights(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(gradients, activations) -> weights`` of shape ``(N, K)``:
    ``w_k = sum_ij alpha_ij ReLU(g_ij)`` with the eq. 19 alpha."""
    name = "gradcampp_weights"

    def no_relu(got, expected, gradients, activations):
        return _close(got, (_reference_alpha(gradients, activations) * gradients).sum(dim=(2, 3)))

    def averaged(got, expected, gradients, activations):
        z = gradients.shape[2] * gradients.shape[3]
        return _close(got * z, expected)

    def relu_after(got, expected, gradients, activations):
        return _close(got, torch.relu((_reference_alpha(gradients, activations) * gradients).sum(dim=(2, 3))))

    def mixed(got, expected, gradients, activations):
        alpha = _alpha_with(gradients, activations, mixed=True)
        return _close(got, (alpha * torch.relu(gradients)).sum(dim=(2, 3)))

    def alpha_only(got, expected, gradients, activations):
        return _close(got, (_reference_alpha(gradients, activations) * (gradients > 0)).sum(dim=(2, 3)))

    hints = [
        (no_relu, "you multiplied alpha by the signed gradient. Grad-CAM++ keeps only positive "
                  "gradients inside the sum: alpha * ReLU(g)."),
        (relu_after, "the ReLU belongs to each gradient inside the sum, not to the summed weight."),
        (averaged, "your weights are Z = h*w times too small: Grad-CAM++ sums over positions "
                   "(alpha already plays the role of the averaging coefficient)."),
        (mixed, "your alpha uses the mixed-index denominator sum_ab A_ab g_ab^3; use s_k * g_ij^3."),
        (alpha_only, "you summed alpha over the positive-gradient pixels but forgot to multiply by "
                     "the gradient itself."),
    ]
    compare_outputs(name, fn, _reference_pp_weights, _cases(), hints, rtol=1e-6, atol=1e-12)
    return passed(name)


def check_gradcam_plus_weights(fn: Callable[[Tensor], Tensor]) -> None:
    """Check ``fn(gradients) -> weights`` of shape ``(N, K)``: the Grad-CAM+ weights
    ``w+_k = (1/Z) sum_ij ReLU(g_ij)`` (Lerma & Lucas)."""
    name = "gradcam_plus_weights"

    def relu_of_mean(got, expected, gradients):
        return _close(got, torch.relu(gradients.mean(dim=(2, 3))))

    def no_relu(got, expected, gradients):
        return _close(got, gradients.mean(dim=(2, 3)))

    def summed(got, expected, gradients):
        z = gradients.shape[2] * gradients.shape[3]
        return _close(got, expected * z)

    def abs_value(got, expected, gradients):
        return _close(got, gradients.abs().mean(dim=(2, 3)))

    hints = [
        (relu_of_mean, "you clipped the averaged gradient. Grad-CAM+ clips every gradient first and "
                       "then averages: mean(ReLU(g)), not ReLU(mean(g))."),
        (no_relu, "these are the plain Grad-CAM weights: replace each gradient by its positive part "
                  "before averaging."),
        (summed, "your weights are Z = h*w times too large: average over positions instead of summing."),
        (abs_value, "you used |g|; negative gradients must count as 0, not as positive evidence."),
    ]
    cases = [(gradients,) for gradients, _ in _cases()]
    compare_outputs(name, fn, _reference_plus_weights, cases, hints, rtol=1e-6, atol=1e-12)
    return passed(name)
