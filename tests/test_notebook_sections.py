"""Each notebook's "Check it against camlib" section passes, and fails when camlib is wrong.

The notebooks' code cells run section by section in this process (no kernel, see
``notebook_sections``): once up to the section, then the section itself, and then again with one
camlib function monkeypatched to return a slightly wrong result, which must stop the section
with an AssertionError. Each notebook's key figure is also drawn twice and must be identical.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import camlib
from notebook_sections import notebook_code, run_cells

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: notebook -> (camlib function the section checks, [(case id, field, change of that field)])
WRONG = {
    "00_what_a_cnn_learns.ipynb": [
        ("cam", "activations", lambda a: a * 1.01),  # a layer captured with the wrong scale
        ("cam", "weights", lambda w: w.roll(1, dims=1)),  # weights of the wrong channels
        ("cam", "score", lambda s: s + 0.1),  # the explained score is not the logit
    ],
    "01_linear_regression_gradients.ipynb": [
        (method, "values", lambda v: v * 1.01)
        for method in ("integrated_gradients", "occlusion", "gradient_x_input", "saliency")
    ],
}
CASES = [(nb, fn, field, change) for nb, cases in WRONG.items() for fn, field, change in cases]


def _check_cells(notebook: str) -> list[tuple[str, str]]:
    return notebook_code(NOTEBOOKS / notebook, "## Check it against camlib", "## Explore it")


@pytest.fixture(scope="module")
def before_check(request) -> tuple[str, dict]:
    """The notebook's state just before its "Check it against camlib" section (run once per notebook)."""
    notebook = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plt.show() under Agg
        cells = notebook_code(NOTEBOOKS / notebook, None, "## Check it against camlib")
        return notebook, run_cells(cells, {"__name__": "__notebook__"}, notebook)


@pytest.mark.parametrize("before_check", list(WRONG), indirect=True)
def test_check_section_passes(before_check):
    notebook, namespace = before_check
    cells = _check_cells(notebook)
    assert cells, f"{notebook} has no code in its 'Check it against camlib' section"
    run_cells(cells, dict(namespace), notebook)


@pytest.mark.parametrize("before_check, fn, field, change", CASES, indirect=["before_check"],
                         ids=[f"{c[0][:2]}-{c[1]}-{c[2]}" for c in CASES])
def test_check_section_fails_when_camlib_is_wrong(before_check, monkeypatch, fn, field, change):
    notebook, namespace = before_check
    original = getattr(camlib, fn)

    def wrong(*args, **kwargs):
        result = original(*args, **kwargs)
        return dataclasses.replace(result, **{field: change(getattr(result, field))})

    monkeypatch.setattr(camlib, fn, wrong)
    with pytest.raises(AssertionError):
        run_cells(_check_cells(notebook), dict(namespace), notebook)


@pytest.mark.parametrize("module, axes", [("nb00", 6), ("nb01", 2)])
def test_key_figure_is_deterministic_and_small(module, axes):
    import importlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figures = importlib.import_module(f"camlib.figures.{module}")
    first, second = figures.key_figure(), figures.key_figure()
    try:
        assert first.dpi <= 100 and len(first.axes) == len(second.axes) >= axes
        first.canvas.draw()
        second.canvas.draw()
        assert np.array_equal(np.asarray(first.canvas.buffer_rgba()), np.asarray(second.canvas.buffer_rgba()))
    finally:
        plt.close(first)
        plt.close(second)
