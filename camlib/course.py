"""Open the course from an installed ``explaining-cnns``: ``python -m camlib.course [FOLDER]``.

The course's notebooks ship inside the distribution (``camlib/_notebooks``, mapped from the
repository's ``notebooks/`` folder). This command copies them into a working folder (default
``./explaining-cnns``), the master notebooks at the top and the student versions in
``student/``, and starts JupyterLab there on the first notebook. Options that this command does
not know (``--no-browser``, ``--port=9999``, ...) go to JupyterLab.

A copy is never overwritten once the learner has changed it. The folder keeps a record
(``.explaining-cnns.json``) of the checksum of each file as it was copied, so that:

* a missing file is copied;
* a copy that still has its recorded checksum (never edited) is updated when the packaged
  notebook changed, e.g. after ``pip install --upgrade explaining-cnns``;
* an edited copy is kept and reported; ``--overwrite`` replaces it by the packaged notebook
  after moving the edited one aside to ``<name>.backup-<time>.ipynb``.

This module also holds :data:`SETUP_CELL`, the source of the first code cell of every course
notebook, which installs the distribution where ``camlib`` is missing (Colab) and does
nothing otherwise. The library never imports this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DISTRIBUTION",
    "SETUP_CELL",
    "CopyReport",
    "notebook_source",
    "copy_course",
    "lab_command",
    "main",
]

#: The distribution's name on PyPI (the import name is ``camlib``).
DISTRIBUTION = "explaining-cnns"

#: The first code cell of every course notebook (master and student versions alike). On Colab,
#: or any kernel without camlib, it installs the distribution with the ``widgets`` extra (the
#: library and ipywidgets; Colab brings its own frontend and PyTorch); elsewhere it does nothing.
SETUP_CELL = """\
# Set-up: installs the course's package where it is missing (e.g. on Colab); otherwise does nothing.
import importlib, importlib.util, subprocess, sys
if importlib.util.find_spec("camlib") is None:
    print("Installing the course's package (pip install explaining-cnns[widgets]) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-qq", "explaining-cnns[widgets]"], check=True)
    importlib.invalidate_caches()"""

RECORD = ".explaining-cnns.json"
DEFAULT_FOLDER = "explaining-cnns"


def notebook_source() -> Path:
    """Folder of the course notebooks: inside the installed package, or a checkout's ``notebooks/``."""
    package = Path(__file__).resolve().parent
    packaged = package / "_notebooks"
    if any(packaged.glob("[0-9][0-9]_*.ipynb")):
        return packaged
    checkout = package.parent / "notebooks"  # editable install or a repository on sys.path
    if (package.parent / "pyproject.toml").is_file() and any(checkout.glob("[0-9][0-9]_*.ipynb")):
        return checkout
    raise FileNotFoundError(
        f"the course notebooks are not installed beside camlib ({packaged}); "
        f'reinstall with `pip install --force-reinstall "{DISTRIBUTION}[course]"`'
    )


def _course_files(source: Path) -> list[Path]:
    """The notebooks to copy, relative to ``source``: masters, then student versions."""
    masters = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    students = sorted((source / "student").glob("[0-9][0-9]_*.ipynb"))
    return [p.relative_to(source) for p in masters + students]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class CopyReport:
    """What :func:`copy_course` did to each file (paths relative to the working folder)."""

    folder: Path
    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    replaced: dict[str, str] = field(default_factory=dict)  # name -> backup name

    @property
    def first_notebook(self) -> Path:
        masters = sorted(p for p in self.folder.glob("[0-9][0-9]_*.ipynb") if ".backup-" not in p.name)
        return masters[0]

    def summary(self) -> str:
        lines = [f"Course folder: {self.folder}"]
        if self.copied:
            lines.append(f"  copied {len(self.copied)} notebooks")
        if self.updated:
            lines.append(f"  updated {len(self.updated)} unedited notebooks to the installed version")
        for name in self.kept:
            lines.append(f"  kept your edited {name} (--overwrite replaces it, keeping a backup)")
        for name, backup in self.replaced.items():
            lines.append(f"  replaced your edited {name}; your version is now {backup}")
        return "\n".join(lines)


def copy_course(folder: str | Path, overwrite: bool = False, source: Path | None = None) -> CopyReport:
    """Copy the course notebooks into ``folder`` without losing a learner's edits (module docstring)."""
    source = notebook_source() if source is None else Path(source)
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    record_path = folder / RECORD
    record: dict[str, str] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    report = CopyReport(folder)
    for rel in _course_files(source):
        name = rel.as_posix()
        src, dst = source / rel, folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        new = _sha256(src)
        if not dst.exists():
            shutil.copyfile(src, dst)
            report.copied.append(name)
        else:
            current = _sha256(dst)
            if current == new:
                report.unchanged.append(name)
            elif record.get(name) == current:  # an unedited copy of an older version
                shutil.copyfile(src, dst)
                report.updated.append(name)
            elif overwrite:
                backup = dst.with_name(f"{dst.stem}.backup-{time.strftime('%Y%m%d-%H%M%S')}{dst.suffix}")
                dst.rename(backup)
                shutil.copyfile(src, dst)
                report.replaced[name] = backup.relative_to(folder).as_posix()
            else:
                report.kept.append(name)
                continue  # the record keeps the checksum of what we copied, not of the edit
        record[name] = new
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return report


def lab_command(folder: Path, notebook: Path, extra: Sequence[str] = ()) -> list[str]:
    """JupyterLab serving ``folder`` and opening ``notebook`` (allow_root only when root)."""
    args = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    return args + list(extra) + [str(notebook)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m camlib.course",
        description="Copy the Explaining CNNs notebooks into a folder and open them in JupyterLab. "
        "Options not listed here are passed to JupyterLab (e.g. --no-browser, --port=9999).",
    )
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER,
                        help=f"working folder for the notebooks (default: ./{DEFAULT_FOLDER})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace notebooks you edited by the packaged ones (yours are kept as backups)")
    parser.add_argument("--copy-only", action="store_true", help="copy the notebooks, do not start JupyterLab")
    args, extra = parser.parse_known_args(argv)
    report = copy_course(args.folder, overwrite=args.overwrite)
    print(report.summary(), flush=True)
    if args.copy_only:
        return 0
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print(f'JupyterLab is not installed: pip install "{DISTRIBUTION}[course]"', file=sys.stderr)
        return 1
    command = lab_command(report.folder, report.first_notebook, extra)
    print("Opening JupyterLab (stop it with Ctrl+C) ...", flush=True)
    if os.name == "posix":  # become the server, so that Ctrl+C and other signals reach it directly
        os.chdir(report.folder)
        os.execv(command[0], command)
    import subprocess

    try:
        return subprocess.run(command, cwd=report.folder).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
