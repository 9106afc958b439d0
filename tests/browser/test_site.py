"""The course website in a real browser, offline: every page over ``file://`` and over a local HTTP server.

The site is built once per module by ``site/build.py`` (the command behind ``python3 course.py site``);
in the README's test command it runs after the notebooks, so it reuses the notebooks that nbval has
just executed (``tests/site_capture.py``). Then headless Chromium opens every page with every request
that leaves the site blocked, and checks that

* the page loads with no failed request, no HTTP error, no request blocked for leaving the site, and
  no console error or uncaught exception (nor a MathJax warning);
* every image decodes (``naturalWidth > 0``, lazy images included);
* the math is typeset: every math element holds MathJax output, MathJax reports no error, and no raw
  ``$$``, ``\\(`` or ``\\[`` is left in the prose; no page is wider than the window, and an equation
  wider than the column scrolls inside its own box instead of being cut off;
* every static explorer's slider, moved with the keyboard (ArrowRight, then End), changes the image to
  another decodable frame and changes the readout; each notebook page has at least one explorer;
* the search page finds a word of the course from the local index.

Run: ``pytest tests/browser/test_site.py`` (marked ``browser`` by the tier's conftest).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

# after_notebooks (tests/conftest.py): in the README's test command the site builds from the notebooks
# that nbval has just executed
pytestmark = [pytest.mark.browser, pytest.mark.after_notebooks]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "site" / "build.py"
ARTIFACTS = ROOT / "test-artifacts" / "site"


def _build_module():
    spec = importlib.util.spec_from_file_location("camlib_site_build", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> list[str]:
    """The pages to open: the landing page, one per notebook that exists, and the search page."""
    notebooks = [p.stem + ".html" for p in _build_module().master_notebooks()]
    return ["index.html", *notebooks, "search.html"]


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the site tests may not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site() -> Path:
    """The built site: ``python site/build.py`` exactly as ``python3 course.py site`` runs it."""
    if importlib.util.find_spec("myst_nb") is None or importlib.util.find_spec("sphinx_book_theme") is None:
        _skip_or_fail("the site extra is not installed (pip install -e '.[site]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # CAMLIB_SITE_REUSE_STALE=1: development only, check the look of the site without re-executing
    extra = ["--reuse-stale"] if os.environ.get("CAMLIB_SITE_REUSE_STALE") == "1" else []
    completed = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), *extra], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    (ARTIFACTS / "build.log").write_text(completed.stdout + completed.stderr)
    assert completed.returncode == 0, f"site/build.py failed:\n{(completed.stdout + completed.stderr)[-4000:]}"
    module = _build_module()
    report = json.loads(module.REPORT.read_text())
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))
    print(f"\n[site] {completed.stdout.strip().splitlines()[-1]}")
    return Path(report["out"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def http_base(site) -> str:
    """A local static HTTP server over the built site (what any static host does)."""
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chromium(chromium_browser):
    """The session's one Chromium (tests/browser/conftest.py): Playwright's sync API allows one per thread."""
    return chromium_browser


class Visit:
    """One page in a fresh context that lets only the site's own requests through, recording the rest."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url[:120]}: {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url[:120]}: HTTP {r.status}"))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _local(self, url: str) -> bool:
        if url.startswith(("data:", "blob:", "about:")):
            return True
        if self.base.startswith("file:"):
            return url.startswith("file:")
        ours = urlparse(self.base)
        theirs = urlparse(url)
        return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)

    def _route(self, route) -> None:
        url = route.request.url
        if self._local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _console(self, message) -> None:
        if message.type == "error" or (message.type == "warning" and "MathJax" in message.text):
            self.errors.append(f"console {message.type}: {message.text}")

    def close(self) -> None:
        self.context.close()


