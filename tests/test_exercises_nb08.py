"""The checks of notebook 08 accept the reference answers and reject typical mistakes with a hint."""

import pytest
import torch

from camlib.exercises import nb08
from camlib.exercises._check import ExerciseError


def _reject(check, wrong, message):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    text = str(info.value)
    assert "Hint" in text, text
    assert message in text, text


# ----------------------------------------------------------------------------- pointing game


def hits_solution(maps, masks):
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    return masks[torch.arange(n), flat // w, flat % w]


def hits_swapped(maps, masks):
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    row, col = flat // w, flat % w
    return torch.tensor([bool(masks[i, c, r]) if c < h and r < w else False for i, (r, c) in enumerate(zip(row, col))])


def test_hits_accepts_reference(capsys):
    assert nb08.check_pointing_hits(hits_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda maps, masks: maps.argmax(dim=1), "one axis only"),
        (lambda maps, masks: masks.reshape(-1)[maps.reshape(-1).argmax()], "whole batch"),
        (lambda maps, masks: hits_solution(-maps, masks), "minimum"),
        (hits_swapped, "swapped"),
    ],
    ids=["one-axis", "whole-batch", "argmin", "rows-columns-swapped"],
)
def test_hits_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_pointing_hits, wrong, message)


# ----------------------------------------------------------------------------- energy inside the mask


def energy_solution(maps, masks):
    positive = torch.relu(maps)
    total = positive.sum(dim=(1, 2))
    inside = (positive * masks).sum(dim=(1, 2))
    return torch.where(total > 0, inside / total.clamp(min=1e-300), torch.zeros_like(total))


def test_energy_accepts_reference(capsys):
    assert nb08.check_energy_inside(energy_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda maps, masks: (maps * masks).sum(dim=(1, 2)) / maps.sum(dim=(1, 2)), "positive part"),
        (lambda maps, masks: masks.double().mean(dim=(1, 2)), "share of pixels"),
        (lambda maps, masks: (torch.relu(maps) * masks).sum(dim=(1, 2)) / masks.sum(dim=(1, 2)).clamp(min=1), "averaged the map over the mask"),
        (lambda maps, masks: (torch.relu(maps) * masks).sum(dim=(1, 2)) / torch.relu(maps).sum(dim=(1, 2)), "0/0"),
        (lambda maps, masks: energy_solution(maps, masks)[None], "shape (N,)"),
    ],
    ids=["no-relu", "pixel-share", "mean-in-mask", "nan-on-empty-map", "wrong-shape"],
)
def test_energy_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_energy_inside, wrong, message)


# ----------------------------------------------------------------------------- AUC


def auc_solution(curves):
    t = curves.shape[-1]
    step = 1.0 / (t - 1)
    return step * (curves[..., 1:] + curves[..., :-1]).sum(dim=-1) / 2


def test_auc_accepts_reference(capsys):
    assert nb08.check_curve_auc(auc_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c: c.mean(dim=-1), "count half"),
        (lambda c: (c.sum(dim=-1) - c[..., 0] / 2 - c[..., -1] / 2) / c.shape[-1], "not T"),
        (lambda c: c.sum(dim=-1), "spacing"),
        (lambda c: c.mean(dim=0), "one area per curve"),
    ],
    ids=["plain-mean", "divide-by-T", "plain-sum", "wrong-axis"],
)
def test_auc_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_curve_auc, wrong, message)


def test_auc_matches_numpy_trapezoid():
    curves = torch.rand(3, 9, dtype=torch.float64)
    import numpy as np

    expected = np.trapezoid(curves.numpy(), dx=1 / 8, axis=-1) if hasattr(np, "trapezoid") else np.trapz(curves.numpy(), dx=1 / 8, axis=-1)
    assert torch.allclose(nb08._auc_reference(curves), torch.as_tensor(expected))
