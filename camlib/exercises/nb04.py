"""Exercise checks for notebook 04 (Grad-CAM and how it generalises CAM).

Each ``check_*`` runs the learner's function on several seeded inputs, compares it with a
reference, and raises :class:`~camlib.exercises._check.ExerciseError` naming what differs and
the likely mistake. It prints one success line when every case agrees.

Shapes follow the course notation: activations and gradients ``(N, K, h, w)``, channel
weights ``(N, K)``, maps ``(N, h, w)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_gradcam_weights", "check_gradcam_map", "check_softmax_gradcam"]


def _cases_gradients() -> list[tuple[Tensor]]:
    gen = torch.Generator().manual_seed(4)
    shapes = [(1, 3, 4, 4), (2, 5, 3, 6), (3, 2, 7, 5)]
    return [(torch.randn(shape, generator=gen, dtype=torch.float64),) for shape in shapes]


def _cases_map() -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(40)
    cases = []
    for n, k, h, w in [(1, 3, 4, 4), (2, 6, 5, 3), (3, 4, 6, 6)]:
        weights = torch.randn(n, k, generator=gen, dtype=torch.float64)
        activations = torch.rand(n, k, h, w, generator=gen, dtype=torch.float64) * 2.0
        cases.append((weights, activations))
    return cases


def _reference_weights(gradients: Tensor) -> Tensor:
    # alpha_k = (1/Z) sum_ij g^k_ij
    return gradients.mean(dim=(2, 3))


def _reference_map(weights: Tensor, activations: Tensor) -> Tensor:
    # L = ReLU(sum_k alpha_k A^k)
    return torch.relu(torch.einsum("nk,nkhw->nhw", weights, activations))


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=1e-8)


def check_gradcam_weights(fn: Callable[[Tensor], Tensor]) -> None:
    """Check ``fn(gradients) -> weights``: the Grad-CAM channel weights
    ``alpha_k = (1/Z) sum_ij dy/dA^k_ij``, one per sample and channel, shape ``(N, K)``."""
    name = "gradcam_weights"

    def summed(got, expected, gradients):
        z = gradients.shape[2] * gradients.shape[3]
        return _close(got, expected * z)

    def channel_axis(got, expected, gradients):
        return got.shape == (gradients.shape[0], gradients.shape[2], gradients.shape[3])

    def one_axis(got, expected, gradients):
        return got.dim() == 3 and got.shape[:2] == gradients.shape[:2]

    def relu_first(got, expected, gradients):
        return _close(got, torch.relu(gradients).mean(dim=(2, 3)))

    hints = [
        (summed, "your weights are Z = h*w times too large: Grad-CAM averages the gradients over "
                 "the h*w positions, it does not sum them."),
        (channel_axis, "you averaged over the channel axis (dim 1). The weight of channel k is a "
                       "spatial average: reduce over the two spatial axes (dims 2 and 3)."),
        (one_axis, "you reduced only one spatial axis; average over both height and width."),
        (relu_first, "you applied a ReLU to the gradients. Grad-CAM averages the signed gradients; "
                     "clipping them gives Grad-CAM+ (notebook 05)."),
    ]
    compare_outputs(name, fn, _reference_weights, _cases_gradients(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)


def check_gradcam_map(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(weights, activations) -> map``: ``ReLU(sum_k weights[:, k] * activations[:, k])``,
    shape ``(N, h, w)``."""
    name = "gradcam_map"

    def no_relu(got, expected, weights, activations):
        return _close(got, torch.einsum("nk,nkhw->nhw", weights, activations))

    def relu_weights(got, expected, weights, activations):
        return _close(got, torch.einsum("nk,nkhw->nhw", torch.relu(weights), activations))

    def kept_channels(got, expected, weights, activations):
        return got.dim() == 4

    def negative(got, expected, weights, activations):
        return bool((got < 0).any())

    hints = [
        (no_relu, "your map equals the weighted sum before the ReLU. Grad-CAM keeps only the "
                  "positive part: apply torch.relu to the summed map."),
        (relu_weights, "you clipped the channel weights instead of the map. The ReLU acts on the "
                       "weighted sum over channels, after the negative weights have done their work."),
        (kept_channels, "your answer still has a channel axis: sum the weighted activations over k."),
        (negative, "your map has negative values; the last step of Grad-CAM is a ReLU."),
    ]
    compare_outputs(name, fn, _reference_map, _cases_map(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)


def _cases_softmax() -> list[tuple[Tensor, Tensor, int]]:
    gen = torch.Generator().manual_seed(404)
    cases = []
    for n, c, h, w, target in [(1, 4, 5, 5, 0), (2, 3, 4, 6, 2), (3, 5, 3, 3, 1)]:
        cams = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
        logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2.0
        cases.append((cams, torch.softmax(logits, dim=1), target))
    return cases


def _reference_softmax(cams: Tensor, probs: Tensor, target: int) -> Tensor:
    # Z * pre-ReLU Grad-CAM of p_c on a mean-GAP head = p_c * (CAM_c - sum_j p_j CAM_j)
    mixture = torch.einsum("nc,nchw->nhw", probs, cams)
    return probs[:, target, None, None] * (cams[:, target] - mixture)


def check_softmax_gradcam(fn: Callable[[Tensor, Tensor, int], Tensor]) -> None:
    """Check ``fn(cams, probs, target) -> map``: on a mean-GAP linear head, ``Z`` times the
    pre-ReLU Grad-CAM of the softmax probability ``p_c``, i.e. ``p_c (CAM_c - sum_j p_j CAM_j)``.

    ``cams`` is ``(N, C, h, w)`` (one CAM per class), ``probs`` is ``(N, C)``, the answer ``(N, h, w)``.
    """
    name = "softmax_gradcam"

    def no_pc(got, expected, cams, probs, target):
        return _close(got, expected / probs[:, target, None, None])

    def plain_cam(got, expected, cams, probs, target):
        return _close(got, cams[:, target]) or _close(got, probs[:, target, None, None] * cams[:, target])

    def unweighted_mean(got, expected, cams, probs, target):
        alt = probs[:, target, None, None] * (cams[:, target] - cams.mean(dim=1))
        return _close(got, alt)

    def relu(got, expected, cams, probs, target):
        return _close(got, torch.relu(expected))

    hints = [
        (no_pc, "your map is missing the overall factor p_c: the derivative of p_c is "
                "p_c * (dY_c - sum_j p_j dY_j). Without p_c you have the log-softmax map."),
        (plain_cam, "your map ignores the other classes. Differentiating the softmax subtracts the "
                    "probability-weighted average of all the classes' CAMs."),
        (unweighted_mean, "you subtracted the plain mean of the CAMs; each class's CAM must be "
                          "weighted by its probability p_j."),
        (relu, "the exercise asks for the map before the ReLU."),
    ]
    compare_outputs(name, fn, _reference_softmax, _cases_softmax(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)

