"""The checks of notebook 01 accept the reference answer and reject typical wrong answers."""

from __future__ import annotations

import pytest
import torch

from camlib.exercises import nb01
from camlib.exercises._check import ExerciseError

# ---------------------------------------------------------------- occlusion_deltas


def occlusion_right(f, x, baseline):
    full = f(x)
    deltas = torch.zeros_like(x)
    for i in range(x.shape[0]):
        occluded = x.clone()
        occluded[i] = baseline[i]
        deltas[i] = full - f(occluded)
    return deltas


def occlusion_wrong_sign(f, x, baseline):
    return -occlusion_right(f, x, baseline)


def occlusion_zero_baseline(f, x, baseline):
    return occlusion_right(f, x, torch.zeros_like(baseline))


def occlusion_in_place(f, x, baseline):
    full = f(x)
    deltas = torch.zeros_like(x)
    for i in range(x.shape[0]):
        occluded = x  # no copy: the occlusions accumulate in x
        occluded[i] = baseline[i]
        deltas[i] = full - f(occluded)
    return deltas


def occlusion_cumulative(f, x, baseline):
    occluded = x.clone()
    deltas = torch.zeros_like(x)
    for i in range(x.shape[0]):
        before = f(occluded)
        occluded[i] = baseline[i]
        deltas[i] = before - f(occluded)
    return deltas


def occlusion_all_at_once(f, x, baseline):
    return torch.full_like(x, float(f(x) - f(baseline)))


def test_occlusion_accepts_reference(capsys):
    assert nb01.check_occlusion_deltas(occlusion_right) is None
    assert "Correct: occlusion_deltas" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (occlusion_wrong_sign, "opposite sign"),
        (occlusion_zero_baseline, "baseline of 0"),
        (occlusion_in_place, "changed its input tensor in place"),
        (occlusion_cumulative, "fresh copy"),
        (occlusion_all_at_once, "all the features at once"),
    ],
)
def test_occlusion_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb01.check_occlusion_deltas(wrong)


def test_occlusion_reports_a_crash():
    def crashes(f, x, baseline):
        raise IndexError("index 3 is out of bounds")

    with pytest.raises(ExerciseError, match="raised IndexError"):
        nb01.check_occlusion_deltas(crashes)


def test_occlusion_passes_not_implemented_through():
    def stub(f, x, baseline):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb01.check_occlusion_deltas(stub)


# ---------------------------------------------------------------- integrated gradients


def _grad(f, point):
    point = point.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(point), point)
    return g


def ig_right(f, x, baseline, m):
    total = torch.zeros_like(x)
    for k in range(1, m + 1):
        total += _grad(f, baseline + k / m * (x - baseline))
    return (x - baseline) * total / m


def ig_vectorised(f, x, baseline, m):
    # a different but correct implementation: all path points in one tensor
    alphas = torch.arange(1, m + 1, dtype=x.dtype) / m
    grads = torch.stack([_grad(f, baseline + a * (x - baseline)) for a in alphas])
    return (x - baseline) * grads.mean(0)


def ig_no_displacement(f, x, baseline, m):
    return ig_right(f, x, baseline, m) / (x - baseline)


def ig_sum_not_mean(f, x, baseline, m):
    return ig_right(f, x, baseline, m) * m


def ig_left_sum(f, x, baseline, m):
    total = torch.zeros_like(x)
    for k in range(0, m):
        total += _grad(f, baseline + k / m * (x - baseline))
    return (x - baseline) * total / m


def ig_gradient_at_x(f, x, baseline, m):
    return (x - baseline) * _grad(f, x)


def ig_times_x(f, x, baseline, m):
    total = torch.zeros_like(x)
    for k in range(1, m + 1):
        total += _grad(f, baseline + k / m * (x - baseline))
    return x * total / m


def test_ig_accepts_reference(capsys):
    assert nb01.check_integrated_gradients(ig_right) is None
    assert nb01.check_integrated_gradients(ig_vectorised) is None
    assert "Correct: integrated_gradients_riemann" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (ig_no_displacement, "multiplies it by the displacement"),
        (ig_sum_not_mean, "m times too large"),
        (ig_left_sum, "left end points"),
        (ig_gradient_at_x, "only at x"),
        (ig_times_x, "instead of \\(x - baseline\\)"),
    ],
)
def test_ig_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb01.check_integrated_gradients(wrong)
    # the message never shows the reference code
    assert "def " not in str(info.value)


# ---------------------------------------------------------------- the notebook guards camlib

import dataclasses  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from notebook_sections import notebook_code  # noqa: E402
from notebook_sections import run_cells as _run_cells  # noqa: E402

import camlib  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_linear_regression_gradients.ipynb"


def run_cells(cells: list[tuple[str, str]], namespace: dict) -> dict:
    return _run_cells(cells, namespace, NOTEBOOK.name)


@pytest.fixture(scope="module")
def before_camlib_check() -> dict:
    """The notebook's state just before its "Check it against camlib" section (run once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plt.show() under Agg
        return run_cells(notebook_code(NOTEBOOK, None, "## Check it against camlib"), {"__name__": "__notebook__"})


CHECK_CELLS = notebook_code(NOTEBOOK, "## Check it against camlib", "## Explore it")


def test_notebook_camlib_section_passes(before_camlib_check):
    assert CHECK_CELLS, "the notebook has no code in its 'Check it against camlib' section"
    run_cells(CHECK_CELLS, dict(before_camlib_check))


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "gradient_x_input", "saliency"])
def test_notebook_fails_when_camlib_is_wrong(before_camlib_check, monkeypatch, method):
    original = getattr(camlib, method)

    def off_by_one_percent(*args, **kwargs):
        result = original(*args, **kwargs)
        return dataclasses.replace(result, values=result.values * 1.01)

    monkeypatch.setattr(camlib, method, off_by_one_percent)
    with pytest.raises(AssertionError):
        run_cells(CHECK_CELLS, dict(before_camlib_check))


def test_key_figure_is_deterministic_and_small():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    import camlib.figures.nb01 as fig01

    first, second = fig01.key_figure(), fig01.key_figure()
    try:
        assert first.dpi <= 100 and len(first.axes) == 2
        first.canvas.draw()
        second.canvas.draw()
        assert np.array_equal(np.asarray(first.canvas.buffer_rgba()), np.asarray(second.canvas.buffer_rgba()))
    finally:
        plt.close(first)
        plt.close(second)
