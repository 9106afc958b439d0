#!/usr/bin/env python3
"""The course's commands. Needs only Python (the version pyproject.toml's requires-python
names); everything else is installed on demand.

    python3 course.py lab        set up (first time) and open the course in JupyterLab
    python3 course.py test       set up (first time) and run every test: unit, notebooks, browser
    python3 course.py figures    regenerate figures/ from camlib
    python3 course.py student    rebuild notebooks/student/ from the master notebooks
    python3 course.py weights    retrain the bundled models and rewrite their weight files
    python3 course.py lock       record the exact versions of the current environment
    python3 course.py site       build the course website into site/_build/html (static, offline)

The environment is a virtual environment in .venv: the project installed with pip in editable
mode with its extras (the course, the tests, the website), pinned by requirements/constraints.txt
(the versions the course was last tested with, recorded on one Python version; on another Python
the newest versions that pyproject.toml allows are installed instead). It is reinstalled only when
pyproject.toml, setup.py or the constraints change.
"""

from __future__ import annotations

import hashlib
import os
import re
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
EXTRAS = ("course", "test", "site")  # what .venv holds: the course (JupyterLab, ipywidgets), every test tool, the website builder
OLD_DISTRIBUTIONS = ("camlib",)  # the project's former distribution name, removed from an old .venv


def _pyproject_field(key: str) -> str:
    """A top-level string field of pyproject.toml's [project] table (read without tomllib, which
    Python 3.10 lacks). pyproject.toml is the one place of the name and the Python floor."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', text, re.M)
    if match is None:
        raise SystemExit(f"pyproject.toml has no {key} field")
    return match.group(1)


DISTRIBUTION = _pyproject_field("name")
MIN_PYTHON = tuple(int(part) for part in re.fullmatch(r">=\s*(\d+)\.(\d+)", _pyproject_field("requires-python")).groups())


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
    for path in (ROOT / "pyproject.toml", ROOT / "setup.py", CONSTRAINTS):
        digest.update(path.read_bytes())
    digest.update(f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
    return digest.hexdigest()


def locked_python() -> tuple[int, int] | None:
    """The Python version requirements/constraints.txt was recorded with (its header says)."""
    match = re.search(r"^# recorded on Python (\d+)\.(\d+)", CONSTRAINTS.read_text(), re.M)
    return (int(match.group(1)), int(match.group(2))) if match else None


def constraint_args(version: tuple[int, int] | None = None) -> list[str]:
    """``-c requirements/constraints.txt`` when this Python is the one the pins were recorded on."""
    version = tuple(sys.version_info[:2]) if version is None else version
    locked = locked_python()
    if locked is not None and version != locked:
        _say(
            f"requirements/constraints.txt was recorded on Python {locked[0]}.{locked[1]}; on Python "
            f"{version[0]}.{version[1]} the newest versions that pyproject.toml allows are installed instead."
        )
        return []
    return ["-c", str(CONSTRAINTS)]


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
    _say(f"installing {DISTRIBUTION} and its dependencies (first time: a few minutes, about 6 GB with PyTorch) ...")
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    for old in OLD_DISTRIBUTIONS:  # an environment made before the rename holds camlib twice
        has_old = subprocess.run([str(python), "-c", f"import importlib.metadata as m; m.distribution({old!r})"],
                                 cwd=VENV, capture_output=True).returncode == 0
        if has_old:
            _run([python, "-m", "pip", "uninstall", "--quiet", "--yes", old])
    _run([python, "-m", "pip", "install", "--quiet", *constraint_args(), "-e", f"{ROOT}[{','.join(EXTRAS)}]"])
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
         "--ignore=notebooks/student", "-p", "no:cacheprovider", "-ra", "--durations=30", *extra]
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
    # the bundled files of this checkout; `python -m camlib.training` alone writes only where told
    _run([python, "-m", "camlib.training", "--out", ROOT / "camlib" / "weights", *extra])


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
    version = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    header = (
        "# Exact versions the course was last tested with (python3 course.py lock): every package that\n"
        "# the project's requirements and extras pull in. course.py installs with\n"
        f"# `pip install -c requirements/constraints.txt -e .[{','.join(EXTRAS)}]`.\n"
        f"# recorded on Python {version} (on another Python, course.py installs without these pins)\n"
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
