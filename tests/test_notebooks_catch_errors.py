"""The test command fails when a notebook fails, and the notebooks' asserts catch a wrong camlib.

1. A notebook that raises, run the way `python3 course.py test` runs notebooks (nbval-lax,
   current environment), makes pytest exit non-zero.
2. Each course notebook is executed with one camlib method perturbed by 1 %: its own asserts
   must stop it with an AssertionError. A notebook that still passes would not notice a wrong
   camlib.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def _run_nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-q", str(path)],
        cwd=path.parent, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    "source, expected",
    [("raise ValueError('deliberately broken')", "ValueError"), ("assert 1 + 1 == 3", "AssertionError")],
)
def test_a_failing_notebook_fails_the_test_command(tmp_path, source, expected):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(source)]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result = _run_nbval(path)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout and expected in result.stdout


PERTURB = '''
import dataclasses, camlib
def _perturbed(method):
    def wrapper(*args, **kwargs):
        result = method(*args, **kwargs)
        if isinstance(result, camlib.CamResult):
            return dataclasses.replace(result, weights=result.weights * 1.01, raw=result.raw * 1.01,
                                       map=result.map * 1.01)
        return dataclasses.replace(result, values=result.values * 1.01)
    return wrapper
camlib.{name} = _perturbed(camlib.{name})
'''

CASES = [
    ("01_linear_regression_gradients.ipynb", "integrated_gradients"),
    ("02_occlusion_sensitivity.ipynb", "occlusion"),
    ("03_class_activation_maps.ipynb", "cam"),
    ("04_grad_cam.ipynb", "grad_cam"),
    ("05_grad_cam_plus_plus.ipynb", "grad_cam_pp"),
    ("06_axioms.ipynb", "xgrad_cam"),
]


@pytest.mark.parametrize("notebook, method", CASES, ids=[c[1] for c in CASES])
def test_notebook_asserts_catch_a_wrong_camlib(notebook, method):
    path = ROOT / "notebooks" / notebook
    if not path.exists():
        pytest.fail(f"{notebook} is missing")
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PERTURB.format(name=method)))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with pytest.raises(CellExecutionError) as failure:
        client.execute()
    assert "AssertionError" in str(failure.value), str(failure.value)[-2000:]
