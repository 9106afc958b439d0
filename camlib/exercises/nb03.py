"""Checks for the exercises of notebook 03 (class activation maps).

Exercise 1, ``class_activation_map(features, fc_weight, target)``: the CAM before any ReLU,

    M[n] = sum_k fc_weight[target[n], k] * features[n, k]

for features ``(N, K, h, w)``, the linear layer's weight ``(C, K)`` and targets ``(N,)``; returns
``(N, h, w)``. No bias, no ReLU, no normalisation.

Exercise 2, ``iou_at_fraction(cam_map, mask, fraction)``: keep the pixels where the (already
upsampled) map is above ``fraction`` times its maximum (strictly, as :func:`camlib.metrics.iou`), and return the intersection over
union of that region with the boolean ground-truth mask, as a 0-dimensional float tensor.
Both inputs have shape ``(H, W)``; assume the map's maximum is positive.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_class_activation_map", "check_iou_at_fraction"]


# ----------------------------------------------------------------------------- references


def _reference_cam(features: Tensor, fc_weight: Tensor, target: Tensor) -> Tensor:
    return torch.einsum("nk,nkhw->nhw", fc_weight[target], features)


def _reference_iou(cam_map: Tensor, mask: Tensor, fraction: float) -> Tensor:
    region = cam_map > fraction * cam_map.max()
    inter = (region & mask).sum()
    union = (region | mask).sum()
    return (inter / union).to(torch.float64)


# ----------------------------------------------------------------------------- test inputs


def _cam_cases() -> list[tuple]:
    gen = torch.Generator().manual_seed(4)
    cases = []
    for n, k, h, w, classes in [(1, 3, 4, 4, 2), (2, 5, 3, 6, 4), (3, 8, 5, 5, 3)]:
        # the features are post-ReLU (non-negative) as in the course models; the weights have both signs,
        # so the map has negative entries that a ReLU would remove
        features = torch.rand(n, k, h, w, generator=gen, dtype=torch.float64) * (
            torch.rand(n, k, h, w, generator=gen, dtype=torch.float64) > 0.3
        )
        fc_weight = torch.randn(classes, k, generator=gen, dtype=torch.float64)
        target = torch.randint(0, classes, (n,), generator=gen)
        cases.append((features, fc_weight, target))
    return cases


def _cam_hints():
    def with_relu(got, expected, *case):
        return torch.allclose(got, expected.clamp(min=0), atol=1e-9)

    def mean_over_k(got, expected, features, fc_weight, target):
        return torch.allclose(got, expected / features.shape[1], atol=1e-9)

    def wrong_class(got, expected, features, fc_weight, target):
        return got.shape == expected.shape and torch.allclose(got, _reference_cam(features, fc_weight, 0 * target),
                                                              atol=1e-9)

    def normalised(got, expected, *case):
        return float(got.max()) == 1.0 or float(got.min()) == 0.0 and float(got.max()) <= 1.0

    def kept_channels(got, expected, *case):
        return got.dim() == 4

    return [
        (kept_channels, "sum over the channel axis k: the CAM has one value per position (N, h, w)."),
        (with_relu, "you applied a ReLU; this exercise asks for the map before any ReLU (negative values "
         "are evidence against the class and are needed for the logit identity)."),
        (mean_over_k, "you averaged over the channels; CAM sums them, each weighted by w_k^c."),
        (wrong_class, "use the weight row of each sample's own target class, fc_weight[target[n]]."),
        (normalised, "do not normalise the map: the exercise wants the raw weighted sum."),
    ]


def _iou_cases() -> list[tuple]:
    gen = torch.Generator().manual_seed(5)
    cases = []
    for size, fraction in [(8, 0.2), (12, 0.5), (10, 0.2)]:
        cam_map = torch.rand(size, size, generator=gen, dtype=torch.float64) ** 3 * 4.0 - 0.5
        cam_map[size // 4, size // 4] = 5.0  # a positive maximum
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[size // 8 : size // 2, size // 8 : size // 2] = True
        cases.append((cam_map, mask, fraction))
    return cases


def _iou_hints():
    def absolute(got, expected, cam_map, mask, fraction):
        region = cam_map > fraction
        return torch.allclose(got, ((region & mask).sum() / (region | mask).sum()).double(), atol=1e-9)

    def over_mask(got, expected, cam_map, mask, fraction):
        region = cam_map > fraction * cam_map.max()
        return torch.allclose(got, ((region & mask).sum() / mask.sum()).double(), atol=1e-9)

    def over_region(got, expected, cam_map, mask, fraction):
        region = cam_map > fraction * cam_map.max()
        return torch.allclose(got, ((region & mask).sum() / region.sum()).double(), atol=1e-9)

    def inverted(got, expected, cam_map, mask, fraction):
        region = cam_map <= fraction * cam_map.max()
        return torch.allclose(got, ((region & mask).sum() / (region | mask).sum()).double(), atol=1e-9)

    def integer(got, expected, *case):
        return float(got) == 0.0 and float(expected) > 0.0

    return [
        (absolute, "the threshold is relative: fraction * cam_map.max(), not the number `fraction` itself."),
        (over_mask, "you divided by the mask's area (that is recall); IoU divides by the union of both regions."),
        (over_region, "you divided by the region's area (that is precision); IoU divides by the union."),
        (inverted, "keep the pixels above the threshold, not below it."),
        (integer, "integer division rounds to 0: convert the counts to float before dividing."),
    ]


# ----------------------------------------------------------------------------- checks


def check_class_activation_map(class_activation_map: Callable[..., Tensor]) -> None:
    """Check exercise 1: ``M[n] = sum_k fc_weight[target[n], k] * features[n, k]`` (pre-ReLU CAM)."""
    if not callable(class_activation_map):
        raise TypeError("check_class_activation_map expects your function itself, not its result.")
    compare_outputs("class_activation_map", class_activation_map, _reference_cam, _cam_cases(), _cam_hints(),
                    rtol=1e-6, atol=1e-9)
    return passed("class_activation_map")


def check_iou_at_fraction(iou_at_fraction: Callable[..., Tensor]) -> None:
    """Check exercise 2: IoU of ``{map > fraction * max(map)}`` with the mask."""
    if not callable(iou_at_fraction):
        raise TypeError("check_iou_at_fraction expects your function itself, not its result.")
    compare_outputs("iou_at_fraction", iou_at_fraction, _reference_iou, _iou_cases(), _iou_hints(),
                    rtol=1e-6, atol=1e-9)
    return passed("iou_at_fraction")
