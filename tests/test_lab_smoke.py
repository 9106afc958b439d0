"""Smoke test of the main job: the JupyterLab server that `python3 course.py lab` starts serves
the course's first notebook (no browser, a free port, allow_root only when root)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _course_module():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_lab_serves_the_first_notebook(tmp_path):
    course = _course_module()
    port, token = _free_port(), "camlib-smoke-test"
    args = course.lab_command(
        Path(sys.executable),
        ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", "--LanguageServerManager.autodetect=False"],
    )
    assert args[-1].endswith(course.FIRST_NOTEBOOK)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode(errors="replace") if server.poll() is not None else ""
                raise AssertionError(f"JupyterLab did not start:\n{output[-3000:]}")
            time.sleep(0.5)
        status, body = _get(f"{base}/api/contents/{course.FIRST_NOTEBOOK}?token={token}")
        model = json.loads(body)
        assert status == 200 and model["type"] == "notebook"
        assert model["content"]["cells"], "the first notebook is empty"
        status, page = _get(f"{base}/lab/tree/{course.FIRST_NOTEBOOK}?token={token}")
        assert status == 200 and b"JupyterLab" in page
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None
