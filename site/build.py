#!/usr/bin/env python3
"""Build the course website from the master notebooks: ``python3 course.py site`` runs this file.

Steps (each timed; the summary goes to ``site/_build/report.json``):

1. **Executed notebooks.** For every master notebook ``notebooks/NN_*.ipynb`` take its executed copy
   from ``test-artifacts/executed/`` when it is *fresh*: its metadata ``camlib_site`` records the
   SHA-256 of the master file and of the camlib package it ran with, and static explorers were on.
   The test run writes these copies from nbval's outputs (``tests/site_capture.py``), so the notebooks
   are executed once per test run, not twice. A missing or stale copy is executed here with nbclient
   (``CAMLIB_STATIC_EXPLORERS=1``, so each explorer also displays its static version) and saved there.
2. **Staging.** ``site/_build/source`` receives the landing page (``site/index.md`` with the list of the
   notebooks that exist, titles from their first heading and summaries from the README's table), the
   overview figure, and the notebooks with each explorer's live widget view dropped in favour of its
   static HTML (a widget output without one stops the build). Files are rewritten only when their bytes
   change, so a rebuild re-reads only what changed.
3. **Sphinx** (MyST-NB, Sphinx Book Theme; ``site/conf.py``), warnings treated as errors.
4. **MathJax 3** ``tex-chtml-full.js`` and its woff-v2 fonts are copied from the ``sphinx-mathjax-offline``
   wheel into ``_static/mathjax`` (1.7 MB; not the 20 MB of the whole MathJax tree); the themes' source
   maps (``*.map``, 3 MB, read only by a browser's developer tools) are left out.
5. **Checks**: no page, stylesheet or script refers to a file outside the site (links to other
   sites are fine: a link is not a request), and the site stays within 25 MB.

Usage: ``python site/build.py [--out DIR] [--jobs N] [--execute-all] [--reuse-stale]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "test-artifacts" / "executed"
BUILD = SITE / "_build"
STAGE = BUILD / "source"
HTML = BUILD / "html"
DOCTREES = BUILD / "doctrees"
REPORT = BUILD / "report.json"

#: the site's size budget
SIZE_LIMIT = 25 * 1024 * 1024
#: metadata key of an executed notebook that says what it was executed from
META_KEY = "camlib_site"
#: the variable that makes camlib's explorers add their static version (camlib/_static_explorer.py)
STATIC_ENV = "CAMLIB_STATIC_EXPLORERS"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_MARK = "camlib-static-explorer"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
LIST_MARKER = "<!-- NOTEBOOK LIST: written by site/build.py from the notebooks that exist -->"


class BuildError(RuntimeError):
    """The site cannot be built as asked; the message says what to fix."""


def say(message: str) -> None:
    print(f"[site] {message}", flush=True)


# ----------------------------------------------------------------------------- freshness


def master_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course notebooks that exist, in course order (``NN_name.ipynb``)."""
    return sorted(folder.glob(NOTEBOOK_GLOB))


