"""Fixtures of the browser tier: JupyterLab on a copy of the notebooks, driven by headless Chromium.

The recipe is the one of COURSES.md section 3.4, which was run on this kind of machine:

* Debian's Chromium at /usr/bin/chromium through Python Playwright (``playwright install`` cannot
  download a browser here). Without it the tier is skipped with the reason, unless ``CI`` is set,
  in which case it fails.
* JupyterLab on a free port with a random token and ``--ServerApp.allow_root=True`` (the machine runs as
  root), on a temporary copy of the notebooks with outputs stripped, and with temporary Lab settings:
  kernels start by themselves, no windowing (every cell is in the DOM), no autosave, no news toast.
* Before running all cells, an empty ``execute_request`` round trip proves the kernel channel is up;
  otherwise run-all can be swallowed and widgets stay "Loading widget..." on a 2-core machine.
* A watchdog (SIGALRM) fails a test that runs longer than ``CAMLIB_BROWSER_TEST_TIMEOUT`` seconds
  (default 240) instead of hanging the suite; ``page.evaluate`` itself has no timeout.

``CAMLIB_BROWSER_NOTEBOOKS`` may point at another folder of notebooks (used while developing).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
TEST_TIMEOUT = int(os.environ.get("CAMLIB_BROWSER_TEST_TIMEOUT", "240"))


def notebooks_dir() -> Path:
    return Path(os.environ.get("CAMLIB_BROWSER_NOTEBOOKS", ROOT / "notebooks")).resolve()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tier may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def watchdog(request) -> Iterator[None]:
    """Fail (not hang) a browser test that exceeds TEST_TIMEOUT seconds."""

    def expire(_signum, _frame):
        raise TimeoutError(f"{request.node.name} ran longer than {TEST_TIMEOUT} s (browser-tier watchdog)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(base: Path) -> dict[str, str]:
    settings = base / "settings"
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
            "autoStartDefaultKernel": True,
            "windowingMode": "none",
        },
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for rel, content in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    workspaces = base / "workspaces"
    workspaces.mkdir(exist_ok=True)
    return {"JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(workspaces)}


def _copy_notebooks(src: Path, dst: Path) -> None:
    """Copy the notebooks (top level only) with outputs and execution counts stripped."""
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, dst / path.name)
    for extra in src.iterdir():  # data files a notebook may open relative to itself
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy2(extra, dst / extra.name)


class Lab:
    def __init__(self, base: str, token: str, root: Path) -> None:
        self.base, self.token, self.root = base, token, root

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(f"{self.base}{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every session's kernel: on 2 cores an idle kernel per notebook still costs memory and CPU."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except (urllib.error.URLError, OSError, TypeError):
            pass


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[Lab]:
    _require_chromium()
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    _copy_notebooks(notebooks_dir(), root)
    port, token = _free_port(), secrets.token_hex(16)
    # one thread per kernel: the tier runs two notebooks at once, and two kernels with two OpenMP
    # threads each on two cores spin against each other
    env = {**os.environ, **_write_settings(base), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("CAMLIB_BROWSER_NOTEBOOKS", None)
    log = open(base / "lab.log", "wb")
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True",
        "--ServerApp.allow_root=True", "--LanguageServerManager.autodetect=False",
        "--ZMQChannelsWebsocketConnection.limit_rate=False",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{(base / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=3) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer in 90 s:\n{(base / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield Lab(url, token, root)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Chromium for the whole session.

    Playwright's sync API allows one ``sync_playwright()`` at a time per thread, so every browser test
    (the JupyterLab tier and the site's pages) shares this one instead of starting its own.
    """
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def browser(lab, chromium_browser):
    return chromium_browser


CLOSE_NOTEBOOKS_JS = """async () => {
  const app = window.jupyterapp;
  for (const w of [...app.shell.widgets('main')]) {
    if (w.sessionContext) {
      try { await Promise.race([w.sessionContext.shutdown(), new Promise(r => setTimeout(r, 10000))]); } catch (e) {}
    }
    w.dispose();  // no "save changes?" dialog: the copies are thrown away
  }
  return true;
}"""


@pytest.fixture(scope="session")
def lab_page(browser, lab):
    """One JupyterLab tab for the whole tier: loading Lab's JavaScript once saves ~10 s per notebook."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(90_000)
    pg.goto(f"{lab.base}/lab/workspaces/camlib-browser-tier?token={lab.token}&reset")
    pg.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-LabShell')")
    pg.evaluate("async () => { await window.jupyterapp.restored; return true; }")
    try:
        yield pg
    finally:
        try:
            pg.evaluate(CLOSE_NOTEBOOKS_JS)
        except Exception:  # a broken page must not hide a test's own failure
            pass
        context.close()
        lab.shutdown_kernels()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
