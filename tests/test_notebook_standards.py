"""The course's standards that a program can check, for every master notebook (issue 16).

Checked on the notebook file:

* nbgrader's marker lines (``BEGIN SOLUTION`` ...) appear only in solution cells: a prose line
  that names one makes ``nbgrader generate_assignment`` fail;
* no rainbow colour map: no ``"jet"`` in a notebook or in camlib.

Checked on the executed notebook:

* a picture within the first screen: fewer than 300 words of markdown before the first figure;
* at least four figures;
* every code cell shows something (a printed line, a figure, a value, a widget), except the
  learner's solution cells and the Colab install cell, which may be silent.

The executed notebook is, in this order of preference: the outputs nbval produced for the same
notebook earlier in this session (these tests are ordered after the notebook items, see
tests/conftest.py), a fresh executed copy in ``test-artifacts/executed/`` (written by the test run
for the course website, see site/build.py), or the notebook executed here with nbclient (when this
file is run alone).
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXECUTED = ROOT / "test-artifacts" / "executed"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
JET = re.compile(r"""["']jet["']|\bcm\.jet\b""")
FIGURE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")
WORDS_BEFORE_FIGURE = 300
MIN_FIGURES = 4

ids = [path.stem for path in NOTEBOOKS]


def _is_solution(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution", False))


def _is_install_cell(cell) -> bool:
    """The Colab set-up cell (camlib.course.SETUP_CELL), silent where camlib is installed."""
    return cell.get("id") == "course-setup" or "pip install" in cell.source or "%pip" in cell.source


# ----------------------------------------------------------------------------- on the file


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_nbgrader_markers_only_in_solution_cells(path):
    nb = nbformat.read(path, as_version=4)
    stray = [
        (number, line.strip())
        for number, cell in enumerate(nb.cells)
        if not _is_solution(cell)
        for line in cell.source.splitlines()
        if any(marker in line for marker in MARKERS)
    ]
    assert not stray, (
        f"{path.name}: nbgrader marker text outside a solution cell (cell, line): {stray}. nbgrader reads any "
        "line that contains it as a marker; reword the prose (e.g. 'the solution markers')."
    )


def test_no_rainbow_colour_map():
    sources = [p for p in (ROOT / "camlib").rglob("*.py")] + NOTEBOOKS
    found = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in JET.finditer(text)]
    assert not found, f"jet is not perceptually uniform; use camlib.plotting.HEAT_CMAP or SIGNED_CMAP: {found}"


def test_the_checks_recognise_what_they_look_for():
    assert JET.search("ax.imshow(m, cmap='jet')") and JET.search('cmap="jet"') and not JET.search("a jet engine")
    cell = nbformat.v4.new_markdown_cell("Write your answer between the `### BEGIN SOLUTION` markers")
    assert any(marker in line for line in cell.source.splitlines() for marker in MARKERS)
    executed = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("one two three"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("four five"),
        nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output("display_data", data={"image/png": "AA=="})]),
    ])
    assert words_before_first_figure(executed) == 5 and count_figures(executed) == 1
    assert silent_cells(executed) == [1]


# ----------------------------------------------------------------------------- on the executed notebook


def words_before_first_figure(nb) -> int:
    """Words of markdown above the first code cell that shows a figure (all markdown if none does)."""
    words = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            words += len(cell.source.split())
        elif cell.cell_type == "code" and any(_is_figure(out) for out in cell.get("outputs", [])):
            break
    return words


def count_figures(nb) -> int:
    return sum(_is_figure(out) for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


def silent_cells(nb) -> list[int]:
    """Indices of code cells without any output, other than solution cells and the install cell."""
    return [
        number
        for number, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and not cell.get("outputs") and not _is_solution(cell) and not _is_install_cell(cell)
    ]


def _is_figure(output) -> bool:
    return output.get("output_type") in ("display_data", "execute_result") and any(
        kind in output.get("data", {}) for kind in FIGURE_TYPES
    )


_executed: dict[Path, nbformat.NotebookNode] = {}


def _from_this_session(session, path: Path):
    """The notebook with the outputs nbval recorded for it in this session, or None."""
    cells = [
        item
        for item in session.items
        if getattr(item, "test_outputs", None) is not None and Path(str(item.parent.fspath)).resolve() == path.resolve()
    ]
    if not cells:
        return None
    nb = copy.deepcopy(cells[0].parent.nb)
    outputs = {cell.cell_num: cell.test_outputs for cell in cells}
    number = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = outputs.get(number, [])
            number += 1
    return nb if len(outputs) == number else None  # every code cell ran (none failed or was deselected)


def _captured(path: Path):
    """A fresh executed copy from test-artifacts/executed/, as site/build.py decides freshness."""
    executed, builder = EXECUTED / path.name, ROOT / "site" / "build.py"
    if not executed.exists() or not builder.exists():
        return None
    spec = importlib.util.spec_from_file_location("_site_build_for_standards", builder)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        fresh = module.is_fresh(executed, path, module.code_fingerprint())
    except Exception:  # the site builder changed its interface: execute instead
        return None
    return nbformat.read(executed, as_version=4) if fresh else None


def _execute(path: Path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.fixture
def executed(request):
    path = request.param
    if path not in _executed:
        nb = _from_this_session(request.session, path) or _captured(path) or _execute(path)
        _executed[path] = nb
    return path, _executed[path]


@pytest.mark.after_notebooks
@pytest.mark.parametrize("executed", NOTEBOOKS, ids=ids, indirect=True)
def test_a_picture_within_the_first_screen(executed):
    path, nb = executed
    words = words_before_first_figure(nb)
    assert words < WORDS_BEFORE_FIGURE, (
        f"{path.name}: {words} words of prose before the first figure (at most {WORDS_BEFORE_FIGURE - 1}): "
        "show the key figure or a preview earlier, or move prose below it"
    )


@pytest.mark.after_notebooks
@pytest.mark.parametrize("executed", NOTEBOOKS, ids=ids, indirect=True)
def test_at_least_four_figures(executed):
    path, nb = executed
    assert count_figures(nb) >= MIN_FIGURES, f"{path.name}: {count_figures(nb)} figures, the standard is {MIN_FIGURES}"


@pytest.mark.after_notebooks
@pytest.mark.parametrize("executed", NOTEBOOKS, ids=ids, indirect=True)
def test_every_code_cell_shows_something(executed):
    path, nb = executed
    silent = silent_cells(nb)
    assert not silent, (
        f"{path.name}: code cells {silent} show nothing; print what an assert checked "
        "(camlib.exercises.claim / check_close) or show the result"
    )