def code_fingerprint(package: Path = ROOT / "camlib") -> str:
    """SHA-256 over camlib's files (sources, weights, data), so a changed library means stale outputs."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stamp(master: Path, code: str, executed_by: str, seconds: float) -> dict[str, Any]:
    """What an executed notebook records about its origin (``metadata.camlib_site``)."""
    return {
        "source": master.name,
        "source_sha256": file_fingerprint(master),
        "camlib_sha256": code,
        "static_explorers": True,
        "executed_by": executed_by,
        "seconds": round(seconds, 2),
    }


def is_fresh(executed: Path, master: Path, code: str) -> bool:
    """True when ``executed`` was run from this exact master file and camlib, with static explorers."""
    if not executed.exists():
        return False
    try:
        meta = json.loads(executed.read_text(encoding="utf-8")).get("metadata", {}).get(META_KEY, {})
    except (OSError, ValueError):
        return False
    return (
        meta.get("source_sha256") == file_fingerprint(master)
        and meta.get("camlib_sha256") == code
        and meta.get("static_explorers") is True
    )


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- execution


async def _execute_one(master: Path, target: Path, code: str, timeout: int, gate: asyncio.Semaphore) -> float:
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415

    async with gate:
        nb = nbformat.read(master, as_version=4)
        t0 = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(master.parent)}},
            store_widget_state=False,
        )
        BUILD.mkdir(parents=True, exist_ok=True)
        with open(BUILD / "kernels.log", "ab") as kernel_log:  # the kernels' own messages, not cell output
            await client.async_execute(stderr=kernel_log)
        seconds = time.perf_counter() - t0
        nb.metadata[META_KEY] = stamp(master, code, "nbclient", seconds)
        write_atomic(target, nbformat.writes(nb))
        say(f"executed {master.name} in {seconds:.1f} s")
        return seconds


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return re.sub(r"\x1b\[[0-9;]*m", "", lines[-1] if lines else type(error).__name__)


def execute(masters: list[Path], executed: Path, code: str, jobs: int, timeout: int) -> float:
    """Execute ``masters`` with nbclient, ``jobs`` kernels at a time; returns the wall time.

    Every notebook runs to its end or its first error; then one :class:`BuildError` names each failure.
    """
    if not masters:
        return 0.0
    os.environ[STATIC_ENV] = "1"  # inherited by the kernels started below, and only by them
    cpus = os.cpu_count() or 1
    if jobs > 1:  # kernels side by side: share the cores instead of fighting over them
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus // jobs)))

    async def run_all() -> list:
        gate = asyncio.Semaphore(max(1, jobs))
        runs = (_execute_one(m, executed / m.name, code, timeout, gate) for m in masters)
        return await asyncio.gather(*runs, return_exceptions=True)

    t0 = time.perf_counter()
    results = asyncio.run(run_all())
    failures = [f"{m.name}: {_last_line(r)}" for m, r in zip(masters, results) if isinstance(r, BaseException)]
    if failures:
        raise BuildError("notebooks that failed to execute:\n  " + "\n  ".join(failures))
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- staging


def notebook_title(nb: Any, fallback: str) -> str:
    """The text of the notebook's first ``#`` heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+?)\s*$", cell.source, flags=re.M)
            if match:
                return match.group(1)
    return fallback


def readme_summaries(readme: Path = ROOT / "README.md") -> dict[str, str]:
    """``stem -> what it teaches`` from the README's notebook table (rows naming ``NN_name.ipynb``)."""
    found: dict[str, str] = {}
    if not readme.exists():
        return found
    row = re.compile(r"^\|\s*\[`?(\d\d_\w+)\.ipynb`?\]\([^)]*\)\s*\|\s*(.+?)\s*\|\s*$")
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def prepare_notebook(nb: Any, name: str) -> Any:
    """The notebook as the site shows it: each explorer's widget view replaced by its static HTML.

    Raises :class:`BuildError` for a widget output that has no static version.
    """
    nb.metadata.pop("widgets", None)
    missing = []
    code_index = -1
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            if STATIC_MARK in str(data.get("text/html", "")):
                del data[WIDGET_VIEW]
                data.pop("text/plain", None)
            else:
                missing.append(f"code cell {code_index}: {str(data.get('text/plain', 'a widget'))[:60]}")
    if missing:
        raise BuildError(
            f"{name}: widget output without a static version ({'; '.join(missing)}). Each camlib Explorer "
            f"adds one when {STATIC_ENV}=1; another widget needs a static stand-in."
        )
    return nb


def notebook_list(entries: list[dict[str, str]]) -> str:
    """The landing page's list of notebooks and the hidden table of contents of the site."""
    lines = []
    for e in entries:
        summary = f": {e['summary']}" if e["summary"] else ""
        lines.append(f"- [**{e['title']}**]({e['file']}){summary}")
    toc = ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *[e["stem"] for e in entries], "```"]
    return "\n".join(lines + toc)


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def stage(executed: list[Path], stage_dir: Path = STAGE) -> list[dict[str, str]]:
    """Write the Sphinx source folder; returns the notebook entries of the landing page."""
    import nbformat  # noqa: PLC0415

    stage_dir.mkdir(parents=True, exist_ok=True)
    summaries = readme_summaries()
    entries = []
    for path in executed:
        nb = prepare_notebook(nbformat.read(path, as_version=4), path.name)
        write_if_changed(stage_dir / path.name, nbformat.writes(nb).encode("utf-8"))
        entries.append(
            {"stem": path.stem, "file": path.name, "title": notebook_title(nb, path.stem), "summary": summaries.get(path.stem, "")}
        )
    keep = {p.name for p in executed}
    for old in stage_dir.glob("*.ipynb"):
        if old.name not in keep:
            old.unlink()
    template = (SITE / "index.md").read_text(encoding="utf-8")
    if LIST_MARKER not in template:
        raise BuildError(f"site/index.md lost its marker line {LIST_MARKER!r}")
    write_if_changed(stage_dir / "index.md", template.replace(LIST_MARKER, notebook_list(entries)).encode("utf-8"))
    write_if_changed(stage_dir / "figures" / "overview.png", (ROOT / "figures" / "overview.png").read_bytes())
    return entries


