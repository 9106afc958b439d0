"""pytest plugin (registered by tests/conftest.py): keep the notebooks nbval executes, for the website.

The README's test command runs every master notebook under nbval. The course website
(``site/build.py``, issue 18) needs the same notebooks executed, with each explorer's static version
(``CAMLIB_STATIC_EXPLORERS=1``). Executing them a second time would cost minutes, so this plugin

* starts each notebook's nbval kernel with ``CAMLIB_STATIC_EXPLORERS=1`` (set only around that
  kernel's start, so JupyterLab kernels of the browser tier and every other test are unaffected);
* collects the outputs nbval records for each cell (``item.test_outputs``) and, once every code cell
  of a notebook has run without a failure, writes the executed notebook to
  ``test-artifacts/executed/NN_name.ipynb`` with the stamp that ``site/build.py`` checks for
  freshness (SHA-256 of the master file as collected and of the camlib package, which must not
  change during the run). A notebook with a failed or deselected cell is not written.

The site's own tests (tests/browser/test_site.py) are marked ``after_notebooks``, so they run after the
notebooks and build from these copies. ``CAMLIB_STATIC_EXPLORERS=0`` in the environment turns the
plugin off.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUILD_SCRIPT = ROOT / "site" / "build.py"
ENV_VAR = "CAMLIB_STATIC_EXPLORERS"


def _builder():
    spec = importlib.util.spec_from_file_location("_site_build_for_capture", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_master_cell(item: Any) -> bool:
    """An nbval cell item of a master notebook ``notebooks/NN_name.ipynb``."""
    if not hasattr(item, "test_outputs") or not hasattr(item, "cell_num"):
        return False
    path = Path(str(item.parent.fspath)).resolve()
    return path.parent == NOTEBOOKS and path.match("[0-9][0-9]_*.ipynb")


class Capture:
    """Outputs per notebook, gathered as nbval runs its cells."""

    def __init__(self) -> None:
        self.builder = _builder()
        self.code = self.builder.code_fingerprint()
        self.sources: dict[Path, str] = {}  # SHA-256 of each master as collected
        self.outputs: dict[Path, dict[int, list]] = {}
        self.failed: set[Path] = set()
        self.started: dict[Path, float] = {}

    def record(self, item: Any, report: pytest.TestReport) -> None:
        path = Path(str(item.parent.fspath)).resolve()
        self.started.setdefault(path, time.perf_counter())
        if report.failed:
            self.failed.add(path)
        if report.when == "call" and item.test_outputs is not None and not report.failed:
            self.outputs.setdefault(path, {})[item.cell_num] = item.test_outputs

    def finish(self, item: Any) -> Path | None:
        """Write the executed notebook of ``item``'s file when every code cell ran cleanly."""
        path = Path(str(item.parent.fspath)).resolve()
        outputs = self.outputs.pop(path, {})
        if path in self.failed or path not in self.sources:
            return None
        master = hashlib.sha256(path.read_bytes()).hexdigest()
        if master != self.sources[path] or self.builder.code_fingerprint() != self.code:
            return None  # the notebook or camlib changed while the tests ran: these outputs are stale
        nb = copy.deepcopy(item.parent.nb)
        code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
        if sorted(outputs) != list(range(len(code_cells))):
            return None  # a cell was skipped or deselected
        for number, cell in enumerate(code_cells):
            cell.outputs = outputs[number]
            cell.execution_count = number + 1
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = number + 1
        seconds = time.perf_counter() - self.started.get(path, time.perf_counter())
        nb.metadata[self.builder.META_KEY] = self.builder.stamp(path, self.code, "nbval", seconds)
        import nbformat  # noqa: PLC0415

        target = self.builder.EXECUTED / path.name
        self.builder.write_atomic(target, nbformat.writes(nb))
        return target


def _enabled() -> bool:
    return os.environ.get(ENV_VAR, "").strip() != "0" and BUILD_SCRIPT.exists()


def pytest_configure(config: pytest.Config) -> None:
    if _enabled():
        config._camlib_site_capture = Capture()  # noqa: SLF001 (our own attribute)


def _capture(config: pytest.Config) -> Capture | None:
    return getattr(config, "_camlib_site_capture", None)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    capture = _capture(config)
    if capture is None:
        return
    for item in items:
        if _is_master_cell(item):
            path = Path(str(item.parent.fspath)).resolve()
            if path not in capture.sources:
                capture.sources[path] = hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """nbval starts a notebook's kernel while setting up its first cell: start it with static explorers."""
    if _capture(item.config) is None or not _is_master_cell(item) or item.parent.kernel is not None:
        return (yield)
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = "1"
    try:
        return (yield)
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    capture = _capture(item.config)
    if capture is not None and _is_master_cell(item):
        capture.record(item, report)
    return report


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    capture = _capture(item.config)
    if capture is None or not _is_master_cell(item):
        return
    if nextitem is None or getattr(nextitem, "parent", None) is not item.parent:
        capture.finish(item)
