"""Checks for the exercises of notebook 00 (what a CNN learns).

Exercise 1 (design), ``edge_filter()`` returns a 3x3 kernel that, followed by a ReLU, responds where the
image gets brighter from top to bottom (dark above, bright below), and nowhere else: zero on flat
regions, zero on the opposite edge (bright above), zero on vertical edges. Such a kernel has row
sums ``r_0, r_1, r_2`` with ``r_0 + r_1 + r_2 = 0`` and ``r_2 > r_0``, and every column sum zero.

Exercise 2 (predict), ``receptive_field_size(layers)``: the side, in input pixels, of the square a
cell of the last layer's output sees, for a stack of layers given as ``(kind, kernel, stride)``
tuples (``kind`` is ``"conv"`` or ``"pool"``; sizes are square). With ``j_l`` the product of the
strides of the layers before layer ``l``: ``r = 1 + sum_l (kernel_l - 1) * j_l``. The course's
network gives 46.

Each check runs the learner's answer on several cases, compares with the reference and says
what differs with a hint, without printing the reference answer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = ["check_edge_filter", "check_receptive_field", "COURSE_LAYERS"]

#: The course network's feature stage as (kind, kernel, stride): its cells see 46 x 46 pixels.
COURSE_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1), ("pool", 2, 2),
    ("conv", 3, 1), ("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1),
)


def _respond(kernel: Tensor, image: Tensor) -> Tensor:
    """ReLU of the valid cross-correlation of a (H, W) image with a (3, 3) kernel."""
    return torch.relu(F.conv2d(image[None, None], kernel[None, None])[0, 0])


def _step(rows: bool, rising: bool, size: int = 9) -> Tensor:
    """A (size, size) image that steps from 0 to 1 (rising) or 1 to 0 halfway down (rows) or across."""
    ramp = (torch.arange(size, dtype=torch.float64) >= size // 2).to(torch.float64)
    ramp = ramp if rising else 1.0 - ramp
    return ramp[:, None].expand(size, size).clone() if rows else ramp[None, :].expand(size, size).clone()


def check_edge_filter(edge_filter: Callable[[], Tensor] | Tensor) -> None:
    """Check the 3x3 kernel ``edge_filter()`` (or the kernel itself): with a ReLU it must detect
    'dark above, bright below' and nothing else."""
    name = "edge_filter"
    kernel = edge_filter() if callable(edge_filter) else edge_filter
    if not isinstance(kernel, Tensor):
        raise ExerciseError(f"{name}: return a torch tensor of shape (3, 3), got {type(kernel).__name__}.")
    if tuple(kernel.shape) != (3, 3):
        raise ExerciseError(f"{name}: the kernel must have shape (3, 3), yours has {tuple(kernel.shape)}.")
    k = kernel.detach().to(torch.float64)
    flat = torch.full((9, 9), 0.7, dtype=torch.float64)
    if _respond(k, flat).abs().max() > 1e-9 or _respond(-k, flat).abs().max() > 1e-9:
        raise ExerciseError(
            f"{name}: your filter responds on a flat image (value 0.7 everywhere).\nHint: on a flat region every "
            "output is 0.7 times the sum of the kernel's entries; what must that sum be?"
        )
    if _respond(k, _step(rows=True, rising=False)).max() > 1e-9:
        raise ExerciseError(
            f"{name}: your filter responds to the opposite edge (bright above, dark below).\nHint: after "
            "the ReLU only positive responses survive; a filter that is positive on one edge is negative on "
            "the opposite one, unless it responds to both in the same way."
        )
    if _respond(k, _step(rows=True, rising=True)).max() <= 1e-9:
        raise ExerciseError(
            f"{name}: your filter gives nothing on the edge it should detect (dark rows above, bright rows below)."
            "\nHint: the output at (i, j) weights image row i + u by kernel row u. Where the image is dark above "
            "and bright below, which kernel rows see the bright pixels, and what sign should they have?"
        )
    for rising in (True, False):
        if _respond(k, _step(rows=False, rising=rising)).max() > 1e-9:
            raise ExerciseError(
                f"{name}: your filter responds to a vertical edge (dark on one side, bright on the other).\n"
                "Hint: on a vertical edge every row of the image is the same, so each column of the kernel "
                "multiplies one pixel value: what must each column of the kernel add up to?"
            )
    print(f"Correct: {name} responds to 'dark above, bright below' and to nothing else on the test images.")


def _reference_rf(layers: Sequence[tuple[str, int, int]]) -> int:
    size, jump = 1, 1
    for _kind, kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size


def _rf_cases() -> list[tuple[list[tuple[str, int, int]]]]:
    return [
        ([("conv", 3, 1)],),
        ([("conv", 3, 1), ("conv", 3, 1)],),
        ([("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)],),
        ([("conv", 5, 2), ("conv", 3, 1)],),
        ([("conv", 7, 2), ("pool", 3, 2), ("conv", 3, 1), ("conv", 3, 1)],),
        (list(COURSE_LAYERS),),
    ]


def check_receptive_field(receptive_field_size: Callable[[Sequence[tuple[str, int, int]]], int]) -> None:
    """Check ``receptive_field_size(layers)`` on several stacks, among them the course's network (46)."""
    name = "receptive_field_size"

    def added_kernels(got, expected, layers):  # forgot that later layers step in larger jumps
        return int(got) == 1 + sum(k - 1 for _, k, _ in layers)

    def multiplied(got, expected, layers):
        product = 1
        for _, k, _ in layers:
            product *= k
        return int(got) == product

    def ignored_pools(got, expected, layers):
        return int(got) == _reference_rf([layer for layer in layers if layer[0] == "conv"])

    hints = [
        (added_kernels, "you added kernel - 1 for every layer as if each one stepped one input pixel at a time. "
                        "After a layer with stride 2, neighbouring cells are 2 input pixels apart, so each "
                        "later kernel step covers more input pixels: keep track of that spacing."),
        (multiplied, "you multiplied the kernel sizes. Two 3x3 convolutions see 5 pixels, not 9: each layer "
                     "adds a border to the field, it does not multiply it."),
        (ignored_pools, "a pooling window is also a window: it widens the field like a convolution of the same "
                        "kernel size, and its stride spaces out everything after it."),
    ]
    cases = _rf_cases()
    compare_outputs(name, lambda layers: torch.tensor(float(receptive_field_size(layers))),
                    lambda layers: torch.tensor(float(_reference_rf(layers))), cases, hints, rtol=0, atol=0)
    passed(name)
