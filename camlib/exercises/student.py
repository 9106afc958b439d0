"""Build the student versions of the course notebooks, and mark the masters for nbgrader.

The master notebooks hold the solutions between nbgrader's delimiters::

    def gradcam_weights(gradients):
        ### BEGIN SOLUTION
        return gradients.mean(dim=(2, 3))
        ### END SOLUTION

and check them in a separate cell that calls a ``check_*`` function of
:mod:`camlib.exercises` by its module (``camlib.exercises.nb04.check_blind_score(...)``);
other helpers named ``check_*`` (such as a notebook's printing asserts) are not exercise checks. The student version replaces each solution region of a code cell
by ``raise NotImplementedError()`` (same indentation), each solution region of a markdown
cell by a prompt, removes hidden tests, clears outputs and tags every check cell
``raises-exception`` so that the notebook still runs to the end under nbval.

The markers are exactly nbgrader's: a line is a marker when it *contains* ``BEGIN SOLUTION``
(and so on) for nbgrader, so any other line that names one, such as prose explaining the
markers, is rejected here with the line quoted (nbgrader would fail with "no end solution
statement found" and drop the whole assignment).

Command line::

    python -m camlib.exercises.student notebooks notebooks/student          # build
    python -m camlib.exercises.student notebooks notebooks/student --check  # exit 1 if stale
    python -m camlib.exercises.student notebooks --mark                     # nbgrader metadata
    python -m camlib.exercises.student notebooks --setup-cell               # Colab set-up cell

Every course notebook's first code cell is :data:`camlib.course.SETUP_CELL`, which installs the
course's package where it is missing (Colab); ``--setup-cell`` inserts it where it is missing.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN_SOLUTION",
    "END_SOLUTION",
    "ANSWER_PROMPT",
    "is_check_cell",
    "count_exercises",
    "student_version",
    "mark_for_nbgrader",
    "with_setup_cell",
    "build",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
ANSWER_PROMPT = "YOUR ANSWER HERE"
BANNER = (
    "**Student version.** Generated from the master notebook `{name}` by "
    "`python3 course.py student`; do not edit it by hand. Exercise cells raise "
    "`NotImplementedError` until you write your answer; the check cell under each one tells you "
    "whether your answer is right."
)
_CHECK_CALL = re.compile(r"\bexercises\.\w+\.check_\w+\s*\(")
_MASTER_NAME = re.compile(r"^\d\d_.*\.ipynb$")


def is_check_cell(cell: dict) -> bool:
    """A code cell that calls an exercise check, ``<...>exercises.<module>.check_*(...)``."""
    return cell["cell_type"] == "code" and bool(_CHECK_CALL.search(cell["source"]))


def _solution_regions(cell: dict) -> int:
    """Number of lines that open a solution region (the marker alone on its line)."""
    return sum(line.strip() == BEGIN_SOLUTION for line in cell["source"].split("\n"))


def _has_solution(cell: dict) -> bool:
    return _solution_regions(cell) > 0


def count_exercises(nb: dict) -> int:
    """Number of solution regions (code or prose) in a notebook."""
    return sum(_solution_regions(cell) for cell in nb["cells"])


def _reject_marker_mentions(source: str) -> None:
    """Raise ValueError for a line that names a marker without being one (nbgrader matches substrings)."""
    markers = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
    for line in source.split("\n"):
        named = [m for m in markers if m.lstrip("# ") in line]
        if named and line.strip() not in markers:
            raise ValueError(
                f"this line names nbgrader's marker {named[0].lstrip('# ')!r} without being the marker "
                f"alone on its line, which nbgrader would read as one (and fail the assignment); "
                f"reword it:\n{line.strip()}"
            )


def _replace_regions(source: str, begin: str, end: str, replacement: list[str] | None) -> str:
    """Replace every ``begin``..``end`` line region by ``replacement`` lines (indented like ``begin``).

    ``replacement=None`` deletes the region. Raises ValueError on an unterminated region.
    """
    out: list[str] = []
    lines = source.split("\n")
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise ValueError(f"nested {begin!r} in cell:\n{source}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + text for text in (replacement or []))
        elif stripped == end:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r} in cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} is never closed in cell:\n{source}")
    return "\n".join(out)


def student_version(master: dict, name: str = "") -> dict:
    """The student notebook for ``master`` (a new object; the master is not modified)."""
    nb = copy.deepcopy(master)
    for cell in nb["cells"]:
        _reject_marker_mentions(cell["source"])
        if cell["cell_type"] == "code":
            source = _replace_regions(cell["source"], BEGIN_HIDDEN, END_HIDDEN, None)
            cell["source"] = _replace_regions(
                source, BEGIN_SOLUTION, END_SOLUTION, ["# YOUR CODE HERE", "raise NotImplementedError()"]
            )
            cell["outputs"] = []
            cell["execution_count"] = None
            if is_check_cell(cell):
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                if "raises-exception" not in tags:
                    tags.append("raises-exception")
        elif cell["cell_type"] == "markdown":
            cell["source"] = _replace_regions(cell["source"], BEGIN_SOLUTION, END_SOLUTION, [ANSWER_PROMPT])
    banner = nbformat.v4.new_markdown_cell(BANNER.format(name=name or "master"))
    banner["id"] = "student-version-banner"
    nb["cells"].insert(0, banner)
    return nb


def mark_for_nbgrader(master: dict, stem: str) -> dict:
    """Add nbgrader cell metadata: solution cells, autograded check cells, manually graded prose.

    Idempotent: marking a marked notebook changes nothing.
    """
    nb = copy.deepcopy(master)
    number = 0
    for cell in nb["cells"]:
        solution = _has_solution(cell)
        check = is_check_cell(cell)
        if not (solution or check):
            cell.get("metadata", {}).pop("nbgrader", None)
            continue
        number += 1
        meta = {
            "grade": bool(check or cell["cell_type"] == "markdown"),
            "grade_id": f"{stem}-{'check' if check else 'answer'}-{number}",
            "locked": bool(check),
            "schema_version": 3,
            "solution": bool(solution),
            "task": False,
        }
        if meta["grade"]:
            meta["points"] = 1
        cell.setdefault("metadata", {})["nbgrader"] = meta
    return nb


SETUP_CELL_ID = "course-setup"


def with_setup_cell(nb: dict) -> dict:
    """``nb`` with :data:`camlib.course.SETUP_CELL` as its first code cell (a new object).

    A notebook whose first code cell is already the set-up cell is returned unchanged; an older
    set-up cell (the same id) is replaced; otherwise the cell is inserted before the first code cell.
    """
    from camlib.course import SETUP_CELL

    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    if code and cells[code[0]]["source"] == SETUP_CELL:
        return nb
    if code and cells[code[0]].get("id") == SETUP_CELL_ID:
        cells[code[0]]["source"] = SETUP_CELL
        return nb
    cell = nbformat.v4.new_code_cell(SETUP_CELL)
    cell["id"] = SETUP_CELL_ID
    cells.insert(code[0] if code else len(cells), cell)
    return nb


def add_setup_cells(source: Path, check: bool = False) -> list[Path]:
    """Insert the set-up cell into every master notebook that lacks it (or list them)."""
    changed = []
    for path in _masters(source):
        master = nbformat.read(path, as_version=4)
        text = _dumps(with_setup_cell(master))
        if path.read_text(encoding="utf-8") != text:
            changed.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return changed


def _masters(source: Path) -> list[Path]:
    return sorted(p for p in source.iterdir() if _MASTER_NAME.match(p.name))


def _dumps(nb: dict) -> str:
    return nbformat.writes(nbformat.from_dict(nb)) + "\n"


def build(source: Path, target: Path, check: bool = False) -> list[Path]:
    """Write (or with ``check=True`` compare) the student version of every master notebook.

    Returns the student notebooks that were stale (with ``check``) or written.
    """
    stale = []
    if not check:
        target.mkdir(parents=True, exist_ok=True)
    for master_path in _masters(source):
        master = nbformat.read(master_path, as_version=4)
        text = _dumps(student_version(master, name=master_path.name))
        out = target / master_path.name
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            stale.append(out)
            if not check:
                out.write_text(text, encoding="utf-8")
    return stale


def mark(source: Path, check: bool = False) -> list[Path]:
    """Add nbgrader metadata to every master notebook in place (or list those missing it)."""
    changed = []
    for path in _masters(source):
        master = nbformat.read(path, as_version=4)
        text = _dumps(mark_for_nbgrader(master, f"nb{path.stem[:2]}"))
        if path.read_text(encoding="utf-8") != text:
            changed.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder of the master notebooks")
    parser.add_argument("target", type=Path, nargs="?", help="folder for the student versions")
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    parser.add_argument("--mark", action="store_true", help="add nbgrader metadata to the masters")
    parser.add_argument("--setup-cell", action="store_true",
                        help="insert the Colab set-up cell (camlib.course.SETUP_CELL) into the masters")
    args = parser.parse_args(argv)
    status = 0
    if args.setup_cell:
        changed = add_setup_cells(args.source, check=args.check)
        for path in changed:
            print(f"{'needs the set-up cell' if args.check else 'inserted the set-up cell'}: {path}")
        status |= int(args.check and bool(changed))
    if args.mark:
        changed = mark(args.source, check=args.check)
        for path in changed:
            print(f"{'needs nbgrader metadata' if args.check else 'marked'}: {path}")
        status |= int(args.check and bool(changed))
    if args.target is not None:
        changed = build(args.source, args.target, check=args.check)
        for path in changed:
            print(f"{'stale' if args.check else 'wrote'}: {path}")
        status |= int(args.check and bool(changed))
    if args.target is None and not (args.mark or args.setup_cell):
        parser.error("give a target folder, --mark, --setup-cell, or several")
    return status


if __name__ == "__main__":
    sys.exit(main())
