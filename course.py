#!/usr/bin/env python3
"""The course's commands. Needs only Python 3.10+; everything else is installed on demand.

    python3 course.py lab        set up (first time) and open the course in JupyterLab
    python3 course.py test       set up (first time) and run every test: unit, notebooks, browser
    python3 course.py figures    regenerate figures/ from camlib
    python3 course.py student    rebuild notebooks/student/ from the master notebooks
    python3 course.py weights    retrain the bundled models and rewrite their weight files
    python3 course.py lock       record the exact versions of the current environment
    python3 course.py site       build the course website into site/_build/html (static, offline)

The environment is a virtual environment in .venv, installed with pip from pyproject.toml and
pinned by requirements/constraints.txt (the versions the course was last tested with). It is
reinstalled only when one of those two files changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP = VENV / ".camlib-install-stamp"
FIRST_NOTEBOOK = "00_what_a_cnn_learns.ipynb"
MIN_PYTHON = (3, 10)
DISTRIBUTION = "camlib"
EXTRAS = ("test", "site")  # site: python3 course.py site and its test


def venv_python() -> Path:
    """Path of the environment's interpreter (POSIX or Windows layout)."""
    unix = VENV / "bin" / "python"
    return unix if unix.exists() or os.name != "nt" else VENV / "Scripts" / "python.exe"


def _say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def _run(args: list[str | Path], **kwargs) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, **kwargs)
    if completed.returncode != 0:
        raise SystemExit(completed.returncode)


def _install_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> Path:
    """Create .venv if missing and install camlib with its test extra, pinned by the constraints."""
    if sys.version_info < MIN_PYTHON:
        raise SystemExit(
            f"Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer is needed; this is {sys.version.split()[0]}."
        )
    python = venv_python()
    if not python.exists():
        _say(f"creating the virtual environment in {VENV} ...")
        venv.EnvBuilder(with_pip=True).create(VENV)
        python = venv_python()
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        return python
    _say("installing camlib and its dependencies (first time: a few minutes, about 6 GB with PyTorch) ...")
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([python, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS, "-e", f"{ROOT}[{','.join(EXTRAS)}]"])
    STAMP.write_text(fingerprint + "\n")
    return python


def lab_command(python: Path, extra: list[str]) -> list[str]:
    """The JupyterLab command line that opens the first notebook (allow_root only when root)."""
    args = [str(python), "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'notebooks'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    return args + list(extra) + [str(ROOT / "notebooks" / FIRST_NOTEBOOK)]


def lab(extra: list[str]) -> None:
    python = ensure_environment()
    _say("opening JupyterLab on the first notebook (stop it with Ctrl+C) ...")
    args = lab_command(python, extra)
    if os.name == "posix":  # become the server, so that every signal reaches it directly
        os.chdir(ROOT)
        os.execv(args[0], args)
    try:
        _run(args)
    except KeyboardInterrupt:
        pass


def ensure_browser() -> None:
    """The browser tier needs Debian's chromium; install it when we may (root with apt-get)."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root and shutil.which("apt-get"):
        _say("installing Debian's chromium for the browser tests ...")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)
    if not Path("/usr/bin/chromium").exists():
        _say("chromium is not available: the browser tests will be skipped (they fail when CI is set).")


def test(extra: list[str]) -> None:
    python = ensure_environment()
    ensure_browser()
    _say("running the unit tests, the browser tier and every notebook under nbval ...")
    _run(
        [python, "-m", "pytest", "tests", "notebooks", "--nbval-lax", "--nbval-current-env",
         "--ignore=notebooks/student", "-p", "no:cacheprovider", "-ra", *extra]
    )


def figures(extra: list[str]) -> None:
    python = ensure_environment()
    _run([python, "-m", "camlib.figures", str(ROOT / "figures"), *extra])


def student(extra: list[str]) -> None:
    python = ensure_environment()
    _run([python, "-m", "camlib.exercises.student", str(ROOT / "notebooks"),
          str(ROOT / "notebooks" / "student"), *extra])


def weights(extra: list[str]) -> None:
    python = ensure_environment()
    _run([python, "-m", "camlib.training", *extra])


# Run inside the environment: the installed versions of everything the project's requirements
# (all its extras) pull in, found by walking the installed metadata; experiments that someone
# pip-installed by hand into .venv stay out of the lock file.
_CLOSURE_SCRIPT = r"""
import importlib.metadata as md, json, re, sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

def requirements(name, extras):
    dist = md.distribution(name)
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            yield req

root = sys.argv[1]
root_dist = md.distribution(root)
extras = tuple(root_dist.metadata.get_all("Provides-Extra") or [])
seen, todo, pins = set(), [(root, extras)], {}
while todo:
    name, extras = todo.pop()
    key = (canonicalize_name(name), tuple(sorted(extras)))
    if key in seen:
        continue
    seen.add(key)
    for req in requirements(name, extras):
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue  # an optional dependency for another platform or Python
        pins[dist.metadata["Name"]] = dist.version.split("+", 1)[0]
        todo.append((req.name, tuple(req.extras)))
pins.pop(root_dist.metadata["Name"], None)
print(json.dumps(pins))
"""


def lock(extra: list[str]) -> None:
    """Write requirements/constraints.txt: the exact installed versions of the project's dependencies."""
    python = venv_python()
    if not python.exists():
        raise SystemExit("No environment in .venv yet: run `python3 course.py test` first.")
    import json

    found = subprocess.run(
        [str(python), "-c", _CLOSURE_SCRIPT, DISTRIBUTION], capture_output=True, text=True, check=True,
        cwd=VENV,  # not the repository root, whose build metadata (*.egg-info) would shadow the install
    ).stdout
    pins = json.loads(found)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower())]
    header = (
        "# Exact versions the course was last tested with (python3 course.py lock): every package that\n"
        "# the project's requirements and extras pull in. course.py installs with\n"
        f"# `pip install -c requirements/constraints.txt -e .[{','.join(EXTRAS)}]`.\n"
    )
    CONSTRAINTS.write_text(header + "\n".join(lines) + "\n")
    _say(f"wrote {CONSTRAINTS.relative_to(ROOT)} ({len(lines)} packages)")


def site(extra: list[str]) -> None:
    """Build the course website into site/_build/html from the notebooks (see site/README.md)."""
    python = ensure_environment()
    _run([python, ROOT / "site" / "build.py", *extra])


COMMANDS = {"lab": lab, "test": test, "figures": figures, "student": student, "weights": weights, "lock": lock, "site": site}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        raise SystemExit(0 if argv[:1] in (["-h"], ["--help"]) else 2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
