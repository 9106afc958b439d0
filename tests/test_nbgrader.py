"""nbgrader, as an instructor uses it, on the course's master notebooks.

One course folder, one assignment holding every master notebook:

* ``nbgrader generate_assignment`` must accept every master (a prose line that names a solution
  marker makes it fail and drop the whole assignment), and its release versions must agree,
  cell by cell, with the student versions that ``camlib.exercises.student`` builds;
* the gradebook that ``generate_assignment`` writes gives every master as many autograded points
  as it has check cells (at least two);
* ``nbgrader autograde`` then grades three submissions of the quickest notebook (an autograde
  executes whole notebooks; that every master's solutions pass its checks is what nbval checks when
  it runs the masters, so executing every notebook once more here would only spend the suite's time
  budget): the solutions typed into the released notebook (full marks), one wrong answer whose
  check cell was also tampered with (nbgrader restores the locked check, so exactly one point is
  lost) and an untouched one (zero).

Scores are the autograded ("code") scores from nbgrader's gradebook; the prose answers are
manually graded cells and have no automatic score.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from camlib.exercises import student

pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parents[1]
MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENT = "course"
QUICK = "01_linear_regression_gradients"  # the quickest notebook to execute
# its exercise that gets a wrong answer: a function whose check compares values with a reference
# (returning twice the right value must fail it; a counterexample exercise would still pass)
WRONG = "ig_of_triple_product"
MARKERS = {student.BEGIN_SOLUTION, student.END_SOLUTION, student.BEGIN_HIDDEN, student.END_HIDDEN}


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs the `alembic` command of its own environment to create the gradebook
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}",
         "--CourseDirectory.course_id=explaining-cnns", "--ExecutePreprocessor.timeout=600"],
        cwd=course, env=env, capture_output=True, text=True,
    )
    assert completed.returncode == 0, f"nbgrader {args[0]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-6000:]}"
    return completed


def _answers(master: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> what a learner who knows the solution types into that cell."""
    answers = {}
    for cell in master.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [line for line in cell.source.split("\n") if line.strip() not in MARKERS]
            answers[meta["grade_id"]] = "\n".join(lines)
    return answers


def _submit(course: Path, who: str, name: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / who / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def _one_wrong_answer(solved: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Exercise WRONG answered wrongly (its function returns twice the right value), and the check
    cell under it replaced by ``pass``, as a learner might try."""
    wrong = copy.deepcopy(solved)
    for index, cell in enumerate(wrong.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution") and re.search(
            rf"^def {WRONG}\(", cell.source, re.M
        ):
            break
    else:
        raise AssertionError(f"{QUICK} has no exercise `def {WRONG}(`: choose another WRONG in this test")
    fn = WRONG
    cell.source += (
        f"\n\n_right_{fn} = {fn}\n\n"
        f"def {fn}(*args, **kwargs):  # a wrong answer: twice the right one\n"
        f"    return 2 * _right_{fn}(*args, **kwargs)"
    )
    check = next(c for c in wrong.cells[index + 1:] if student.is_check_cell(c))
    check.source = "pass  # a learner deleted the check"
    return wrong


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader-course")
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for path in MASTERS:
        shutil.copy2(path, source / path.name)
    generated = _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    released = {p.stem: nbformat.read(p, as_version=4) for p in sorted((course / "release" / ASSIGNMENT).glob("*.ipynb"))}

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        maxima = {nb.name: nb.max_code_score for nb in gradebook.find_assignment(ASSIGNMENT).notebooks}

    answers = _answers(nbformat.read(ROOT / "notebooks" / f"{QUICK}.ipynb", as_version=4))
    solved = copy.deepcopy(released[QUICK])
    for cell in solved.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    _submit(course, "solutions", QUICK, solved)
    _submit(course, "untouched", QUICK, released[QUICK])
    _submit(course, "one-wrong", QUICK, _one_wrong_answer(solved))

    autograded = _nbgrader(course, "autograde", ASSIGNMENT, "--force", "--create")
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for who in ("solutions", "one-wrong", "untouched"):
            for notebook in gradebook.find_submission(ASSIGNMENT, who).notebooks:
                scores[who, notebook.name] = (notebook.code_score, notebook.max_code_score)
    return {"released": released, "maxima": maxima, "scores": scores, "log": generated.stderr + autograded.stderr}


def test_every_master_generates_and_matches_the_student_version(graded):
    released = graded["released"]
    assert sorted(released) == [p.stem for p in MASTERS], "nbgrader dropped a notebook"
    for path in MASTERS:
        ours = student.student_version(nbformat.read(path, as_version=4), name=path.name)
        ours_by_id = {c["id"]: c for c in ours["cells"]}
        for cell in released[path.stem].cells:
            assert not (MARKERS & {line.strip() for line in cell.source.split("\n")}), f"{path.name}: a marker survived"
            mine = ours_by_id[cell.id]
            assert cell.source == mine["source"], (
                f"{path.name} cell {cell.id}: nbgrader's release and the student version differ:\n"
                f"--- nbgrader\n{cell.source}\n--- camlib.exercises.student\n{mine['source']}"
            )


def test_every_master_has_one_autograded_point_per_check_cell(graded):
    assert sorted(graded["maxima"]) == [p.stem for p in MASTERS]
    for path in MASTERS:
        maximum = graded["maxima"][path.stem]
        checks = sum(student.is_check_cell(c) for c in nbformat.read(path, as_version=4).cells)
        assert maximum >= 2 and maximum == checks, f"{path.name}: {maximum} autograded points for {checks} check cells"


def test_solutions_get_full_marks(graded):
    score, maximum = graded["scores"]["solutions", QUICK]
    assert maximum == graded["maxima"][QUICK] and score == maximum, f"{QUICK}: solutions scored {score}/{maximum}"


def test_one_wrong_answer_loses_exactly_its_point_even_with_its_check_removed(graded):
    score, maximum = graded["scores"]["one-wrong", QUICK]
    assert (score, maximum) == (maximum - 1, graded["scores"]["solutions", QUICK][1])


def test_an_untouched_notebook_scores_zero(graded):
    score, maximum = graded["scores"]["untouched", QUICK]
    assert score == 0 and maximum >= 2


def test_check_cells_return_nothing_that_nbgrader_must_convert(graded):
    assert "cannot be converted to a float" not in graded["log"]
