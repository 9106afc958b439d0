"""Run a notebook's code cells section by section inside a test (no kernel).

Used by the exercise tests to show that a notebook's "Check it against camlib" section fails
when camlib is wrong.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


def notebook_code(path: Path, start_heading: str | None, stop_heading: str) -> list[tuple[str, str]]:
    """(cell id, source) of the code cells after ``start_heading`` (or from the top) up to ``stop_heading``.

    IPython magics (lines starting with %) are dropped, and so is the key-figure cell (tested apart).
    """
    cells, started = [], start_heading is None
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            if cell.source.startswith(stop_heading):
                break
            if start_heading is not None and cell.source.startswith(start_heading):
                started = True
        elif started and "key_figure()" not in cell.source:
            source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            cells.append((cell.get("id", "?"), source))
    return cells


def run_cells(cells: list[tuple[str, str]], namespace: dict, name: str) -> dict:
    """Execute the cells in ``namespace`` (Agg backend, every figure closed afterwards)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    try:
        for cell_id, source in cells:
            exec(compile(source, f"{name}:{cell_id}", "exec"), namespace)
    finally:
        plt.close("all")
    return namespace
