"""Checks for the exercises of notebook 00 (what a CNN learns).

Exercise 1, ``conv2d_single(image, kernel)``: the "valid" 2-D cross-correlation that PyTorch's
``conv2d`` computes for one channel and one filter, without padding or bias:
``out[i, j] = sum_{u, v} kernel[u, v] * image[i + u, j + v]``, of shape
``(H - kh + 1, W - kw + 1)``.

Exercise 2, ``gap_head(A, weight, bias)``: the logits of a global-average-pooling head,
``Y[n, c] = bias[c] + sum_k weight[c, k] * (1/Z) sum_{i, j} A[n, k, i, j]`` with ``Z = h * w``,
for activations ``A`` of shape (N, K, h, w), ``weight`` (C, K) and ``bias`` (C,).

Each check runs the learner's function on several inputs, compares with the reference and
explains what differs, without printing the reference code.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import compare_outputs, passed

__all__ = ["check_conv2d_single", "check_gap_head"]


def _reference_conv(image: Tensor, kernel: Tensor) -> Tensor:
    """Valid cross-correlation of a (H, W) image with a (kh, kw) kernel."""
    return F.conv2d(image[None, None], kernel[None, None])[0, 0]


def _conv_cases() -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(0)
    edge = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    square = torch.zeros(8, 10, dtype=torch.float64)
    square[2:6, 3:8] = 1.0
    return [
        (square, edge),
        (torch.randn(7, 9, generator=g, dtype=torch.float64), torch.randn(3, 3, generator=g, dtype=torch.float64)),
        (torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(2, 3, generator=g, dtype=torch.float64)),
        (torch.randn(5, 5, generator=g, dtype=torch.float64), torch.randn(1, 1, generator=g, dtype=torch.float64)),
    ]


def check_conv2d_single(conv2d_single: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``conv2d_single(image, kernel)`` against ``torch.nn.functional.conv2d`` (no padding)."""
    name = "conv2d_single"
    hints = [
        (
            lambda got, exp, image, kernel: got.shape == image.shape,
            "your output has the size of the image, so you padded it. This exercise asks for the "
            "'valid' output without padding: (H - kh + 1, W - kw + 1) positions, where the kernel fits "
            "entirely inside the image.",
        ),
        (
            lambda got, exp, image, kernel: got.shape != exp.shape,
            "the shape is off: the number of output rows is H - kh + 1 (kernel rows), the number of "
            "columns W - kw + 1 (kernel columns). Check that rows and columns are not swapped.",
        ),
        (
            lambda got, exp, image, kernel: torch.allclose(got, _reference_conv(image, kernel.flip(0, 1)), atol=1e-9),
            "you flipped the kernel: that is the convolution of signal processing. Deep-learning "
            "'convolutions' (torch's conv2d) do not flip: out[i, j] = sum kernel[u, v] * image[i + u, j + v].",
        ),
        (
            lambda got, exp, image, kernel: torch.allclose(got, _reference_conv(image, kernel.T), atol=1e-9),
            "rows and columns are mixed up: you paired kernel[u, v] with image[i + v, j + u]. The first "
            "index of the kernel moves along the rows of the image (i + u), the second along the "
            "columns (j + v).",
        ),
    ]
    compare_outputs(name, conv2d_single, _reference_conv, _conv_cases(), hints, rtol=1e-6, atol=1e-8)
    return passed(name)


def _reference_head(A: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """GAP then linear: bias + mean_ij(A) @ weight.T."""
    return bias + A.mean(dim=(2, 3)) @ weight.T


def _head_cases() -> list[tuple[Tensor, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(1)
    cases = []
    for n, k, h, w, c in ((2, 5, 4, 4, 3), (1, 3, 2, 6, 4), (3, 8, 5, 3, 2)):
        A = torch.relu(torch.randn(n, k, h, w, generator=g, dtype=torch.float64))
        weight = torch.randn(c, k, generator=g, dtype=torch.float64)
        bias = torch.randn(c, generator=g, dtype=torch.float64)
        cases.append((A, weight, bias))
    return cases


def check_gap_head(gap_head: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``gap_head(A, weight, bias)`` = ``bias + mean_ij(A) @ weight.T``, shape (N, C)."""
    name = "gap_head"
    hints = [
        (
            lambda got, exp, A, W, b: torch.allclose(got, b + A.sum(dim=(2, 3)) @ W.T, atol=1e-9),
            "you summed the activations over the positions; global AVERAGE pooling divides the sum by "
            "Z = h * w (use .mean over the two spatial axes).",
        ),
        (
            lambda got, exp, A, W, b: torch.allclose(got, A.mean(dim=(2, 3)) @ W.T, atol=1e-9),
            "your logits are missing the bias: add bias[c] to every sample's logit for class c.",
        ),
        (
            lambda got, exp, A, W, b: torch.allclose(got, b + A.amax(dim=(2, 3)) @ W.T, atol=1e-9),
            "you took the maximum over the positions (global max pooling); the course's head takes "
            "the mean.",
        ),
        (
            lambda got, exp, A, W, b: got.shape == (A.shape[0], A.shape[1]) or got.shape == (A.shape[0],),
            "the answer must have one logit per sample and class, shape (N, C): pool over the spatial "
            "axes (2, 3) only, then multiply the pooled (N, K) features by weight transposed.",
        ),
    ]
    compare_outputs(name, gap_head, _reference_head, _head_cases(), hints, rtol=1e-6, atol=1e-8)
    return passed(name)
