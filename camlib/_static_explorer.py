"""The static version of an explorer: precomputed frames that a plain HTML slider swaps, no kernel.

An :class:`camlib.widgets.Explorer` is an ipywidgets panel whose sliders call a pure render function
``render(**fixed, **controls) -> (png_bytes, readout_text)``. In a page without a kernel (the course
website) those sliders cannot call anything, so the explorer is replaced by a *strip of frames*: the same
render function evaluated on a grid of one control (or of two, when the product stays small) with every
other control held at its current value. The HTML holds an ``<input type="range">`` per gridded control,
an ``<img>``, the readout, the list of the controls held fixed, and the frames as JSON; the site's
``explorer.js`` swaps the image and the readout when a slider moves (mouse or keyboard).

Frames are rendered only when asked: :func:`enabled` is true when the environment variable
``CAMLIB_STATIC_EXPLORERS`` is set to ``1`` (the site build and the test run set it for the kernels
whose outputs become the website), so a learner running the notebook never pays for them.

Grid rules (:func:`control_grid`): an integer slider gives every value from ``min`` to ``max`` when
there are at most ``limit`` of them, otherwise ``limit`` values evenly spread over the range; a float
slider gives at most ``limit`` values on its own step grid, from ``min`` to ``max``; a choice gives every
option. The control's current value is always in the grid, so the strip starts on the frame that the
live explorer showed. Frames are PNGs reduced to 64 colours (median cut), about 6-9 kB each.

Each frame is ``render(**fixed, **current values, **grid point)``: the explorer's ``on_change`` (which keeps
controls consistent during a live move, e.g. the stride of occlusion never above the patch) is not
replayed, so an explorer declares grids that are valid with its other controls at their current values.
A render that raises still gives a frame, whose readout says so (``data-errors`` counts them).
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "ENV_VAR",
    "MAX_FRAMES",
    "enabled",
    "control_grid",
    "value_label",
    "reduce_png",
    "render_frames",
    "static_html",
]

#: environment variable that turns on the static version of every explorer displayed in a kernel
ENV_VAR = "CAMLIB_STATIC_EXPLORERS"
#: the most frames one static explorer may hold (each frame is a PNG of about 6-9 kB)
MAX_FRAMES = 64
#: the most values taken from one control when it is the only gridded control
DEFAULT_LIMIT = 41


def enabled() -> bool:
    """True when ``CAMLIB_STATIC_EXPLORERS`` asks for static explorers (``1``, ``true``, ``yes``)."""
    return os.environ.get(ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def _options(control: Any) -> list[tuple[str, Any]]:
    """``(label, value)`` pairs of a selection widget, in the order it shows them."""
    labels = getattr(control, "_options_labels", None)
    values = getattr(control, "_options_values", None)
    if labels is not None and values is not None:
        return list(zip((str(x) for x in labels), values))
    pairs = []
    for item in control.options:
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append((str(item[0]), item[1]))
        else:
            pairs.append((str(item), item))
    return pairs


def _spread(n: int, limit: int, keep: int) -> list[int]:
    """At most ``limit`` indices out of ``range(n)``, evenly spread, with 0, ``n - 1`` and ``keep``."""
    if n <= limit:
        return list(range(n))
    picks = {round(i * (n - 1) / (limit - 1)) for i in range(limit)}
    picks.add(min(max(keep, 0), n - 1))
    return sorted(picks)


def _step_decimals(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def control_grid(control: Any, limit: int = DEFAULT_LIMIT) -> list[tuple[str, Any]]:
    """The ``(label, value)`` grid of one control (see the module docstring for the rules)."""
    kind = type(control).__name__
    if hasattr(control, "options"):
        return _options(control)
    if kind in {"Checkbox", "ToggleButton"}:
        return [("off", False), ("on", True)]
    if kind == "IntSlider" or kind == "BoundedIntText":
        lo, hi, step = int(control.min), int(control.max), max(1, int(getattr(control, "step", 1) or 1))
        values = list(range(lo, hi + 1, step))
        keep = values.index(control.value) if control.value in values else 0
        return [(str(values[i]), values[i]) for i in _spread(len(values), limit, keep)]
    if kind in {"FloatSlider", "BoundedFloatText"}:
        lo, hi, step = float(control.min), float(control.max), float(control.step or (control.max - control.min) / 40)
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        decimals = _step_decimals(step)
        stride = max(1, math.ceil((n - 1) / max(1, limit - 1)))
        indices = sorted(set(range(0, n, stride)) | {n - 1})
        values = [round(lo + i * step, decimals) for i in indices]
        current = round(float(control.value), decimals)
        if current not in values:
            values = sorted({*values, current})
        return [(value_label(control, v), v) for v in values]
    if kind == "FloatLogSlider":
        base = float(control.base)
        lo, hi, step = float(control.min), float(control.max), float(control.step)
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        stride = max(1, math.ceil((n - 1) / max(1, limit - 1)))
        exps = [lo + i * step for i in sorted(set(range(0, n, stride)) | {n - 1})]
        values = sorted({*(base**e for e in exps), float(control.value)})
        return [(value_label(control, v), v) for v in values]
    raise TypeError(f"no static grid for a {kind} control: give its values explicitly")


def value_label(control: Any, value: Any) -> str:
    """How the control shows ``value``: an option's label, or a slider's number in its own format."""
    if hasattr(control, "options"):
        for label, v in _options(control):
            if v == value:
                return label
        return str(value)
    fmt = getattr(control, "readout_format", None)
    if isinstance(value, float) and fmt:
        try:
            return format(value, fmt)
        except ValueError:
            pass
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def reduce_png(png: bytes, colours: int = 64) -> bytes:
    """``png`` re-encoded with at most ``colours`` colours (median cut): a fifth of the bytes or less."""
    from PIL import Image  # noqa: PLC0415  (Pillow comes with matplotlib)

    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGB").quantize(colors=colours)
        out = io.BytesIO()
        reduced.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_frames(
    render: Callable[..., tuple[bytes, str]],
    base: Mapping[str, Any],
    axes: Sequence[tuple[str, Sequence[Any]]],
) -> list[dict[str, Any]]:
    """``render(**base)`` with every combination of the axes' values, in row-major order.

    A frame is ``{"png": base64 or None, "text": readout}``; a render that raises gives a frame with
    ``"error": True`` and the exception's last line as its text, as the live explorer shows it. Torch
    runs on one thread while the frames render, and on as many as before afterwards.
    """
    import base64  # noqa: PLC0415

    import torch  # noqa: PLC0415

    frames: list[dict[str, Any]] = []

    def walk(level: int, params: dict[str, Any]) -> None:
        if level == len(axes):
            try:
                png, text = render(**params)
            except Exception as exc:  # shown in the frame, as the live explorer shows it
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                frames.append({"png": None, "text": f"render failed: {last}", "error": True})
                return
            frames.append({"png": base64.b64encode(reduce_png(png)).decode("ascii"), "text": text})
            return
        name, values = axes[level]
        for value in values:
            walk(level + 1, {**params, name: value})

    # one thread: the frames are small renders, and a second OpenMP thread spinning against the notebook's
    # other work on two cores costs more CPU than it saves (measured: 51 s against 19 s for the course's frames)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        walk(0, dict(base))
    finally:
        torch.set_num_threads(threads)
    return frames


def _json_for_script(data: Any) -> str:
    # inside <script type="application/json"> only "</" could end the element early
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def static_html(
    kind: str,
    render: Callable[..., tuple[bytes, str]],
    fixed: Mapping[str, Any],
    controls: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any] | None],
) -> str:
    """The HTML of a static explorer of ``kind`` over ``grid`` (control name -> values, or ``None`` for
    :func:`control_grid`'s values); every other control stays at its current value.

    Raises ``ValueError`` for an unknown control, an empty grid, or more than :data:`MAX_FRAMES` frames.
    """
    if not grid:
        raise ValueError("a static explorer needs at least one control to move")
    unknown = [name for name in grid if name not in controls]
    if unknown:
        raise ValueError(f"no control named {unknown} in this explorer; controls: {list(controls)}")
    # explicit values and choices keep all their values; sliders left to control_grid share the rest
    pairs_of: dict[str, list[tuple[str, Any]]] = {}
    automatic = []
    for name, values in grid.items():
        control = controls[name]
        if values is not None:
            pairs_of[name] = [(value_label(control, v), v) for v in values]
        elif hasattr(control, "options") or type(control).__name__ in {"Checkbox", "ToggleButton"}:
            pairs_of[name] = control_grid(control)
        else:
            automatic.append(name)
    if automatic:
        room = MAX_FRAMES // max(1, math.prod(len(p) for p in pairs_of.values()))
        per_axis = max(2, min(DEFAULT_LIMIT, int(room ** (1 / len(automatic)) + 1e-9)))
        for name in automatic:
            pairs_of[name] = control_grid(controls[name], per_axis)
    axes: list[dict[str, Any]] = []
    for name in grid:
        control, pairs = controls[name], pairs_of[name]
        if not pairs:
            raise ValueError(f"the grid of control {name!r} is empty")
        labels = [p[0] for p in pairs]
        vals = [p[1] for p in pairs]
        start = vals.index(control.value) if control.value in vals else 0
        axes.append({"name": name, "label": str(control.description or name), "labels": labels, "values": vals, "start": start})
    total = math.prod(len(a["values"]) for a in axes)
    if total > MAX_FRAMES:
        raise ValueError(f"{total} frames exceed the limit of {MAX_FRAMES}: grid fewer values")
    current = {name: control.value for name, control in controls.items()}
    t0 = time.perf_counter()
    frames = render_frames(render, {**fixed, **current}, [(a["name"], a["values"]) for a in axes])
    seconds = time.perf_counter() - t0
    errors = sum(1 for f in frames if f.get("error"))
    index = 0
    for a in axes:
        index = index * len(a["values"]) + a["start"]
    first = frames[index]

    held = [
        f"{html.escape(str(c.description or name))} = {html.escape(value_label(c, c.value))}"
        for name, c in controls.items()
        if name not in grid
    ]
    sliders = []
    for k, a in enumerate(axes):
        sliders.append(
            '<label class="camlib-static-control">'
            f'<span class="camlib-static-label">{html.escape(a["label"])}</span>'
            f'<input type="range" class="camlib-static-slider" data-axis="{k}" min="0" max="{len(a["values"]) - 1}" '
            f'step="1" value="{a["start"]}" aria-label="{html.escape(a["label"])}" '
            f'aria-valuetext="{html.escape(a["labels"][a["start"]])}">'
            f'<output class="camlib-static-value">{html.escape(a["labels"][a["start"]])}</output></label>'
        )
    note = (
        "Precomputed frames: move the slider"
        + ("s" if len(axes) > 1 else "")
        + (f"; held fixed here: {', '.join(held)}" if held else "")
        + ". Run the notebook to move every control."
    )
    data = {"axes": [{"label": a["label"], "labels": a["labels"]} for a in axes], "frames": frames}
    png = first["png"]
    img_src = f"data:image/png;base64,{png}" if png else ""
    readout_cls = "camlib-static-readout camlib-error" if first.get("error") else "camlib-static-readout"
    return (
        f'<div class="camlib-static-explorer camlib-static-explorer-{html.escape(kind)}" '
        f'data-frames="{len(frames)}" data-errors="{errors}" data-render-seconds="{seconds:.2f}">'
        f'<div class="camlib-static-controls">{"".join(sliders)}</div>'
        f'<img class="camlib-static-image" alt="{html.escape(kind)} explorer: frame for the slider position" src="{img_src}">'
        f'<pre class="{readout_cls}">{html.escape(first["text"])}</pre>'
        f'<p class="camlib-static-note">{note}</p>'
        f'<script type="application/json" class="camlib-static-frames">{_json_for_script(data)}</script>'
        "</div>"
    )
