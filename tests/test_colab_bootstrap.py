"""The notebooks' set-up cell, as a Colab learner meets it.

Every course notebook (master and student version) starts its code with
:data:`camlib.course.SETUP_CELL`: where ``camlib`` cannot be imported it installs the
``explaining-cnns`` distribution with pip (quietly, with one printed line), and otherwise it does
nothing. The end-to-end test builds the wheel, makes a clean virtual environment without camlib
(PyTorch and the Jupyter packages come read-only from the test environment, as Colab brings
its own; see ``tests/distribution.py``), points pip at the built wheel only (no index), runs a
whole notebook there with a kernel of that environment, and checks that it ran to the end on
the camlib it installed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from camlib.course import SETUP_CELL
from distribution import DISTRIBUTION, ROOT, built_distributions, clean_env, clean_venv

MASTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENTS = sorted((ROOT / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))
QUICK = "01_linear_regression_gradients.ipynb"  # the quickest notebook to execute


@pytest.mark.parametrize("path", MASTERS + STUDENTS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_first_code_cell_is_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first.source == SETUP_CELL, (
        f"{path.name}: the first code cell must be camlib.course.SETUP_CELL (it installs the course "
        "on Colab); insert it with `python -m camlib.exercises.student notebooks notebooks/student --setup-cell`"
    )


def test_setup_cell_does_nothing_where_camlib_is_installed(capsys):
    namespace: dict = {}
    exec(compile(SETUP_CELL, "setup-cell", "exec"), namespace)
    assert capsys.readouterr().out == ""


_RUN = """
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import importlib.metadata, json, camlib\\n"
    "print(json.dumps({'camlib': camlib.__file__, 'version': importlib.metadata.version('explaining-cnns')}))"
))
client = NotebookClient(nb, timeout=600, kernel_name="clean", allow_errors=True,
                        resources={"metadata": {"path": sys.argv[2]}})
client.execute()
nbformat.write(nb, sys.argv[3])
"""


def test_a_notebook_installs_the_wheel_and_runs_in_a_clean_environment(tmp_path):
    _, wheel = built_distributions()
    python = clean_venv(tmp_path / "venv")
    # a kernel spec of the clean environment, found first on JUPYTER_PATH
    spec = tmp_path / "jupyter" / "kernels" / "clean"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "clean", "language": "python",
    }))
    env = clean_env(
        JUPYTER_PATH=str(tmp_path / "jupyter"), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel.parent),
        OMP_NUM_THREADS="1",
    )
    work = tmp_path / "colab"
    work.mkdir()
    before = subprocess.run([str(python), "-c", "import camlib"], cwd=work, env=env, capture_output=True)
    assert before.returncode != 0, "the clean environment must lack camlib"

    out = tmp_path / "executed.ipynb"
    ran = subprocess.run([str(python), "-c", _RUN, str(ROOT / "notebooks" / QUICK), str(work), str(out)],
                         cwd=work, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    errors = [(c.source[:200], o.get("evalue")) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"the notebook failed in the clean environment: {errors[:3]}"
    setup = next(c for c in nb.cells if c.cell_type == "code")
    printed = "".join(o.get("text", "") for o in setup.outputs if o.output_type == "stream")
    assert printed == f"Installing the course's package (pip install {DISTRIBUTION}[widgets]) ...\n", printed
    report = json.loads(nb.cells[-1].outputs[0]["text"])
    assert report["camlib"].startswith(str(tmp_path / "venv")), report  # the wheel's camlib, not the repository's
    assert report["version"] == wheel.name.split("-")[1]
    unexecuted = [c.source[:80] for c in nb.cells if c.cell_type == "code" and c.execution_count is None]
    assert not unexecuted, f"cells that did not run: {unexecuted}"
