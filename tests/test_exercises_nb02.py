"""The checks of notebook 02's exercises accept right answers and reject typical mistakes with a hint."""

from __future__ import annotations

import pytest
import torch

import camlib
from camlib.exercises import nb02
from camlib.exercises._check import ExerciseError


# ----------------------------------------------------------------------------- exercise 1: a raising window


def _triangle_drops():
    model, x, c, _ = nb02._triangle()
    occ = camlib.occlusion(model, x, target=c, patch=nb02.RAISE_PATCH, stride=4, baseline=0.5)
    return occ.extras["windows"][0]


def test_raising_window_accepts_a_window_with_a_negative_drop(capsys):
    windows = _triangle_drops()
    row, col = divmod(int(windows.argmin()), windows.shape[1])
    assert float(windows.min()) < -0.05
    nb02.check_raising_window(row * 4, col * 4)
    assert "raises the triangle logit" in capsys.readouterr().out


def test_raising_window_rejects_a_window_that_lowers_the_logit_with_a_hint():
    windows = _triangle_drops()
    row, col = divmod(int(windows.argmax()), windows.shape[1])
    with pytest.raises(ExerciseError, match="lowers the triangle logit") as info:
        nb02.check_raising_window(row * 4, col * 4)
    assert "Hint" in str(info.value)


@pytest.mark.parametrize("top, left", [(-1, 0), (0, 57), (True, 3), (2.0, 3)])
def test_raising_window_rejects_windows_outside_the_image(top, left):
    with pytest.raises(ExerciseError, match="must be an int"):
        nb02.check_raising_window(top, left)


# ----------------------------------------------------------------------------- exercise 2: the ring-mean fill


def ring_fill(x, top, left, patch):
    # a second correct answer: average the (clipped) grown box minus the window, by sums
    _, _, h, w = x.shape
    r0, r1, c0, c1 = max(top - 1, 0), min(top + patch + 1, h), max(left - 1, 0), min(left + patch + 1, w)
    box = x[..., r0:r1, c0:c1].sum(dim=(-1, -2))
    inner = x[..., top : top + patch, left : left + patch].sum(dim=(-1, -2))
    count = (r1 - r0) * (c1 - c0) - patch * patch
    out = x.clone()
    out[..., top : top + patch, left : left + patch] = ((box - inner) / count)[..., None, None]
    return out


def own_mean(x, top, left, patch):
    out = x.clone()
    out[..., top : top + patch, left : left + patch] = x[..., top : top + patch, left : left + patch].mean(
        dim=(-1, -2), keepdim=True)
    return out


def zero_padded_ring(x, top, left, patch):
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    ring = padded[..., top : top + patch + 2, left : left + patch + 2].sum(dim=(-1, -2))
    inner = x[..., top : top + patch, left : left + patch].sum(dim=(-1, -2))
    out = x.clone()
    out[..., top : top + patch, left : left + patch] = ((ring - inner) / ((patch + 2) ** 2 - patch**2))[..., None, None]
    return out


def no_corners(x, top, left, patch):
    _, _, h, w = x.shape
    parts = []
    if top > 0:
        parts.append(x[..., top - 1, left : left + patch])
    if top + patch < h:
        parts.append(x[..., top + patch, left : left + patch])
    if left > 0:
        parts.append(x[..., top : top + patch, left - 1])
    if left + patch < w:
        parts.append(x[..., top : top + patch, left + patch])
    out = x.clone()
    out[..., top : top + patch, left : left + patch] = torch.cat(parts, dim=-1).mean(dim=-1)[..., None, None]
    return out


def in_place(x, top, left, patch):
    x[..., top : top + patch, left : left + patch] = 0.5
    return x


def test_ring_fill_accepts_correct_answers_and_reports_the_experiment(capsys):
    nb02.check_ring_mean_fill(ring_fill)
    out = capsys.readouterr().out
    assert "Correct" in out and "with the black patch" in out


@pytest.mark.parametrize("wrong, message", [
    (own_mean, "its own mean colour"),
    (zero_padded_ring, "touches the border"),
    (no_corners, "diagonal corner"),
    (in_place, "changed its input"),
])
def test_ring_fill_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb02.check_ring_mean_fill(wrong)


def test_ring_fill_passes_not_implemented_through():
    def unanswered(x, top, left, patch):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb02.check_ring_mean_fill(unanswered)


def test_windows_off_object_counts_what_it_says():
    model, x, c, mask = nb02._triangle()

    def grey(image, top, left, patch):
        out = image.clone()
        out[..., top : top + patch, left : left + patch] = 0.5
        return out

    windows = _triangle_drops()
    best = windows.flatten().argsort(descending=True)[:10].tolist()
    expected = sum(not bool(mask[(k // windows.shape[1]) * 4 : (k // windows.shape[1]) * 4 + 8,
                                 (k % windows.shape[1]) * 4 : (k % windows.shape[1]) * 4 + 8].any()) for k in best)
    assert nb02.windows_off_object(model, x, c, mask, grey) == expected