# ----------------------------------------------------------------------------- MathJax, checks


def mathjax_folder() -> Path:
    """The MathJax 3 tree inside the installed ``sphinx-mathjax-offline`` wheel."""
    from importlib.metadata import PackageNotFoundError, files  # noqa: PLC0415

    try:
        listed = files("sphinx-mathjax-offline") or []
    except PackageNotFoundError:
        raise BuildError(
            "sphinx-mathjax-offline is not installed: install the site extra "
            "(pip install -c requirements/constraints.txt -e '.[site]')"
        ) from None
    for entry in listed:
        if entry.name == "tex-chtml-full.js":
            return Path(entry.locate()).parent
    raise BuildError("sphinx-mathjax-offline has no tex-chtml-full.js")


def copy_mathjax(out: Path) -> int:
    """Copy ``tex-chtml-full.js`` and its woff-v2 fonts to ``out/_static/mathjax``; returns bytes."""
    source = mathjax_folder()
    wanted = [source / "tex-chtml-full.js", *sorted((source / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))]
    total = 0
    for path in wanted:
        target = out / "_static" / "mathjax" / path.relative_to(source)
        write_if_changed(target, path.read_bytes())
        total += path.stat().st_size
    return total


class _References(HTMLParser):
    """Collects the URLs a page *loads* (scripts, styles, images, frames, media), not the links."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src", "audio": "src",
             "embed": "src", "object": "data", "track": "src"}  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in self.LOADS and a.get(self.LOADS[tag]):
            self.loads.append(a[self.LOADS[tag]])
        if tag == "link" and a.get("href"):
            rel = a.get("rel", "").lower()
            if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload", "manifest", "prefetch")):
                self.loads.append(a["href"])
        if a.get("srcset"):
            self.loads.extend(part.strip().split(" ")[0] for part in a["srcset"].split(","))


def _external(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url.strip(), flags=re.I)) and not url.startswith("file:")


def external_loads(out: Path) -> list[str]:
    """Every ``file: URL`` by which a page or stylesheet of the site would load something from outside it."""
    found = []
    for page in sorted(out.rglob("*.html")):
        parser = _References()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += [f"{page.relative_to(out)}: {u}" for u in parser.loads if _external(u)]
    css_url = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)", flags=re.I)
    for sheet in sorted(out.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        found += [f"{sheet.relative_to(out)}: {u}" for u in css_url.findall(text) if _external(u)]
    return found


def folder_size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- the build


def build(
    out: Path = HTML,
    executed_dir: Path = EXECUTED,
    jobs: int = 2,
    timeout: int = 600,
    execute_all: bool = False,
    reuse_stale: bool = False,
) -> dict[str, Any]:
    """Build the site into ``out``; returns the report (also written to ``site/_build/report.json``).

    ``reuse_stale`` (development only: working on the site's look while camlib changes) takes any
    executed copy that exists, fresh or not; a missing one is still executed.
    """
    t_start = time.perf_counter()
    masters = master_notebooks()
    if not masters:
        raise BuildError(f"no notebooks match {NOTEBOOKS / NOTEBOOK_GLOB}")
    code = code_fingerprint()

    def usable(master: Path) -> bool:
        copy = executed_dir / master.name
        return copy.exists() if reuse_stale else is_fresh(copy, master, code)

    stale = [m for m in masters if execute_all or not usable(m)]
    reused = [m.name for m in masters if m not in stale]
    if reused:
        say(f"reusing {len(reused)} executed notebook(s) from {executed_dir.relative_to(ROOT) if executed_dir.is_relative_to(ROOT) else executed_dir}")
    if stale:
        say(f"executing {len(stale)} notebook(s) ({jobs} at a time): {', '.join(m.name for m in stale)}")
    t_exec = execute(stale, executed_dir, code, jobs, timeout)

    t0 = time.perf_counter()
    entries = stage([executed_dir / m.name for m in masters])
    t_stage = time.perf_counter() - t0

    t0 = time.perf_counter()
    env = dict(os.environ)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    if commit.returncode == 0:
        env.setdefault("CAMLIB_SITE_COMMIT", commit.stdout.strip())
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
           "-c", str(SITE), "-d", str(DOCTREES), str(STAGE), str(out)]  # fmt: skip
    sphinx = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if sphinx.returncode != 0:
        raise BuildError(f"sphinx-build failed (exit {sphinx.returncode}); its messages are above")
    t_sphinx = time.perf_counter() - t0

    t0 = time.perf_counter()
    for source_map in (out / "_static").rglob("*.map"):  # the themes' source maps: only for debugging them
        source_map.unlink()
    mathjax_bytes = copy_mathjax(out)
    outside = external_loads(out)
    size = folder_size(out)
    t_check = time.perf_counter() - t0

    pages = sorted(p.relative_to(out).as_posix() for p in out.glob("*.html") if p.name not in {"genindex.html", "search.html"})
    frames, error_frames, render_seconds, explorers = 0, 0, 0.0, {}
    for e in entries:
        text = (out / f"{e['stem']}.html").read_text(encoding="utf-8")
        found = re.findall(r'data-frames="(\d+)" data-errors="(\d+)" data-render-seconds="([\d.]+)"', text)
        explorers[e["file"]] = len(found)
        frames += sum(int(f[0]) for f in found)
        error_frames += sum(int(f[1]) for f in found)
        render_seconds += sum(float(f[2]) for f in found)
    report = {
        "out": str(out),
        "notebooks": [e["file"] for e in entries],
        "executed": [m.name for m in stale],
        "reused": reused,
        "pages": pages,
        "explorers": explorers,
        "frames": frames,
        "error_frames": error_frames,
        "frame_render_seconds": round(render_seconds, 2),
        "size_bytes": size,
        "mathjax_bytes": mathjax_bytes,
        "seconds": {
            "execute": round(t_exec, 1),
            "stage": round(t_stage, 1),
            "sphinx": round(t_sphinx, 1),
            "mathjax_and_checks": round(t_check, 1),
            "total": round(time.perf_counter() - t_start, 1),
        },
        "external_loads": outside,
    }
    write_atomic(REPORT, json.dumps(report, indent=2) + "\n")
    if outside:
        raise BuildError("the site would load files from outside itself:\n  " + "\n  ".join(outside[:20]))
    if size > SIZE_LIMIT:
        raise BuildError(f"the site is {size / 2**20:.1f} MB, over the budget of {SIZE_LIMIT / 2**20:.0f} MB")
    if error_frames:
        say(f"warning: {error_frames} frame(s) of the static explorers show a failed render")
    say(
        f"built {len(pages)} pages ({len(entries)} notebooks, {sum(explorers.values())} static explorers with {frames} frames "
        f"rendered in {render_seconds:.1f} s) into {out}: {size / 2**20:.1f} MB, "
        f"{report['seconds']['total']:.1f} s (execute {t_exec:.1f}, stage {t_stage:.1f}, sphinx {t_sphinx:.1f})"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the course website into one folder.")
    parser.add_argument("--out", type=Path, default=HTML, help=f"output folder (default {HTML.relative_to(ROOT)})")
    parser.add_argument("--executed", type=Path, default=EXECUTED, help="folder of executed notebooks (read and refreshed)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once when some are stale (default 2)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a notebook cell may run (default 600)")
    parser.add_argument("--execute-all", action="store_true", help="execute every notebook even when a fresh copy exists")
    parser.add_argument(
        "--reuse-stale", action="store_true", help="development: use existing executed copies even when stale"
    )
    args = parser.parse_args(argv)
    try:
        build(args.out.resolve(), args.executed.resolve(), args.jobs, args.timeout, args.execute_all, args.reuse_stale)
    except BuildError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
