"""Student versions: built from the masters by one command, never drifting from them, and
running to the end with only the exercise checks stopping on NotImplementedError."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from camlib.exercises import student

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT_DIR = ROOT / "notebooks" / "student"


def _toy_master() -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy"),
        nbformat.v4.new_code_cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION"
        ),
        nbformat.v4.new_code_cell("camlib.exercises.nb99.check_double(double)"),
        nbformat.v4.new_code_cell("assert 1 + 1 == 2\n### BEGIN HIDDEN TESTS\nassert double(2) == 4\n### END HIDDEN TESTS"),
        nbformat.v4.new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
    ]
    return nb


def test_student_version_replaces_solutions_and_tags_checks():
    out = student.student_version(_toy_master(), name="toy.ipynb")
    sources = [c["source"] for c in out["cells"]]
    assert "toy.ipynb" in sources[0]
    assert sources[2] == "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert out["cells"][3]["metadata"]["tags"] == ["raises-exception"]
    assert sources[4] == "assert 1 + 1 == 2"
    assert sources[5] == "Why?\n\n" + student.ANSWER_PROMPT
    assert "Because" not in json.dumps(out) and "2 * x" not in json.dumps(out)


def test_unterminated_solution_is_an_error():
    nb = _toy_master()
    nb.cells[1].source = "def f():\n    ### BEGIN SOLUTION\n    return 1"
    with pytest.raises(ValueError, match="never closed"):
        student.student_version(nb)


@pytest.mark.parametrize(
    "line",
    [
        "Complete the function between the `### BEGIN SOLUTION` / `### END SOLUTION` markers.",
        "    ### BEGIN SOLUTION  (your code)",
        "# the hidden checks sit between BEGIN HIDDEN TESTS and its end",
    ],
)
def test_a_line_that_names_a_marker_is_rejected_as_nbgrader_would(line):
    nb = _toy_master()
    nb.cells[0].source = f"# Toy\n\n{line}"
    with pytest.raises(ValueError, match="reword it") as error:
        student.student_version(nb)
    assert line.strip() in str(error.value)


def test_only_exercise_checks_are_check_cells():
    assert student.is_check_cell(nbformat.v4.new_code_cell("camlib.exercises.nb04.check_gradcam_weights(f)"))
    # a notebook's printing assert is not an exercise check, whatever its name
    assert not student.is_check_cell(nbformat.v4.new_code_cell('check_close("CAM = Grad-CAM", a, b, atol=1e-6)'))
    assert not student.is_check_cell(nbformat.v4.new_markdown_cell("camlib.exercises.nb04.check_x(f)"))


def test_nbgrader_marking_is_idempotent_and_grades_checks():
    marked = student.mark_for_nbgrader(_toy_master(), "nb99")
    assert student.mark_for_nbgrader(marked, "nb99") == marked
    meta = [c["metadata"].get("nbgrader") for c in marked["cells"]]
    assert meta[1]["solution"] and not meta[1]["grade"]
    assert meta[2]["grade"] and meta[2]["locked"] and not meta[2]["solution"]
    assert meta[4]["solution"] and meta[4]["grade"]
    assert meta[0] is None and meta[3] is None


@pytest.mark.parametrize("path", MASTERS, ids=lambda p: p.name)
def test_master_has_two_to_four_exercises_and_nbgrader_metadata(path):
    master = nbformat.read(path, as_version=4)
    assert 2 <= student.count_exercises(master) <= 4
    assert student.mark_for_nbgrader(master, f"nb{path.stem[:2]}") == master, (
        "nbgrader metadata is missing or stale: run python -m camlib.exercises.student notebooks --mark"
    )


def test_committed_student_versions_match_the_masters():
    stale = student.build(ROOT / "notebooks", STUDENT_DIR, check=True)
    assert not stale, f"stale student notebooks {stale}: run python3 course.py student"
    assert sorted(p.name for p in STUDENT_DIR.glob("*.ipynb")) == [p.name for p in MASTERS]


@pytest.mark.parametrize("path", MASTERS, ids=lambda p: p.name)
def test_student_version_runs_and_stops_only_in_checks(path, tmp_path):
    nb = student.student_version(nbformat.read(path, as_version=4), name=path.name)
    nb = nbformat.from_dict(nb)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute()
    checks = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if student.is_check_cell(cell):
            checks += 1
            assert [e.ename for e in errors] == ["NotImplementedError"], (
                f"check cell should stop with NotImplementedError in the student version:\n{cell.source}"
            )
        else:
            assert not errors, f"cell failed in the student version:\n{cell.source}\n{errors[0].evalue if errors else ''}"
    assert checks >= 2
