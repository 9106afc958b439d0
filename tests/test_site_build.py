"""Fast checks of the course website's pieces (issue 18); the full build in a browser is
tests/browser/test_site.py.

* static explorers (camlib._static_explorer and ``Explorer.static_html``): the grids, the frames, the
  HTML and its JSON, what the display adds only when ``CAMLIB_STATIC_EXPLORERS=1``;
* the build script (site/build.py): freshness of executed notebooks, the staging of explorer outputs,
  the landing page's notebook list, the scan for anything loaded from outside the site;
* what the site needs from the notebooks: display math that CommonMark cannot break apart;
* the site's JavaScript and the HTML agree on class names; the workflow publishes the built folder.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import ipywidgets as widgets
import nbformat
import pytest
from PIL import Image

from camlib import _static_explorer as static

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("_site_build_under_test", ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _builder()


# ----------------------------------------------------------------------------- grids


def test_int_slider_grid_is_every_value_when_few_and_a_spread_with_the_current_value_when_many():
    few = widgets.IntSlider(value=3, min=0, max=9)
    assert [v for _, v in static.control_grid(few)] == list(range(10))
    many = widgets.IntSlider(value=37, min=0, max=99)
    values = [v for _, v in static.control_grid(many, limit=9)]
    assert values[0] == 0 and values[-1] == 99 and 37 in values and len(values) <= 10
    assert values == sorted(set(values))


def test_float_slider_grid_stays_on_the_step_grid_and_keeps_the_current_value():
    slider = widgets.FloatSlider(value=0.05, min=-0.2, max=1.0, step=0.005, readout_format=".3f")
    pairs = static.control_grid(slider, limit=25)
    values = [v for _, v in pairs]
    assert values[0] == -0.2 and values[-1] == 1.0 and 0.05 in values and len(values) <= 26
    assert all(abs(round((v + 0.2) / 0.005) * 0.005 - (v + 0.2)) < 1e-9 for v in values)
    assert dict((v, label) for label, v in pairs)[0.05] == "0.050"  # the slider's own readout format


def test_choice_grid_is_every_option_with_its_label():
    choice = widgets.Dropdown(options=[("predicted", -1), ("circle", 0), ("square", 1)], value=-1)
    assert static.control_grid(choice) == [("predicted", -1), ("circle", 0), ("square", 1)]


# ----------------------------------------------------------------------------- frames and HTML


def _tiny_render(a: int = 0, b: str = "x", c: float = 1.0) -> tuple[bytes, str]:
    """A render function with a different picture and readout for every (a, b)."""
    image = Image.new("RGB", (8, 4), (20 * a, 120 if b == "y" else 0, 7))
    out = io.BytesIO()
    image.save(out, format="PNG")
    if a == 3 and b == "y":
        raise ValueError("a = 3 with b = y is not allowed")
    return out.getvalue(), f"a={a} b={b} c={c} </script><b>"


def _controls():
    return {
        "a": widgets.IntSlider(value=1, min=0, max=3, description="alpha"),
        "b": widgets.Dropdown(options=["x", "y"], value="x", description="beta"),
        "c": widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.5, description="gamma"),
    }


class _Static(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.frames_json = ""
        self._in_frames = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_frames = tag == "script" and "camlib-static-frames" in attrs.get("class", "")

    def handle_endtag(self, tag):
        self._in_frames = False

    def handle_data(self, data):
        if self._in_frames:
            self.frames_json += data


def _parse(text: str) -> _Static:
    parser = _Static()
    parser.feed(text)
    return parser


def test_static_html_holds_every_frame_of_the_grid_and_starts_on_the_current_values():
    import torch

    threads = torch.get_num_threads()
    text = static.static_html("tiny", _tiny_render, {}, _controls(), {"a": None, "b": None})
    assert torch.get_num_threads() == threads  # one thread while rendering, restored afterwards
    page = _parse(text)
    data = json.loads(page.frames_json)
    assert [axis["labels"] for axis in data["axes"]] == [["0", "1", "2", "3"], ["x", "y"]]
    assert len(data["frames"]) == 8
    sliders = [attrs for tag, attrs in page.tags if tag == "input"]
    assert [(s["min"], s["max"], s["value"]) for s in sliders] == [("0", "3", "1"), ("0", "1", "0")]
    # row-major: frame (a, b) is frames[a * 2 + b]; the failing combination is an error frame
    for a in range(4):
        for j, b in enumerate("xy"):
            frame = data["frames"][a * 2 + j]
            if (a, b) == (3, "y"):
                assert frame["png"] is None and frame["error"] and "a = 3 with b = y" in frame["text"]
                continue
            assert frame["text"].startswith(f"a={a} b={b} c=1.0")
            pixel = Image.open(io.BytesIO(base64.b64decode(frame["png"]))).convert("RGB").getpixel((0, 0))
            assert pixel == (20 * a, 120 if b == "y" else 0, 7)  # 64 colours keep these exact
    assert 'data-frames="8" data-errors="1"' in text
    first = [attrs for tag, attrs in page.tags if tag == "img"][0]["src"]
    assert first == "data:image/png;base64," + data["frames"][2]["png"]  # a = 1, b = x
    assert "held fixed here: gamma = 1.00" in text
    assert "</script><b>" not in page.frames_json and "&lt;/script&gt;&lt;b&gt;" in text  # escaped twice over


def test_static_html_refuses_unknown_controls_empty_grids_and_too_many_frames():
    with pytest.raises(ValueError, match="no control named"):
        static.static_html("tiny", _tiny_render, {}, _controls(), {"z": None})
    with pytest.raises(ValueError, match="at least one control"):
        static.static_html("tiny", _tiny_render, {}, _controls(), {})
    with pytest.raises(ValueError, match="exceed the limit"):
        static.static_html("tiny", _tiny_render, {}, _controls(), {"a": list(range(40)), "b": None})


def test_an_explorer_adds_its_static_version_to_the_display_only_when_asked(monkeypatch):
    from camlib.widgets import alpha_explorer

    explorer = alpha_explorer(pixels=49)
    explorer.static = {"g": [0.05, 0.5]}  # two frames keep the test fast
    monkeypatch.delenv(static.ENV_VAR, raising=False)
    plain = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in plain and "text/html" not in plain
    monkeypatch.setenv(static.ENV_VAR, "1")
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    data = json.loads(_parse(bundle["text/html"]).frames_json)
    assert len(data["frames"]) == 2 and "camlib-static-explorer-alpha" in bundle["text/html"]
    assert "g = 0.05000" in data["frames"][0]["text"] and "g = 0.50000" in data["frames"][1]["text"]
    assert explorer.static_html({"s": [0.0, 10.0]}).count('class="camlib-static-slider"') == 1


# ----------------------------------------------------------------------------- the build script


def test_the_build_and_camlib_name_the_same_environment_variable():
    assert build.STATIC_ENV == static.ENV_VAR


def _notebook_with(outputs: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 42 · A test notebook\n\ntext"), nbformat.v4.new_code_cell("x")]
    nb.cells[1].outputs = outputs
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_staging_keeps_an_explorers_static_html_and_drops_its_live_widget_view():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    output = nbformat.v4.new_output(
        "display_data",
        data={build.WIDGET_VIEW: view, "text/html": '<div class="camlib-static-explorer">', "text/plain": "Explorer(...)"},
    )
    nb = build.prepare_notebook(_notebook_with([output]), "42_test.ipynb")
    assert nb.cells[1].outputs[0]["data"] == {"text/html": '<div class="camlib-static-explorer">'}
    assert "widgets" not in nb.metadata  # no widget state: MyST-NB would fetch the html-manager from a CDN
    assert build.notebook_title(nb, "fallback") == "42 · A test notebook"


def test_staging_stops_on_a_widget_without_a_static_version():
    output = nbformat.v4.new_output("display_data", data={build.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "IntSlider(value=3)"})
    with pytest.raises(build.BuildError, match="without a static version.*IntSlider"):
        build.prepare_notebook(_notebook_with([output]), "42_test.ipynb")


def test_freshness_needs_the_same_master_the_same_camlib_and_static_explorers(tmp_path):
    master = tmp_path / "00_x.ipynb"
    nbformat.write(_notebook_with([]), master)
    executed = tmp_path / "executed.ipynb"
    nb = _notebook_with([])
    nb.metadata[build.META_KEY] = build.stamp(master, "code-1", "test", 1.0)
    nbformat.write(nb, executed)
    assert build.is_fresh(executed, master, "code-1")
    assert not build.is_fresh(executed, master, "code-2")
    assert not build.is_fresh(tmp_path / "missing.ipynb", master, "code-1")
    master.write_text(master.read_text().replace("text", "changed"))
    assert not build.is_fresh(executed, master, "code-1")
    nb.metadata[build.META_KEY] = {**build.stamp(master, "code-1", "test", 1.0), "static_explorers": False}
    nbformat.write(nb, executed)
    assert not build.is_fresh(executed, master, "code-1")


def test_code_fingerprint_follows_every_file_of_the_package(tmp_path):
    package = tmp_path / "pkg"
    (package / "weights").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "weights" / "w.json").write_text("{}")
    first = build.code_fingerprint(package)
    (package / "weights" / "w.json").write_text('{"a": 1}')
    assert build.code_fingerprint(package) != first
    (package / "weights" / "w.json").write_text("{}")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert build.code_fingerprint(package) == first


def test_the_landing_page_lists_every_notebook_that_exists_with_the_readmes_summary():
    masters = build.master_notebooks()
    assert masters and all(re.fullmatch(r"\d\d_\w+\.ipynb", p.name) for p in masters)
    summaries = build.readme_summaries()
    assert summaries.get("04_grad_cam", "").startswith("Grad-CAM derived from CAM")
    entries = [{"stem": p.stem, "file": p.name, "title": p.stem, "summary": summaries.get(p.stem, "")} for p in masters]
    text = build.notebook_list(entries)
    assert text.count("](") == len(masters) and "```{toctree}" in text
    assert all(f"\n{p.stem}\n" in text + "\n" for p in masters)
    assert build.LIST_MARKER in (ROOT / "site" / "index.md").read_text()


def test_the_scan_finds_what_a_page_would_load_from_outside_and_ignores_links(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text(
        '<a href="https://example.org/">a link is not a request</a>'
        '<script src="_static/local.js"></script><img src="_images/a.png">'
        '<script src="https://cdn.example.org/lib.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/font.css">'
        '<img srcset="a.png 1x, https://img.example.org/b.png 2x">'
    )
    (tmp_path / "_static" / "style.css").write_text('a { background: url("https://img.example.org/c.png"); } b { background: url(ok.png); }')
    found = build.external_loads(tmp_path)
    assert len(found) == 4, found
    assert all("example.org" in f for f in found)


# ----------------------------------------------------------------------------- the notebooks' math

#: CommonMark blocks that may interrupt a paragraph: a bullet item, a quote, an ATX heading, an ordered
#: item numbered 1, a setext underline (only = or only -)
BLOCK_START = re.compile(r"^ {0,3}(?:[-+*][ \t]|>|#{1,6}(?:[ \t]|$)|1[.)](?:[ \t]|$)|=+[ \t]*$|-+[ \t]*$)")


@pytest.mark.parametrize("path", build.master_notebooks(), ids=lambda p: p.stem)
def test_display_math_has_no_line_that_commonmark_reads_as_a_new_block(path):
    """A line inside ``$$...$$`` that starts like a list item, quote or heading (``+ x``, ``- y``, ``1.``)
    ends the paragraph in CommonMark, and the page shows raw ``$$``: start such lines with the operand."""
    nb = nbformat.read(path, as_version=4)
    bad = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for match in re.finditer(r"\$\$(.*?)\$\$", cell.source, flags=re.S):
            bad += [(number, line.strip()[:50]) for line in match.group(1).split("\n")[1:] if BLOCK_START.match(line)]
    assert not bad, f"{path.name}: display-math lines that CommonMark reads as a new block (cell, line): {bad}"


# ----------------------------------------------------------------------------- JavaScript, workflow


def test_explorer_js_uses_the_class_names_that_camlib_writes():
    script = (ROOT / "site" / "static" / "explorer.js").read_text()
    text = static.static_html("tiny", _tiny_render, {}, _controls(), {"a": [0, 1]})
    for name in re.findall(r'"[.\w-]*?(camlib-static-[\w-]+)"', script):
        assert name in text or name in {"camlib-static-ready", "camlib-static-stale"}, name
    assert "camlib-static-explorer" in script and "camlib-static-frames" in script


def test_the_workflow_publishes_the_folder_that_the_build_writes():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    steps = flow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "python3 course.py site" for step in steps)
    upload = next(step for step in steps if "upload-pages-artifact" in step.get("uses", ""))
    assert (ROOT / upload["with"]["path"]).resolve() == build.HTML.resolve()
    assert any("deploy-pages" in step.get("uses", "") for step in flow["jobs"]["deploy"]["steps"])


def test_the_hash_of_a_file_is_what_the_stamp_records(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_bytes(b"{}")
    assert build.stamp(path, "c", "test", 0.0)["source_sha256"] == hashlib.sha256(b"{}").hexdigest()
