"""The course's explorers work in a real frontend: JupyterLab in headless Chromium.

For each course notebook that exists: open a stripped copy, prove the kernel channel, run all cells,
wait until every code cell has run and the kernel is idle, then check that no cell shows an error
output and no "Error displaying widget" appears, that the notebook has the explorers it is expected
to have, and for every explorer on the page move one slider and wait until both its image (a new
``blob:`` URL with a different screenshot) and its readout text change. A screenshot of each explorer
after the move goes to ``test-artifacts/browser/``.

To use two cores, the next selected notebook is opened and started (probe, run-all) in a second
panel of the same Lab tab while the current one is checked; every selector is scoped to the
notebook's own panel. Timings per notebook are appended to ``test-artifacts/browser/timings.txt``.

Run: ``pytest -m browser tests/browser``.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the fixtures skip the tier; collection must still work
    PlaywrightTimeout = TimeoutError

pytestmark = pytest.mark.browser

#: the explorers each course notebook must contain (CSS kind of ``camlib.widgets.Explorer``)
EXPECTED: dict[str, tuple[str, ...]] = {
    "00_what_a_cnn_learns.ipynb": ("feature-maps",),
    "01_linear_regression_gradients.ipynb": ("linear-regression",),
    "02_occlusion_sensitivity.ipynb": ("occlusion",),
    "03_class_activation_maps.ipynb": ("cam",),
    "04_grad_cam.ipynb": ("cam",),
    "05_grad_cam_plus_plus.ipynb": ("alpha",),
    "06_axioms.ipynb": ("ig",),
    "08_evaluating_explanations.ipynb": ("comparison",),
    "09_a_real_network.ipynb": ("real-network",),
}


def _notebooks() -> list[str]:
    """The course notebooks, plus every notebook of a development folder named by CAMLIB_BROWSER_NOTEBOOKS."""
    names = set(EXPECTED)
    folder = os.environ.get("CAMLIB_BROWSER_NOTEBOOKS")
    if folder:
        names |= {p.name for p in Path(folder).glob("*.ipynb")}
    return sorted(names)


OPEN_JS = """async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  app.shell.activateById(panel.id);
  return panel.id;
}"""

PROBE_JS = """async (path) => {
  const app = window.jupyterapp;
  const panel = [...app.shell.widgets('main')].find(w => w.sessionContext && w.context && w.context.path === path);
  if (!panel) { return 'no notebook panel'; }
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) { return 'no kernel'; }
  const future = kernel.requestExecute({code: '', silent: true, store_history: false}, false);
  const reply = await Promise.race([future.done, new Promise(res => setTimeout(() => res(null), 30000))]);
  return reply !== null && reply.content.status === 'ok' ? 'ok' : 'no execute_reply in 30 s';
}"""

RUN_ALL_JS = """async (id) => {
  const app = window.jupyterapp;
  app.shell.activateById(id);
  void app.commands.execute('notebook:run-all-cells');  // acts on the current (just activated) notebook
  await new Promise(res => setTimeout(res, 300));
  return true;
}"""

ACTIVATE_JS = """async (id) => { window.jupyterapp.shell.activateById(id); await new Promise(r => setTimeout(r, 300)); return true; }"""

CLOSE_ONE_JS = """async (id) => {
  const w = [...window.jupyterapp.shell.widgets('main')].find(w => w.id === id);
  if (!w) { return false; }
  try { await Promise.race([w.sessionContext.shutdown(), new Promise(r => setTimeout(r, 10000))]); } catch (e) {}
  w.dispose();
  return true;
}"""

STATE_JS = """(path) => {
  const app = window.jupyterapp;
  const panel = [...app.shell.widgets('main')].find(w => w.sessionContext && w.context && w.context.path === path);
  if (!panel) { return null; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  let pending = 0;
  cells.forEach((cell, i) => {
    const text = cell.model.sharedModel.getSource().trim();
    if (text.length > 0 && cell.model.executionCount === null) { pending += 1; }
    const tags = cell.model.getMetadata('tags') || [];
    const outputs = tags.includes('raises-exception') ? [] : cell.model.outputs.toJSON();
    for (const o of outputs) {
      if (o.output_type === 'error') { errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`); }
    }
  });
  return {status: kernel ? kernel.status : 'none', pending, errors, cells: cells.length};
}"""

EXPLORER_JS = """([id, i]) => {
  const ex = document.getElementById(id).querySelectorAll('.camlib-explorer')[i];
  const img = ex && ex.querySelector('img.camlib-image');
  const readout = ex && ex.querySelector('.camlib-readout');
  return {src: img ? img.getAttribute('src') : null,
          loaded: !!img && img.complete && img.naturalWidth > 0,
          text: readout ? readout.innerText : null,
          error: !!ex && !!ex.querySelector('.camlib-error')};
}"""


def _source_folder() -> Path:
    return Path(os.environ.get("CAMLIB_BROWSER_NOTEBOOKS", Path(__file__).resolve().parents[2] / "notebooks"))


class Runner:
    """Opens notebooks in the shared Lab tab, proves their kernel and starts run-all, one ahead."""

    def __init__(self, page) -> None:
        self.page = page
        self.started: dict[str, dict] = {}

    def start(self, name: str) -> dict:
        if name not in self.started:
            t0 = time.monotonic()
            pid = self.page.evaluate(OPEN_JS, name)
            t_open = time.monotonic()
            probe = self.page.evaluate(PROBE_JS, name)
            t_probe = time.monotonic()
            if probe == "ok":
                self.page.evaluate(RUN_ALL_JS, pid)
            self.started[name] = {"id": pid, "probe": probe, "t0": t0, "open": t_open, "probed": t_probe}
        return self.started[name]

    def close(self, name: str) -> None:
        info = self.started.pop(name, None)
        if info is not None:
            self.page.evaluate(CLOSE_ONE_JS, info["id"])


@pytest.fixture(scope="session")
def runner(lab_page):
    return Runner(lab_page)


def _selected_after(request, name: str) -> str | None:
    """The next notebook this session will test (after -k selection), if its file exists."""
    names = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_explorers_move_in_the_browser" and hasattr(item, "callspec")
    ]
    later = names[names.index(name) + 1 :] if name in names else []
    return next((n for n in later if (_source_folder() / n).exists()), None)


def _wait_for_run_all(page, path: str, timeout_s: float) -> dict:
    """Poll until the kernel is idle and every non-empty code cell has run (or an error stopped it)."""
    deadline = time.monotonic() + timeout_s
    stable = 0
    state: dict = {}
    while time.monotonic() < deadline:
        state = page.evaluate(STATE_JS, path) or {}
        done = state.get("status") == "idle" and (state.get("pending") == 0 or state.get("errors"))
        stable = stable + 1 if done else 0
        if stable >= 2:
            return state
        page.wait_for_timeout(500)
    raise AssertionError(f"run-all of {path} did not finish in {timeout_s} s: {state}")


def _slider_target(slider) -> str | None:
    """A valid new value for a slider, from its noUiSlider handle's aria attributes (None if it cannot move)."""
    handle = slider.locator(".noUi-handle").first
    lo = float(handle.get_attribute("aria-valuemin"))
    hi = float(handle.get_attribute("aria-valuemax"))
    now = float(handle.get_attribute("aria-valuenow"))
    if hi <= lo:
        return None
    if "camlib-slider-int" in (slider.get_attribute("class") or ""):
        return str(int(now) + 1 if now + 1 <= hi else int(now) - 1)
    target = round(lo + 0.7 * (hi - lo), 2)
    if abs(target - now) < 1e-9:
        target = round(lo + 0.3 * (hi - lo), 2)
    return repr(target)


def _set_slider(page, slider, value: str) -> None:
    """ipywidgets 8: the readout is contentEditable and Enter commits it (widget_int.ts handleTextChange)."""
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


@pytest.mark.parametrize("name", _notebooks())
def test_explorers_move_in_the_browser(name, request, artifacts):
    if not (_source_folder() / name).exists():
        pytest.skip(f"{_source_folder().name}/{name} does not exist yet")
    runner = request.getfixturevalue("runner")
    page = runner.page
    stem = Path(name).stem
    for old in artifacts.glob(f"{stem}-*.png"):
        old.unlink()
    try:
        _check_notebook(request, runner, page, name, stem, artifacts)
    finally:
        runner.close(name)


def _check_notebook(request, runner, page, name, stem, artifacts):
    info = runner.start(name)
    assert info["probe"] == "ok", f"{name}: the kernel's execute channel did not answer ({info['probe']})"
    following = _selected_after(request, name)
    if following is not None:
        runner.start(following)  # runs while this notebook is finishing and being checked
    pid = info["id"]
    page.evaluate(ACTIVATE_JS, pid)
    state = _wait_for_run_all(page, name, timeout_s=180)
    t_run = time.monotonic()
    assert not state["errors"], f"{name}: cells with an error output: {state['errors']}"
    assert state["pending"] == 0, f"{name}: {state['pending']} code cells did not run"

    scope = f'[id="{pid}"]'
    explorers = page.locator(f"{scope} .camlib-explorer")
    expected = EXPECTED.get(name, ())
    if expected:
        try:
            explorers.first.wait_for(state="attached", timeout=60_000)
        except PlaywrightTimeout:
            pass  # reported below, with the list of what is there
    count = explorers.count()
    classes = [explorers.nth(i).get_attribute("class") or "" for i in range(count)]
    kinds = [m.group(1) for c in classes for m in [re.search(r"camlib-explorer-([\w-]+)", c)] if m]
    missing = [k for k in expected if k not in kinds]
    assert not missing, f"{name} has no {missing} explorer (found {kinds or 'none'})"

    for i in range(count):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        page.wait_for_function(f"(a) => ({EXPLORER_JS})(a).loaded", arg=[pid, i])
        before = page.evaluate(EXPLORER_JS, [pid, i])
        assert not before["error"], f"{name} explorer {i} ({kinds[i]}): {before['text']}"
        shot_before = hashlib.sha1(explorer.locator("img.camlib-image").screenshot()).hexdigest()
        sliders = explorer.locator(".camlib-slider")
        target, moved = None, None
        for j in range(sliders.count()):
            target = _slider_target(sliders.nth(j))
            if target is not None:
                moved = sliders.nth(j)
                break
        assert moved is not None, f"{name} explorer {i} ({kinds[i]}) has no slider that can move"
        _set_slider(page, moved, target)
        try:
            page.wait_for_function(
                f"""([id, i, src, text]) => {{
                  const s = ({EXPLORER_JS})([id, i]);
                  return s.loaded && s.src !== src && s.text !== null && s.text !== text;
                }}""",
                arg=[pid, i, before["src"], before["text"]],
                timeout=45_000,
            )
        except PlaywrightTimeout:
            now = page.evaluate(EXPLORER_JS, [pid, i])
            label = moved.locator(".widget-label").first.inner_text()
            raise AssertionError(
                f"{name} explorer {i} ({kinds[i]}): 45 s after setting slider {label!r} to {target}, "
                f"image changed: {now['src'] != before['src']}, readout changed: {now['text'] != before['text']}"
            ) from None
        after = page.evaluate(EXPLORER_JS, [pid, i])
        assert not after["error"], f"{name} explorer {i} ({kinds[i]}): {after['text']}"
        assert after["text"] != before["text"]
        shot_after = explorer.locator("img.camlib-image").screenshot()
        assert hashlib.sha1(shot_after).hexdigest() != shot_before, "the image element looks the same after the move"
        explorer.screenshot(path=str(artifacts / f"{stem}-{i}-{kinds[i]}.png"))

    t_end = time.monotonic()
    with open(artifacts / "timings.txt", "a") as log:
        log.write(
            f"{time.strftime('%H:%M:%S')} {name}: open {info['open'] - info['t0']:.1f} s, "
            f"probe {info['probed'] - info['open']:.1f} s, run-all done {t_run - info['probed']:.1f} s after start, "
            f"sliders {t_end - t_run:.1f} s; {count} explorer(s)\n"
        )
    assert page.locator(f"{scope} >> text=Error displaying widget").count() == 0, f"{name}: 'Error displaying widget'"
    assert page.locator(f"{scope} .jp-OutputArea-output", has_text="Loading widget...").count() == 0, (
        f"{name}: a widget is still 'Loading widget...' (its comm messages were lost)"
    )
    final = page.evaluate(STATE_JS, name)
    assert not final["errors"], f"{name}: cells with an error output: {final['errors']}"