SETTLE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const broken = [];
  for (const img of [...document.images]) {
    img.loading = 'eager';
    try { await img.decode(); } catch (e) { }
    if (!(img.complete && img.naturalWidth > 0)) { broken.push((img.getAttribute('src') || '(no src)').slice(0, 100)); }
  }
  return {images: document.images.length, broken};
}"""

MATH_JS = r"""() => {
  const maths = [...document.querySelectorAll('.math')];
  const untypeset = maths.filter(m => !m.querySelector('mjx-container') && m.tagName !== 'MJX-CONTAINER');
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e => e.textContent.slice(0, 80));
  const raw = [];
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => node.parentElement.closest('pre, code, script, style, textarea, mjx-container, .camlib-static-explorer')
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.textContent;
    if (t.includes('$$') || t.includes('\\(') || t.includes('\\[')) { raw.push(t.trim().slice(0, 100)); }
  }
  return {maths: maths.length, typeset: document.querySelectorAll('mjx-container').length,
          untypeset: untypeset.map(m => m.textContent.slice(0, 80)), errors, raw};
}"""

WIDE_JS = """() => {
  const problems = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) { problems.push(`page ${page.scrollWidth} px wide in a ${page.clientWidth} px window`); }
  for (const box of document.querySelectorAll('div.math')) {
    const eq = box.querySelector('mjx-container');
    const wide = eq ? eq.scrollWidth : box.scrollWidth;
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
    if (wide > box.clientWidth + 1 && !scrolls) { problems.push(`equation ${wide} px wide cut to ${box.clientWidth} px: ${box.textContent.slice(0, 50)}`); }
  }
  return problems;
}"""

FRAME_JS = """([i, k]) => {
  const ex = document.querySelectorAll('.camlib-static-explorer')[i];
  const slider = ex.querySelectorAll('input.camlib-static-slider')[k];
  const img = ex.querySelector('img.camlib-static-image');
  return {value: Number(slider.value), max: Number(slider.max),
          src: img.getAttribute('src'), decoded: img.complete && img.naturalWidth > 0,
          text: ex.querySelector('.camlib-static-readout').textContent,
          shown: ex.querySelectorAll('output.camlib-static-value')[k].textContent,
          ready: ex.classList.contains('camlib-static-ready')};
}"""


def _move(page, slider, key: str, i: int, k: int, before: dict) -> dict:
    slider.press(key)
    page.wait_for_function(
        f"""([i, k, src, text]) => {{ const s = ({FRAME_JS})([i, k]);
              return s.decoded && s.src !== src && s.text !== text; }}""",
        arg=[i, k, before["src"], before["text"]],
        timeout=5_000,
    )
    return page.evaluate(FRAME_JS, [i, k])


def _check_explorers(page, name: str) -> int:
    explorers = page.locator(".camlib-static-explorer")
    count = explorers.count()
    for i in range(count):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        sliders = explorer.locator("input.camlib-static-slider")
        assert sliders.count() >= 1, f"{name}: static explorer {i} has no slider"
        for k in range(sliders.count()):
            slider = sliders.nth(k)
            start = page.evaluate(FRAME_JS, [i, k])
            assert start["ready"], f"{name}: explorer.js did not set up static explorer {i}"
            assert start["decoded"], f"{name}: explorer {i} shows no decodable first frame"
            assert start["max"] >= 1, f"{name}: explorer {i} slider {k} has a single frame"
            slider.focus()
            first_key = "ArrowRight" if start["value"] < start["max"] else "ArrowLeft"
            try:
                moved = _move(page, slider, first_key, i, k, start)
            except Exception:
                raise AssertionError(f"{name}: {first_key} on explorer {i} slider {k} did not change both the image and the readout") from None
            assert moved["value"] != start["value"] and moved["shown"] != start["shown"]
            if moved["value"] < moved["max"]:
                try:
                    ended = _move(page, slider, "End", i, k, moved)
                except Exception:
                    raise AssertionError(f"{name}: End on explorer {i} slider {k} did not change both the image and the readout") from None
                assert ended["value"] == ended["max"], f"{name}: End left explorer {i} slider {k} at {ended['value']}"
            slider.press("Home")  # back to the first frame for the next slider of a two-control grid
    return count


@pytest.mark.parametrize("scheme", ["file", "http"])
@pytest.mark.parametrize("name", _pages())
def test_page_offline(name, scheme, site, chromium, request):
    base = site.as_uri() + "/" if scheme == "file" else request.getfixturevalue("http_base")
    assert (site / name).exists(), f"the site has no {name}"
    visit = Visit(chromium, base)
    page = visit.page
    try:
        url = base + name + ("?q=gradient" if name == "search.html" else "")
        page.goto(url, wait_until="load")
        settled = page.evaluate(SETTLE_JS)
        assert not settled["broken"], f"{name}: images that do not decode: {settled['broken']}"
        math = page.evaluate(MATH_JS)
        assert not math["errors"], f"{name}: MathJax errors: {math['errors']}"
        assert not math["untypeset"], f"{name}: math left untypeset: {math['untypeset'][:5]}"
        assert not math["raw"], f"{name}: raw TeX delimiters in the prose: {math['raw'][:5]}"
        wide = page.evaluate(WIDE_JS)
        assert not wide, f"{name}: content wider than its column: {wide[:3]}"
        if name[:2].isdigit():
            assert math["maths"] == 0 or math["typeset"] > 0
            count = _check_explorers(page, name)
            assert count >= 1, f"{name}: no static explorer on a notebook page"
        if name == "search.html":
            page.wait_for_selector("#search-results li, ul.search li", timeout=15_000)
        page.wait_for_timeout(200)  # late console messages
        assert not visit.blocked, f"{name}: requests leaving the site: {visit.blocked[:5]}"
        assert not visit.failed, f"{name}: failed requests: {visit.failed[:5]}"
        assert not visit.errors, f"{name}: {visit.errors[:5]}"
    finally:
        visit.close()


def test_site_report(site):
    """The build's own report: within the size budget, nothing loaded from outside, an explorer on
    every notebook page, and no frame whose render failed. (Its times are printed, not asserted.)"""
    report = json.loads((ROOT / "site" / "_build" / "report.json").read_text())
    assert report["size_bytes"] <= 25 * 1024 * 1024, f"site is {report['size_bytes'] / 2**20:.1f} MB (budget 25 MB)"
    assert report["external_loads"] == []
    assert all(n >= 1 for n in report["explorers"].values()), f"notebook pages without a static explorer: {report['explorers']}"
    assert report["error_frames"] == 0, f"{report['error_frames']} static frames show a failed render"
