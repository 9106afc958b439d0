"""Checks for the exercises of notebook 02 (occlusion sensitivity).

Exercise 1 (find a counterexample), ``raising_window = (top, left)``: a window of the thread's
triangle (``camlib.data.thread()[THREAD_TRIANGLE]``) whose 8 x 8 grey patch (0.5) *raises* the
course's ``gap`` network's triangle logit: a negative drop, ``f(x) - f(x_{P <- 0.5}) < 0``. So a
large occlusion value is not "importance": hiding part of an image can add evidence.

Exercise 2 (design), ``ring_mean_fill(x, top, left, patch)``: a baseline that hides a window
without pasting a square of a foreign colour: a copy of ``x`` (shape ``(1, C, H, W)``, unchanged
itself) whose ``patch x patch`` window at ``(top, left)`` is filled, channel by channel, with the
mean of the *ring*: the pixels that touch the window from outside (including the diagonal
neighbours of its corners), as far as they lie inside the image. The check then re-runs the
notebook's experiment with it.

Each check compares the learner's answer with the model itself or with the reference and explains
what differs, with a hint, without printing the reference answer.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .._hooks import predict
from ._check import ExerciseError, compare_outputs, passed

__all__ = ["RAISE_PATCH", "check_raising_window", "check_ring_mean_fill", "windows_off_object"]

#: the patch size of exercise 1 and of the experiment of exercise 2
RAISE_PATCH = 8


def _triangle() -> tuple[torch.nn.Module, Tensor, int, Tensor]:
    from camlib.data import THREAD_TRIANGLE, thread
    from camlib.models import load_model

    shapes = thread()
    i = THREAD_TRIANGLE
    return load_model("gap"), shapes.images[i : i + 1], int(shapes.labels[i]), shapes.masks[i]


def check_raising_window(top: int, left: int) -> None:
    """Check that the grey 8 x 8 patch at ``(top, left)`` raises the thread triangle's logit."""
    name = "raising window"
    model, x, c, _ = _triangle()
    size = x.shape[-1]
    for value, what in ((top, "top"), (left, "left")):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= size - RAISE_PATCH:
            raise ExerciseError(f"{name}: {what} must be an int from 0 to {size - RAISE_PATCH} (the window must fit "
                                f"in the {size} x {size} image), got {value!r}.")
    hidden = x.clone()
    hidden[..., top : top + RAISE_PATCH, left : left + RAISE_PATCH] = 0.5
    scores = predict(model, torch.cat([x, hidden]))[:, c]
    drop = float(scores[0] - scores[1])
    if drop >= -0.05:
        raise ExerciseError(
            f"{name}: the grey patch at ({top}, {left}) lowers the triangle logit by {drop:.3f} (a raise would be a "
            "drop below -0.05).\nHint: the grey occlusion maps of this notebook colour each pixel by the mean drop of "
            "the windows covering it; the colour of a raise is on the other side of white."
        )
    print(f"Correct: the grey patch at ({top}, {left}) raises the triangle logit by {-drop:.3f}: hiding part of the "
          "image added evidence for the class.")


def _reference_ring_fill(x: Tensor, top: int, left: int, patch: int) -> Tensor:
    _, _, height, width = x.shape
    r0, r1 = max(top - 1, 0), min(top + patch + 1, height)
    c0, c1 = max(left - 1, 0), min(left + patch + 1, width)
    ring = torch.zeros(height, width, dtype=torch.bool)
    ring[r0:r1, c0:c1] = True
    ring[top : top + patch, left : left + patch] = False
    out = x.clone()
    out[..., top : top + patch, left : left + patch] = x[..., ring].mean(dim=-1)[..., None, None]
    return out


def _ring_cases() -> list[tuple[Tensor, int, int, int]]:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 10, 12, generator=g, dtype=torch.float64)
    return [(x, 3, 4, 3), (x, 0, 0, 4), (x, 7, 9, 3), (x, 2, 0, 5), (torch.rand(1, 1, 6, 6, generator=g,
            dtype=torch.float64), 1, 1, 2)]


def windows_off_object(model: torch.nn.Module, x: Tensor, c: int, mask: Tensor, fill: Callable[..., Tensor],
                       patch: int = RAISE_PATCH, stride: int = RAISE_PATCH // 2, top_k: int = 10) -> int:
    """How many of the ``top_k`` windows with the largest drop of logit ``c`` do not touch ``mask``,
    when ``fill(x, top, left, patch)`` hides each window."""
    size = x.shape[-1]
    starts = [k * stride for k in range(math.ceil((size - patch) / stride) + 1)]
    places = [(t, s) for t in starts for s in starts]
    scores = predict(model, torch.cat([x] + [fill(x, t, s, patch) for t, s in places]))[:, c]
    drops = scores[0] - scores[1:]
    best = drops.argsort(descending=True)[:top_k].tolist()
    return sum(not bool(mask[places[k][0] : places[k][0] + patch, places[k][1] : places[k][1] + patch].any())
               for k in best)


def check_ring_mean_fill(ring_mean_fill: Callable[[Tensor, int, int, int], Tensor]) -> None:
    """Check the ring-mean baseline, then count the triangle's top-10 windows off the object with it."""
    name = "ring_mean_fill"

    def guarded(x: Tensor, top: int, left: int, patch: int) -> Tensor:
        before = x.clone()
        out = ring_mean_fill(x, top, left, patch)
        if not torch.equal(x, before):
            raise ExerciseError(f"{name}: your function changed its input x; fill a copy (x.clone()) instead.")
        return out

    hints = [
        (lambda got, exp, x, t, l, p: torch.allclose(got[..., t : t + p, l : l + p],
                                                       x[..., t : t + p, l : l + p].mean(dim=(-1, -2), keepdim=True)
                                                       .expand(*x.shape[:2], p, p)),
         "you filled the window with its own mean colour, which keeps the object's colour where the window covers "
         "it: nothing is hidden. Use the pixels around the window."),
        (lambda got, exp, x, t, l, p: not torch.allclose(torch.cat([got[..., :t, :].flatten(), got[..., t + p:, :]
                                                                    .flatten()]),
                                                         torch.cat([x[..., :t, :].flatten(), x[..., t + p:, :]
                                                                    .flatten()])),
         "pixels outside the window changed: only the window itself may be filled."),
        (lambda got, exp, x, t, l, p: t == 0 or l == 0 or t + p == x.shape[-2] or l + p == x.shape[-1],
         "this window touches the border of the image: the ring is cut there, so average only the ring pixels that "
         "exist (a zero-padded ring would darken the fill)."),
        (lambda got, exp, x, t, l, p: True,
         "the ring is every pixel that touches the window from outside, the four diagonal corner pixels included, "
         "and the mean is taken per channel."),
    ]
    compare_outputs(name, guarded, _reference_ring_fill, _ring_cases(), hints, rtol=1e-9, atol=1e-12)
    passed(name)
    model, x, c, mask = _triangle()

    def black(image: Tensor, top: int, left: int, patch: int) -> Tensor:
        out = image.clone()
        out[..., top : top + patch, left : left + patch] = 0.0
        return out

    yours = windows_off_object(model, x, c, mask, lambda *args: ring_mean_fill(*args).to(x.dtype))
    print(f"The experiment: of the 10 windows of the thread's triangle with the largest drop, {yours} do not touch "
          f"the object with your ring-mean fill, {windows_off_object(model, x, c, mask, black)} with the black patch.")
