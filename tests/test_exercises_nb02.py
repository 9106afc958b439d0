"""The checks of notebook 02's exercises accept the solution and reject typical mistakes."""

from __future__ import annotations

import math

import pytest
import torch

from camlib.exercises import nb02
from camlib.exercises._check import ExerciseError


# ----------------------------------------------------------------------------- exercise 1


def _count(size, patch, stride, last):
    if last == "inside":  # only windows that lie fully inside the image
        return (size - patch) // stride + 1
    if last == "range":  # range(0, size - patch, stride): one short
        return len(range(0, size - patch, stride))
    if last == "all":  # a window at every stride step of the image
        return len(range(0, size, stride))
    return math.ceil((size - patch) / stride) + 1


def _grid(f, x, patch, stride, baseline, *, last=None, sign=1.0, fill=None, fresh=True, inplace=False):
    """A parameterised occlusion grid: the defaults give the right answer, the flags typical bugs."""
    _, _, height, width = x.shape
    rows = _count(height, patch, stride, last)
    cols = _count(width, patch, stride, last)
    clean = f(x)[0]
    out = torch.empty(rows, cols, dtype=x.dtype)
    work = x if inplace else x.clone()
    for r in range(rows):
        for c in range(cols):
            occluded = x.clone() if fresh and not inplace else work
            occluded[..., r * stride : r * stride + patch, c * stride : c * stride + patch] = (
                baseline if fill is None else fill
            )
            out[r, c] = sign * (clean - f(occluded)[0])
    return out


def test_grid_accepts_solution(capsys):
    assert nb02.check_occlusion_grid(_grid) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, sign=-1.0), "wrong sign"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, last="range"), "misses the last window"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, last="inside"), "misses the last window"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, last="all"), "too many windows"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, fill=0.0), "with 0 rather than"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, fresh=False), "fresh copy"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b, inplace=True), "in place"),
        (lambda f, x, p, s, b: _grid(f, x, p, s, b).T.contiguous(), "transposed"),
    ],
)
def test_grid_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb02.check_occlusion_grid(wrong)


def test_grid_reports_learner_exception_and_passes_not_implemented():
    def broken(f, x, patch, stride, baseline):
        raise IndexError("index 9 is out of bounds")

    with pytest.raises(ExerciseError, match="raised IndexError"):
        nb02.check_occlusion_grid(broken)

    def student(f, x, patch, stride, baseline):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb02.check_occlusion_grid(student)


def test_grid_rejects_a_result_instead_of_a_function():
    with pytest.raises(TypeError, match="function"):
        nb02.check_occlusion_grid(torch.zeros(3, 3))


# ----------------------------------------------------------------------------- exercise 2


def _drop(w, x, baseline, top, left, patch):
    window = (slice(None), slice(top, top + patch), slice(left, left + patch))
    return (w[window] * (x[window] - baseline)).sum()


def test_linear_drop_accepts_solution(capsys):
    assert nb02.check_linear_occlusion_drop(_drop) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda w, x, b, t, l, p: w[:, t : t + p, l : l + p].sum(), "weights only"),
        (lambda w, x, b, t, l, p: (w * x)[:, t : t + p, l : l + p].sum(), "not to 0"),
        (lambda w, x, b, t, l, p: -_drop(w, x, b, t, l, p), "wrong sign"),
        (lambda w, x, b, t, l, p: _drop(w, x, b, l, t, p), "indexes rows"),
    ],
)
def test_linear_drop_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb02.check_linear_occlusion_drop(wrong)


def test_the_exercise_convention_is_camlibs():
    """The reference grid of exercise 1 equals camlib.occlusion's per-window drops (cut-off windows included)."""
    import camlib

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 9, 4)
    ).double().eval()
    x = torch.rand(1, 2, 8, 9, dtype=torch.float64)
    for patch, stride in [(3, 2), (4, 3), (2, 1)]:
        ours = nb02._reference_occlusion_grid(lambda b: model(b)[:, 1], x, patch, stride, 0.25)
        theirs = camlib.occlusion(model, x, target=1, patch=patch, stride=stride, baseline=0.25).extras["windows"][0]
        assert ours.shape == theirs.shape
        assert torch.allclose(ours, theirs, atol=1e-12)
