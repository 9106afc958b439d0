"""The checks of notebook 01 accept the reference answer and reject typical wrong answers."""

from __future__ import annotations

import pytest
import torch

from camlib.exercises import nb01
from camlib.exercises._check import ExerciseError

# ---------------------------------------------------------------- the redundancy counterexample


@pytest.mark.parametrize("f, x", [
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([1.0, 1.0])),  # OR of two equal features
    (lambda v: torch.clamp(v.sum(), max=1.0), torch.tensor([2.0, 3.0])),  # a saturated sum
    (lambda v: torch.minimum(v[0] + v[1], torch.tensor(1.0, dtype=v.dtype)), torch.tensor([1.0, 1.0])),
])
def test_counterexample_accepts_redundant_features(f, x, capsys):
    nb01.check_redundancy_counterexample(f, x)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("f, x, message", [
    (lambda v: 2 * v[0] + 3 * v[1], torch.tensor([1.0, 1.0]), "add up to the total drop"),  # linear: impossible
    (lambda v: v[0] * v[1], torch.tensor([2.0, 3.0]), "either feature alone"),  # interaction: both drops = f
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([0.0, 0.0]), "removing every feature"),  # nothing to explain
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([1.0, 2.0]), "occluding one feature alone"),  # unequal
])
def test_counterexample_rejects_non_examples_with_a_hint(f, x, message):
    with pytest.raises(ExerciseError, match=message):
        nb01.check_redundancy_counterexample(f, x)


def test_counterexample_reports_a_crash_and_passes_not_implemented_through():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        nb01.check_redundancy_counterexample(lambda v: 1 / 0, torch.tensor([1.0, 1.0]))

    def unanswered(v):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb01.check_redundancy_counterexample(unanswered, torch.tensor([1.0, 1.0]))
    with pytest.raises(ExerciseError, match="1-D tensor"):
        nb01.check_redundancy_counterexample(lambda v: v.sum(), 3.0)


# ---------------------------------------------------------------- IG of x1 x2 x3, predicted


def ig_closed_form(x, m):
    return torch.full_like(x, float(x[0] * x[1] * x[2])) * (m + 1) * (2 * m + 1) / (6 * m * m)


def test_ig_prediction_accepts_the_closed_form(capsys):
    nb01.check_ig_of_triple_product(ig_closed_form)
    assert "Correct" in capsys.readouterr().out


def test_the_reference_is_the_autograd_riemann_sum():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    for m in (1, 3, 50):
        assert torch.allclose(nb01.right_riemann_ig(lambda v: v[0] * v[1] * v[2], x, m), ig_closed_form(x, m))


@pytest.mark.parametrize("wrong, message", [
    (lambda x, m: torch.full_like(x, float(x.prod()) / 3), "exact integral"),
    (lambda x, m: torch.full_like(x, float(x.prod())) * (m + 1) / (2 * m), "two-factor product"),
    (lambda x, m: torch.full_like(x, float(x.prod())) * (m + 1) * (2 * m + 1) / (6 * m), "closed form"),
])
def test_ig_prediction_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb01.check_ig_of_triple_product(wrong)
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
