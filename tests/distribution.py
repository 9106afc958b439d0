"""Helpers for the tests that meet the course as a pip user does: build the distributions once,
and create clean virtual environments that lack camlib.

A clean environment is a new ``venv`` with an empty site-packages. Installing
PyTorch into each one would cost about 6 GB and a minute or two, so the heavy dependencies come
from the test environment instead, read-only: a ``.pth`` file adds a folder of symbolic links
to the test environment's site-packages entries, *minus* camlib, this distribution's metadata
and its editable-install hooks. pip (and ``import``) then see torch, numpy, ipywidgets and
JupyterLab as already installed, as on Colab or in a learner's existing environment, but must
really install our wheel to get camlib. pip itself and setuptools come the same way (a venv's
own bundled setuptools can be older than what torch requires), and install into the clean
environment's site-packages.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "explaining-cnns"
# site-packages entries never shared with a clean environment
_PRIVATE = re.compile(
    r"^(camlib|explaining_cnns[-.].*|__editable__.*|_?_?editable___.*|camlib-.*|.*\.pth|__pycache__)$",
    re.IGNORECASE,
)


def project_files() -> list[Path]:
    """Files of the project as a release would see them: tracked or new, never ignored ones."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
        return sorted(Path(p) for p in out.split("\0") if p and (ROOT / p).is_file())
    skip = {".venv", ".git", "build", "dist", "test-artifacts", ".pytest_cache", ".hypothesis"}
    return sorted(
        p.relative_to(ROOT)
        for p in ROOT.rglob("*")
        if p.is_file() and not (set(p.relative_to(ROOT).parts) & skip) and "__pycache__" not in p.parts
        and not p.name.endswith(".egg-info") and ".egg-info" not in str(p)
    )


@functools.lru_cache(maxsize=None)
def built_distributions() -> tuple[Path, Path]:
    """Build the sdist and the wheel once per test session with ``python -m build`` (isolated).

    The build runs on a copy of the project files, so that it leaves no build output in the
    working tree. Returns ``(sdist, wheel)``.
    """
    work = Path(tempfile.mkdtemp(prefix="camlib-build-"))
    src = work / "src"
    for rel in project_files():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    dist = work / "dist"
    completed = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
        capture_output=True, text=True,
    )
    if completed.returncode != 0:
        raise AssertionError(f"python -m build failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}")
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


def _shared_packages(folder: Path) -> Path:
    """A folder of links to this environment's site-packages entries, camlib excluded."""
    folder.mkdir(parents=True, exist_ok=True)
    site_packages = Path(sysconfig.get_paths()["purelib"])
    for entry in site_packages.iterdir():
        if not _PRIVATE.match(entry.name):
            (folder / entry.name).symlink_to(entry)
    return folder


def clean_venv(path: Path, share_jupyter: bool = False) -> Path:
    """A new virtual environment at ``path`` without camlib; returns its Python.

    ``share_jupyter`` also links the test environment's ``share/jupyter`` (JupyterLab's built
    front end and the widget extension live there, outside site-packages).
    """
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    shared = _shared_packages(path / "shared-site-packages")
    (Path(purelib) / "zz_shared_test_packages.pth").write_text(f"{shared}\n")
    if share_jupyter:
        (path / "share").mkdir(exist_ok=True)
        (path / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """Environment variables for a clean environment's processes: nothing that leads to the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env
