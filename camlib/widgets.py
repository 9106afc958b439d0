"""One ipywidgets explorer per notebook of the course.

Every explorer has two halves:

* a **pure render function** ``render_<name>(...) -> (png_bytes, readout_text)``: it computes with
  camlib, draws a ``matplotlib.figure.Figure`` on an Agg canvas, and returns the PNG bytes and a plain
  text readout. No widget, kernel or display is involved, so it is tested on its own;
* a **thin wiring** ``<name>_explorer(...) -> Explorer``: ipywidgets controls whose ``value`` changes
  call the render function with the current control values and write the result into one
  ``widgets.Image`` (``value`` = PNG bytes) and one ``widgets.HTML`` readout. Nothing is displayed from
  a callback and no pyplot figure is ever created, so a slider move replaces one image in place: no
  flicker, no duplicated plots.

The returned :class:`Explorer` is a ``VBox`` with ``.controls`` (name -> widget), ``.image``,
``.readout``, ``.params()`` (the current keyword arguments of the render function) and
``.render_count``. CSS classes for the browser tests: every slider ``camlib-slider`` and
``camlib-slider-<name>``, the image ``camlib-image``, the readout ``camlib-readout``, the container
``camlib-explorer camlib-explorer-<kind>``; a render that raises shows its message in the readout with
the class ``camlib-error`` instead of failing silently.

Formulas behind the readouts (notation of docs/math.md §1: logit ``y``, baseline ``x'``):

* linear model ``y = w0 + w1 x1 + w2 x2``: gradient ``w_i``, gradient x input ``w_i x_i``, occlusion
  change ``y(x) - y(x with x_i <- b_i) = w_i (x_i - b_i)``, Integrated Gradients ``w_i (x_i - b_i)``;
* Grad-CAM++ on an exponential head: ``alpha = 1 / (2 + s_k g)`` with ``s_k = sum_ij A^k_ij``;
* Integrated Gradients completeness error ``delta = sum_i IG_i - (F(x) - F(x'))``;
* comparison: ``camlib.metrics.pointing_game`` (ties="first": the raster-order argmax of the map is
  in the mask) and ``camlib.metrics.energy_inside`` (``sum_{mask} relu(map) / sum relu(map)``), on
  ``camlib.metrics.to_map`` of the method's result.
"""

from __future__ import annotations

import html
import math
import numbers
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    import ipywidgets as widgets
except ImportError as error:  # the library itself needs no Jupyter; the explorers need ipywidgets
    raise ImportError('camlib.widgets needs ipywidgets: pip install "explaining-cnns[course]"') from error
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from torch import Tensor, nn

import camlib

from . import _static_explorer
from ._hooks import predict, predict_with_layer
from ._targets import check_input, check_model, check_score
from . import weight_rules
from .cam_family import LOGIT_ONLY
from .plotting import HEAT_CMAP, as_map, draw_map, figure_to_png, overlay, to_display

__all__ = [
    "Explorer",
    "readout_html",
    "render_feature_maps",
    "feature_maps_explorer",
    "render_linear_regression",
    "linear_regression_explorer",
    "linear_attributions",
    "occlusion_windows",
    "render_occlusion",
    "occlusion_explorer",
    "render_cam",
    "cam_explorer",
    "render_alpha",
    "alpha_explorer",
    "render_ig",
    "ig_explorer",
    "BEYOND_METHODS",
    "render_beyond",
    "beyond_explorer",
    "render_comparison",
    "comparison_explorer",
    "render_real_network",
    "real_network_explorer",
]

RenderResult = tuple[bytes, str]

#: the CAM-family methods the cam explorer can call, all as ``method(model, x, layer, target=, score=)``
CAM_METHODS = ("cam", "grad_cam", "grad_cam_plus", "grad_cam_pp", "xgrad_cam", "counterfactual")
PIXEL_METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "occlusion")
BASELINES = ("grey", "black", "blur")


# ----------------------------------------------------------------------------- wiring


def readout_html(text: str, error: bool = False) -> str:
    """The HTML that an explorer writes into its readout for ``text`` (escaped, pre-formatted)."""
    cls = "camlib-readout-text camlib-error" if error else "camlib-readout-text"
    return f'<pre class="{cls}" style="margin:0;font-size:12px;line-height:1.35">{html.escape(text)}</pre>'


class Explorer(widgets.VBox):
    """A control panel, one image and one readout, kept in sync with a pure render function.

    ``render(**fixed, **params())`` is called once at construction and again on every ``value``
    change of a control; its PNG bytes go to ``image.value`` and its text to ``readout.value``
    (through :func:`readout_html`).

    Without a kernel (the course website) the explorer is shown by :meth:`static_html`: frames of the
    same render function over a grid of the controls named in ``static`` (name -> values, or ``None``
    for an automatic grid; default: the first slider), the other controls held at their current values.
    When ``CAMLIB_STATIC_EXPLORERS=1`` the display adds that HTML as ``text/html`` beside the widget view.
    """

    def __init__(
        self,
        kind: str,
        render: Callable[..., RenderResult],
        controls: Mapping[str, widgets.ValueWidget],
        fixed: Mapping[str, Any] | None = None,
        on_change: Callable[[Explorer, str], None] | None = None,
        width: str = "760px",
        static: Mapping[str, Sequence[Any] | None] | None = None,
    ) -> None:
        self.kind = kind
        sliders = [n for n, c in controls.items() if isinstance(c, (widgets.IntSlider, widgets.FloatSlider))]
        self.static = dict(static) if static is not None else ({(sliders or list(controls))[0]: None} if controls else {})
        self.render_fn = render
        self.fixed = dict(fixed or {})
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        self.on_change = on_change
        self.render_count = 0
        # natural size (no rescaling blur); every PNG of one explorer has the same size, so no jumps
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.image.add_class("camlib-image")
        self.image.add_class(f"camlib-image-{kind}")
        self.readout = widgets.HTML()
        self.readout.add_class("camlib-readout")
        self.readout.add_class(f"camlib-readout-{kind}")
        for name, control in self.controls.items():
            if isinstance(control, (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider)):
                control.add_class("camlib-slider")
                control.add_class(f"camlib-slider-{name.replace('_', '-')}")
                control.add_class("camlib-slider-int" if isinstance(control, widgets.IntSlider) else "camlib-slider-float")
            else:
                control.add_class("camlib-control")
                control.add_class(f"camlib-control-{name.replace('_', '-')}")
            control.observe(self._changed, names="value")
        rows = [widgets.HBox(list(self.controls.values())[i : i + 3]) for i in range(0, len(self.controls), 3)]
        super().__init__(children=[*rows, self.image, self.readout], layout=widgets.Layout(width=width))
        self.add_class("camlib-explorer")
        self.add_class(f"camlib-explorer-{kind}")
        if self.on_change is not None:
            self.on_change(self, "")
        self.update()

    def set_quietly(self, name: str, **attributes: Any) -> None:
        """Set attributes of control ``name`` (``value``, ``max``, ...) without triggering a render:
        for an ``on_change`` that keeps the controls consistent before the one render of a move."""
        control = self.controls[name]
        control.unobserve(self._changed, names="value")
        try:
            for attribute, value in attributes.items():
                setattr(control, attribute, value)
        finally:
            control.observe(self._changed, names="value")

    def static_html(self, grid: Mapping[str, Sequence[Any] | None] | None = None) -> str:
        """This explorer as HTML that needs no kernel: precomputed frames over ``grid`` (default:
        ``static``), one ``<input type="range">`` per gridded control (see camlib._static_explorer)."""
        return _static_explorer.static_html(self.kind, self.render_fn, self.fixed, self.controls, grid or self.static)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None and _static_explorer.enabled():  # only the site build and the test run pay
            data["text/html"] = self.static_html()
        return data

    def params(self) -> dict[str, Any]:
        """The keyword arguments the render function gets from the controls right now."""
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, change: dict[str, Any]) -> None:
        if self.on_change is not None:
            name = next((n for n, c in self.controls.items() if c is change["owner"]), "")
            self.on_change(self, name)
        self.update()

    def update(self) -> None:
        """Render with the current values and write the PNG and the readout into the widgets."""
        try:
            png, text = self.render_fn(**self.fixed, **self.params())
        except Exception as exc:  # shown to the learner instead of vanishing into the kernel log
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.readout.value = readout_html(f"render failed: {last}", error=True)
            return
        self.render_count += 1
        self.image.value = png
        self.readout.value = readout_html(text)


def _slider(cls: type, name: str, value: float, lo: float, hi: float, step: float, **kw: Any) -> widgets.ValueWidget:
    return cls(
        value=value,
        min=lo,
        max=hi,
        step=step,
        description=name,
        continuous_update=kw.pop("continuous_update", False),
        style={"description_width": "initial"},
        layout=widgets.Layout(width="240px"),
        **kw,
    )


def _choice(name: str, options: Sequence[Any], value: Any) -> widgets.Dropdown:
    return widgets.Dropdown(
        options=list(options),
        value=value,
        description=name,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="240px"),
    )


# ----------------------------------------------------------------------------- helpers


def _images(images: Any, what: str = "images") -> Tensor:
    """An (N, C, H, W) batch, or one (C, H, W) image as a batch of one, checked as camlib checks ``x``."""
    if isinstance(images, Tensor) and images.ndim == 3:
        images = images[None]
    return check_input(images, what=what)


def _pick(images: Tensor, index: int, model: nn.Module) -> Tensor:
    """Image ``index`` as a batch of one, on the model's device and dtype."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise TypeError(f"index must be an int (the image's position in the batch); got {index!r}.")
    if not 0 <= int(index) < images.shape[0]:
        raise ValueError(f"index {index} is out of range: there are {images.shape[0]} images (0..{images.shape[0] - 1})")
    return check_input(images[int(index) : int(index) + 1], model)


def _class_names(model: nn.Module, n_out: int, class_names: Sequence[str] | None = None) -> list[str]:
    """``class_names``, else the model's ``output_names``, else ``class 0``, ``class 1``, ..."""
    if class_names is None:
        class_names = getattr(model, "output_names", None)
    if class_names is not None and len(class_names) == n_out:
        return [str(c) for c in class_names]
    return [f"class {i}" for i in range(n_out)]


def _target_arg(target: int | None) -> int | None:
    """``None`` and a negative int (the explorers' "predicted class" entry) mean argmax; anything else
    goes to camlib's target resolution unchanged, so a float is refused there, never truncated."""
    if target is None:
        return None
    if isinstance(target, numbers.Integral) and not isinstance(target, (bool, np.bool_)) and int(target) < 0:
        return None
    return target


def _name(names: Sequence[str], c: int) -> str:
    return names[c] if 0 <= c < len(names) else f"class {c}"


def _figure(ncols: int, width: float = 9.5, height: float = 3.4) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width, height))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _png(fig: Figure, right: float = 0.97) -> bytes:
    # fixed margins instead of tight_layout: the layout pass costs more than the drawing itself,
    # and every PNG of one explorer keeps the same size, so the page never jumps
    fig.subplots_adjust(left=0.07, right=right, bottom=0.14, top=0.88, wspace=0.35)
    return figure_to_png(fig, dpi=80)


def _baseline(x: Tensor, kind: str) -> Tensor:
    if kind == "grey":
        return torch.full_like(x, 0.5)
    if kind == "black":
        return torch.zeros_like(x)
    if kind == "blur":
        return camlib.metrics.blur(x)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


# ----------------------------------------------------------------------------- nb00: feature maps


def render_feature_maps(
    model: nn.Module, images: Tensor, index: int = 0, channel: int = 0, layer: str | nn.Module = "features"
) -> RenderResult:
    """Image ``index`` next to channel ``channel`` of the activations ``A^k`` of ``layer``.

    Readout: the predicted class and logit, the shape of ``A``, and for channel ``k`` its min, max and
    ``s_k = sum_ij A^k_ij`` (the quantity that GAP divides by ``Z = h w``).
    """
    model, images = check_model(model), _images(images)
    x = _pick(images, index, model)
    logits, acts = predict_with_layer(model, x, layer)
    k_total = acts.shape[1]
    if not 0 <= int(channel) < k_total:
        raise ValueError(f"channel {channel} is out of range: the layer has {k_total} channels (0..{k_total - 1})")
    a = acts[0, int(channel)].double().cpu()
    pred = int(logits[0].argmax())
    names = _class_names(model, logits.shape[-1])
    fig, (ax0, ax1) = _figure(2, width=7.5, height=3.4)
    ax0.imshow(to_display(x[0]))
    ax0.set_title(f"image {index}")
    shown = draw_map(ax1, a, vmin=0.0, vmax=max(float(a.max()), 1e-12), cmap=HEAT_CMAP,
                     title=f"channel {channel} of {layer if isinstance(layer, str) else 'layer'}")
    fig.colorbar(shown, ax=ax1, fraction=0.046, pad=0.04)
    for ax in (ax0, ax1):
        ax.set_axis_off()
    text = (
        f"image {index}: predicted class {pred} ({_name(names, pred)}), logit {float(logits[0, pred]):.4f}\n"
        f"activations A: {tuple(acts.shape[1:])} (K, h, w)\n"
        f"channel {channel}: min {float(a.min()):.4f}  max {float(a.max()):.4f}  "
        f"s_k = sum A^k = {float(a.sum()):.4f}  mean {float(a.mean()):.4f}"
    )
    return _png(fig, right=0.92), text


def feature_maps_explorer(model: nn.Module, images: Tensor, layer: str | nn.Module = "features") -> Explorer:
    """Explore the channels of ``layer``: sliders for the image index and the channel."""
    model, images = check_model(model), _images(images)
    _, acts = predict_with_layer(model, _pick(images, 0, model), layer)
    controls = {
        "index": _slider(widgets.IntSlider, "image", 0, 0, images.shape[0] - 1, 1),
        "channel": _slider(widgets.IntSlider, "channel", 0, 0, acts.shape[1] - 1, 1),
    }
    return Explorer(
        "feature-maps", render_feature_maps, controls, {"model": model, "images": images, "layer": layer},
        static={"channel": list(range(min(16, acts.shape[1])))},
    )  # fmt: skip


# ----------------------------------------------------------------------------- nb01: linear regression


def linear_attributions(
    w0: float, w1: float, w2: float, x1: float, x2: float, b1: float = 0.0, b2: float = 0.0
) -> dict[str, Any]:
    """Closed forms for ``y = w0 + w1 x1 + w2 x2`` at ``x`` with baseline ``b``.

    ``gradient = (w1, w2)``, ``grad_x_input = (w1 x1, w2 x2)``, ``occlusion = (w_i (x_i - b_i))``;
    ``ig`` is a one-step right Riemann sum of the path integral, exact for a linear model and equal to
    ``w_i (x_i - b_i)``; completeness ``sum ig = y(x) - y(b)``.
    """
    w = np.array([w1, w2], dtype=np.float64)
    x = np.array([x1, x2], dtype=np.float64)
    b = np.array([b1, b2], dtype=np.float64)

    def f(v: np.ndarray) -> float:
        return float(w0 + w @ v)

    def grad(_v: np.ndarray) -> np.ndarray:
        return w.copy()

    occl = np.array([f(x) - f(np.where(np.arange(2) == i, b, x)) for i in range(2)])
    ig = (x - b) * grad(b + 1.0 * (x - b))  # right Riemann sum with m = 1
    return {
        "y": f(x),
        "y_baseline": f(b),
        "gradient": grad(x),
        "grad_x_input": grad(x) * x,
        "occlusion": occl,
        "ig": ig,
    }


def render_linear_regression(
    w0: float = 0.5, w1: float = 2.0, w2: float = -1.0, x1: float = 1.0, x2: float = 1.5, b1: float = 0.0, b2: float = 0.0
) -> RenderResult:
    """Level sets of ``y = w0 + w1 x1 + w2 x2`` with ``x``, the baseline ``b`` and the gradient arrow,
    and the four attributions per feature (see :func:`linear_attributions`)."""
    r = linear_attributions(w0, w1, w2, x1, x2, b1, b2)
    fig, (ax0, ax1) = _figure(2, width=9.0, height=3.6)
    g1, g2 = np.meshgrid(np.linspace(-3, 3, 61), np.linspace(-3, 3, 61))
    levels = w0 + w1 * g1 + w2 * g2
    cs = ax0.contourf(g1, g2, levels, levels=15, cmap="coolwarm")
    fig.colorbar(cs, ax=ax0, fraction=0.046, pad=0.04)
    ax0.plot([b1, x1], [b2, x2], "k--", lw=1)
    ax0.plot([x1], [x2], "ko")
    ax0.plot([b1], [b2], "ws", mec="k")
    ax0.annotate("", xy=(x1 + 0.3 * w1, x2 + 0.3 * w2), xytext=(x1, x2), arrowprops={"arrowstyle": "->", "lw": 2})
    ax0.set(xlim=(-3, 3), ylim=(-3, 3), xlabel="x1", ylabel="x2", title=f"y = {r['y']:.3f} at x (dot); baseline (square)")
    names = ("gradient", "gradient x input", "occlusion change", "integrated gradients")
    keys = ("gradient", "grad_x_input", "occlusion", "ig")
    pos = np.arange(2)
    for j, key in enumerate(keys):
        ax1.bar(pos + (j - 1.5) * 0.2, r[key], width=0.2, label=names[j])
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set_xticks(pos, ["feature x1", "feature x2"])
    ax1.set_title("attributions")
    ax1.legend(fontsize=7, loc="best")
    text = (
        f"y = {w0:g} + {w1:g}*{x1:g} + {w2:g}*{x2:g} = {r['y']:.4f};  y(baseline) = {r['y_baseline']:.4f}\n"
        f"gradient            dy/dx = ({w1:.4f}, {w2:.4f})\n"
        f"gradient x input    w_i x_i = ({r['grad_x_input'][0]:.4f}, {r['grad_x_input'][1]:.4f})\n"
        f"occlusion change    w_i (x_i - b_i) = ({r['occlusion'][0]:.4f}, {r['occlusion'][1]:.4f})\n"
        f"integrated grads    ({r['ig'][0]:.4f}, {r['ig'][1]:.4f});  sum = {r['ig'].sum():.4f} = y(x) - y(b)"
    )
    return _png(fig), text


def linear_regression_explorer() -> Explorer:
    """Sliders for the weights ``w0, w1, w2``, the input ``x1, x2`` and the baseline ``b1, b2``."""
    s = widgets.FloatSlider
    controls = {
        "w0": _slider(s, "w0", 0.5, -2.0, 2.0, 0.1),
        "w1": _slider(s, "w1", 2.0, -3.0, 3.0, 0.1),
        "w2": _slider(s, "w2", -1.0, -3.0, 3.0, 0.1),
        "x1": _slider(s, "x1", 1.0, -3.0, 3.0, 0.1),
        "x2": _slider(s, "x2", 1.5, -3.0, 3.0, 0.1),
        "b1": _slider(s, "baseline b1", 0.0, -3.0, 3.0, 0.1),
        "b2": _slider(s, "baseline b2", 0.0, -3.0, 3.0, 0.1),
    }
    static = {"x1": [-2.0, -1.0, 0.0, 1.0, 2.0], "b1": [-1.0, 0.0, 1.0]}
    return Explorer("linear-regression", render_linear_regression, controls, static=static)


# ----------------------------------------------------------------------------- nb02: occlusion


def occlusion_windows(size: int, patch: int, stride: int) -> int:
    """Window positions along one axis: ``0, stride, 2 stride, ...`` until the image is covered,
    i.e. ``ceil((size - patch) / stride) + 1`` (the last window may be cut off)."""
    if patch >= size:
        return 1
    return math.ceil((size - patch) / stride) + 1


def render_occlusion(
    model: nn.Module,
    image: Tensor,
    target: int | None = None,
    patch: int = 8,
    stride: int = 4,
    baseline: str = "grey",
) -> RenderResult:
    """``camlib.occlusion`` with a ``patch x patch`` window moved by ``stride`` and filled with the
    baseline (grey 0.5, black 0, or a Gaussian blur of the image).

    Readout: the explained logit, the largest score drop ``y(x) - y(x_{P <- b})`` over windows, the
    number of windows and of forward passes (windows + 1 for the clean image).
    """
    model = check_model(model)
    x = _pick(_images(image, "image"), 0, model)
    base = _baseline(x, baseline)
    attr = camlib.occlusion(model, x, target=_target_arg(target), patch=patch, stride=stride, baseline=base)
    values = attr.values[0].mean(0).double().cpu()
    grid = attr.extras["windows"][0].double().cpu()  # (rows, cols) drops y(x) - y(x_{P <- b})
    n_rows, n_cols = grid.shape
    r, c = np.unravel_index(int(torch.argmax(grid)), tuple(grid.shape))
    drop = float(grid[r, c])
    top, left = attr.extras["rows"][r], attr.extras["cols"][c]
    c_idx = int(attr.target[0])
    fig, (ax0, ax1, ax2) = _figure(3, width=10.0, height=3.5)
    ax0.imshow(to_display(x[0]))
    ax0.add_patch(Rectangle((left - 0.5, top - 0.5), patch, patch, fill=False, ec="red", lw=2))
    ax0.set_title("largest drop window")
    ax1.imshow(to_display(base[0]))
    ax1.set_title(f"baseline: {baseline}")
    im = ax2.imshow(values.numpy(), cmap="RdBu_r", vmin=-float(values.abs().max()), vmax=float(values.abs().max()) or 1.0)
    fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.04)
    ax2.set_title("score drop (mean over windows)")
    for ax in (ax0, ax1, ax2):
        ax.set_axis_off()
    text = (
        f"class {c_idx}: logit y(x) = {float(attr.score[0]):.4f}\n"
        f"patch {patch} x {patch}, stride {stride}, baseline {baseline}\n"
        f"largest score drop y(x) - y(occluded) = {drop:.4f} at window row {r}, col {c}\n"
        f"windows {n_rows} x {n_cols} = {n_rows * n_cols}; forward passes = {n_rows * n_cols + 1} "
        f"(one per window + the clean image)"
    )
    return _png(fig, right=0.92), text


def occlusion_explorer(model: nn.Module, image: Tensor, target: int | None = None) -> Explorer:
    """Sliders for the patch size and the stride, and a baseline choice (grey, black, blur)."""
    model = check_model(model)
    image = _images(image, "image")[:1]
    size = int(min(image.shape[-2:]))
    # stride >= size / 16 keeps a render under ~300 forward passes (about a second on a laptop CPU)
    low, high = max(2, size // 16), max(2, size // 4)
    controls = {
        "patch": _slider(widgets.IntSlider, "patch", min(8, size), low, max(low, size // 2), 1),
        "stride": _slider(widgets.IntSlider, "stride", min(8, size), low, high, 1),
        "baseline": _choice("baseline", BASELINES, "grey"),
    }

    def on_change(explorer: Explorer, _name_changed: str) -> None:
        # every pixel must be covered: the stride never exceeds the patch
        patch = explorer.controls["patch"].value
        explorer.set_quietly("stride", max=max(low, min(high, patch)))

    return Explorer(
        "occlusion", render_occlusion, controls, {"model": model, "image": image, "target": target}, on_change=on_change,
        static={"patch": list(range(controls["stride"].value, controls["patch"].max + 1, 2))},
    )  # the site's patches start at the stride, where every pixel is covered


# ----------------------------------------------------------------------------- nb03/nb04: CAM family


def render_cam(
    model: nn.Module,
    images: Tensor,
    index: int = 0,
    target: int | None = None,
    method: str = "grad_cam",
    layer: str | nn.Module = "features",
    score: str = "logit",
    opacity: float = 0.5,
    threshold: float = 0.0,
    class_names: Sequence[str] | None = None,
) -> RenderResult:
    """``camlib.<method>`` on image ``index`` for class ``target`` (``None`` or negative: the argmax).

    The map ``relu(sum_k w_k A^k)`` is upsampled to the image, min-max normalised to ``[0, 1]``, set to
    zero below ``threshold`` and blended with ``opacity``. CAM always uses the GAP layer and the logit;
    Grad-CAM++ (eq. 19) differentiates ``exp(logit)`` and reports the logit. Readout: the explained score, the map's raw range,
    the number of positive channel weights, and the fraction of the image at or above ``threshold``.
    """
    model, images = check_model(model), _images(images)
    check_score(score, model)
    x = _pick(images, index, model)
    if method not in CAM_METHODS:
        raise ValueError(f"method must be one of {CAM_METHODS}, got {method!r}")
    res = getattr(camlib, method)(model, x, layer, target=_target_arg(target), score=score)
    norm = camlib.normalize(camlib.upsample(res.map, tuple(x.shape[-2:])))[0].double().cpu().numpy()
    shown = np.where(norm >= threshold, norm, 0.0)
    c = int(res.target[0])
    logits = predict(model, x)
    names = _class_names(model, logits.shape[-1], class_names)
    pred = int(logits[0].argmax())
    fig, (ax0, ax1) = _figure(2, width=7.5, height=3.6)
    ax0.imshow(to_display(x[0]))
    ax0.set_title(f"image {index}: predicted {_name(names, pred)}", fontsize=10)
    ax1.imshow(overlay(x[0], shown, alpha=float(opacity)) if shown.max() > 0 else to_display(x[0]))
    if not shown.max() > 0:  # never a silent empty panel
        ax1.text(0.5, 0.5, "all zero: no positive\nevidence for this class", transform=ax1.transAxes, ha="center",
                 va="center", fontsize=9, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    if 0.0 < threshold < 1.0 and norm.max() > norm.min():
        ax1.contour(norm, levels=[threshold], colors="white", linewidths=1)
    ax1.set_title(f"{method} for {_name(names, c)}", fontsize=10)
    for ax in (ax0, ax1):
        ax.set_axis_off()
    note = " (eq. 19 differentiates exp(logit); the weights leave out its factor)" if method == "grad_cam_pp" else ""
    weights = res.weights[0]
    text = (
        f"{method} at layer {res.layer}: class {c} ({_name(names, c)}), explained score {res.score_kind} "
        f"= {float(res.score[0]):.4f}{note}\n"
        f"predicted {_name(names, pred)} (logit {float(logits[0, pred]):.4f})\n"
        f"raw map range [{float(res.raw[0].min()):.4f}, {float(res.raw[0].max()):.4f}]; "
        f"positive channel weights {int((weights > 0).sum())} of {weights.numel()}\n"
        f"opacity {opacity:.2f}; area with normalised map >= {threshold:.2f}: {float((norm >= threshold).mean()) * 100:.1f} %"
    )
    return _png(fig), text


def _conv_layers(model: nn.Module, layer: str | nn.Module) -> list[str]:
    """``layer`` first, then every ReLU of the model: post-ReLU activations are >= 0, as the CAM
    family assumes (Grad-CAM++'s ``s_k >= 0`` in particular)."""
    names = [n for n, m in model.named_modules() if n and isinstance(m, nn.ReLU)]
    first = layer if isinstance(layer, str) else ""
    return [first, *[n for n in names if n != first]] if first else names


def cam_explorer(
    model: nn.Module,
    images: Tensor,
    layer: str | nn.Module = "features",
    methods: Sequence[str] = ("cam", "grad_cam"),
    class_names: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
) -> Explorer:
    """Image index, class (or predicted), method, layer (not for CAM), score (logit or softmax, for the
    methods that take one), overlay opacity and threshold."""
    model, images = check_model(model), _images(images)
    methods = list(methods)
    for m in methods:
        if m not in CAM_METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {tuple(CAM_METHODS)}")
    names = _class_names(model, predict(model, _pick(images, 0, model)).shape[-1], class_names)
    layer_names = list(layers) if layers is not None else _conv_layers(model, layer)
    if not isinstance(layer, str):
        raise TypeError("cam_explorer needs the layer as a dotted name (e.g. 'features') so it can list choices")
    controls: dict[str, widgets.ValueWidget] = {
        "index": _slider(widgets.IntSlider, "image", 0, 0, images.shape[0] - 1, 1),
        "target": _choice("class", [("predicted", -1), *[(n, i) for i, n in enumerate(names)]], -1),
        "method": _choice("method", methods, methods[0] if "grad_cam" not in methods else "grad_cam"),
        "layer": _choice("layer", layer_names, layer),
        "score": _choice("score", ("logit", "softmax"), "logit"),
        "opacity": _slider(widgets.FloatSlider, "opacity", 0.5, 0.0, 1.0, 0.05),
        "threshold": _slider(widgets.FloatSlider, "threshold", 0.0, 0.0, 0.95, 0.05),
    }

    def on_change(explorer: Explorer, _name_changed: str) -> None:
        method = explorer.controls["method"].value
        # CAM reads the layer that feeds the GAP; CAM and Grad-CAM++ are defined for the logit only
        fixed = {"layer": layer if method == "cam" else None, "score": "logit" if method in LOGIT_ONLY else None}
        for name, value in fixed.items():
            if value is not None:
                explorer.set_quietly(name, value=value)
            explorer.controls[name].disabled = value is not None

    return Explorer(
        "cam",
        render_cam,
        controls,
        {"model": model, "images": images, "class_names": names},
        on_change=on_change,
        static={"index": list(range(min(16, images.shape[0])))} if len(methods) == 1 else
        {"index": list(range(min(8, images.shape[0]))), "method": methods},
    )


# ----------------------------------------------------------------------------- nb05: Grad-CAM++ alpha


def render_alpha(s: float = 10.0, g: float = 0.05, pixels: int = 49) -> RenderResult:
    """``alpha = 1 / (2 + s g)`` (Grad-CAM++ eq. 19 for ``g > 0``) against the constant 1/2.

    For a channel with the same positive gradient ``g`` at all ``Z = pixels`` positions (a GAP-linear
    head), Grad-CAM++ weighs it by ``w++ = Z g / (2 + s g)`` and Grad-CAM+ by ``W+ = Z relu(g)``; their
    ratio ``w++ / (W+ / 2) = 2 / (2 + s g)`` is 1 exactly when ``s g = 0``.

    Only positive gradients contribute: for ``g <= 0`` both weights are ``Z relu(g) = 0`` and ``alpha``
    is not used (camlib stores ``alpha = 0`` where ``g = 0``; for ``g < 0`` eq. 19 would give values
    above 1/2, a pole at ``s g = -2`` and negative values, none of which reaches a weight), so the
    explorer shows no ``alpha`` and says so instead of evaluating the formula there.
    """
    if s < 0:
        raise ValueError(f"s = sum of post-ReLU activations must be >= 0, got {s}")
    if pixels < 1:
        raise ValueError(f"pixels must be a positive integer, got {pixels}")
    t = s * g
    used = g > 0
    # one channel of Z = pixels positions, activations summing to s, the same gradient g everywhere:
    # the weights and alpha come from camlib.weight_rules, the formulas' one home
    activations = torch.full((1, 1, 1, int(pixels)), s / int(pixels), dtype=torch.float64)
    w_pp_t, alpha_t = weight_rules.grad_cam_pp_weights(activations, torch.full_like(activations, g))
    w_plus_t = weight_rules.grad_cam_plus_weights(activations, torch.full_like(activations, g)) * int(pixels)
    alpha = float(alpha_t[0, 0, 0, 0]) if used else 0.0  # s >= 0 and g > 0: 2 + s g >= 2, never a pole
    w_pp, w_plus = float(w_pp_t[0, 0]), float(w_plus_t[0, 0])
    fig, (ax0, ax1) = _figure(2, width=9.0, height=3.4)
    ts = np.linspace(0.0, max(5.0, 1.5 * t), 200)[1:]  # s_k g > 0 (alpha is 0 where g = 0)
    unit = torch.zeros(1, 1, 1, len(ts), dtype=torch.float64)
    unit[..., 0] = 1.0  # s_k = 1, so the gradient g is the product s_k g
    curve = weight_rules.grad_cam_pp_weights(unit, torch.from_numpy(ts).view(unit.shape))[1].flatten().numpy()
    ax0.plot(ts, curve, label=r"$\alpha = 1/(2 + s_k\,g)$")
    ax0.axhline(0.5, color="k", ls="--", lw=1, label="1/2")
    if used:
        ax0.plot([t], [alpha], "ro")
        title = rf"$s_k\,g$ = {t:.3f}: $\alpha$ = {alpha:.4f}"
    else:
        ax0.text(0.5, 0.25, "g <= 0: ReLU(g) = 0,\nthis position adds nothing;\nalpha is not used",
                 ha="center", va="center", transform=ax0.transAxes, fontsize=9, color="tab:red")
        title = rf"$g$ = {g:.3f} $\leq 0$: no $\alpha$"
    ax0.set(xlabel=r"$s_k\,g$", ylabel=r"$\alpha$", title=title, ylim=(0, 0.55))
    ax0.legend(fontsize=8)
    ax1.bar([0, 1], [w_pp, w_plus / 2.0], color=["tab:red", "tab:blue"])
    ax1.set_xticks([0, 1], ["Grad-CAM++ w++", "Grad-CAM+ W+/2"])
    ax1.set_title(f"channel weight (Z = {pixels})")
    if used:
        text = (
            f"s_k = {s:.4f}, g = {g:.5f}, product s_k g = {t:.5f}\n"
            f"alpha = 1/(2 + s_k g) = {alpha:.6f}   (1/2 - alpha = {0.5 - alpha:.6f})\n"
            f"Grad-CAM++ weight w++ = Z g alpha = {w_pp:.6f}\n"
            f"Grad-CAM+ weight W+ = Z relu(g) = {w_plus:.6f};  W+/2 = {w_plus / 2:.6f}\n"
            f"ratio w++ / (W+/2) = 2/(2 + s_k g) = {w_pp / (w_plus / 2):.6f}"
        )
    else:
        text = (
            f"s_k = {s:.4f}, g = {g:.5f}, product s_k g = {t:.5f}\n"
            f"g <= 0: only positive gradients contribute, relu(g) = 0, so alpha is not used "
            f"(camlib stores alpha = 0 where g = 0)\n"
            f"Grad-CAM++ weight w++ = Z alpha relu(g) = 0\n"
            f"Grad-CAM+ weight W+ = Z relu(g) = 0\n"
            f"ratio w++ / (W+/2): undefined, both weights are 0"
        )
    return _png(fig), text


def alpha_explorer(pixels: int = 49) -> Explorer:
    """Sliders for the channel sum ``s_k`` and the gradient ``g``; ``pixels`` is ``Z = h w``."""
    controls = {
        "s": _slider(widgets.FloatSlider, "s_k", 10.0, 0.0, 100.0, 0.5),
        "g": _slider(widgets.FloatSlider, "g", 0.05, -0.2, 1.0, 0.005, readout_format=".3f"),
    }
    # the site's frames: g from 0 to 1, where alpha = 1/(2 + s g) is Grad-CAM++'s coefficient
    static = {"g": [round(0.05 * i, 2) for i in range(21)]}
    return Explorer("alpha", render_alpha, controls, {"pixels": int(pixels)}, static=static)


# ----------------------------------------------------------------------------- nb06: Integrated Gradients


def _ig_rules() -> list[str]:
    from . import quadrature  # noqa: PLC0415

    return list(quadrature.RULES)


def render_ig(
    model: nn.Module,
    image: Tensor,
    target: int | None = None,
    steps: int = 16,
    rule: str = "trapezoid",
    baseline: str = "black",
) -> RenderResult:
    """``camlib.integrated_gradients`` with ``steps`` nodes of the quadrature ``rule``.

    Readout: ``F(x)``, ``F(x')``, ``sum_i IG_i`` and the completeness error
    ``delta = sum_i IG_i - (F(x) - F(x'))`` (also relative to ``|F(x) - F(x')|``).
    """
    model = check_model(model)
    x = _pick(_images(image, "image"), 0, model)
    base = _baseline(x, baseline)
    attr = camlib.integrated_gradients(model, x, target=_target_arg(target), baseline=base, steps=steps, rule=rule)
    c = int(attr.target[0])
    fx, fb = float(attr.score[0]), float(attr.extras["baseline_score"][0])
    total = float(attr.values[0].double().sum())
    delta = float(attr.delta[0])
    rel = abs(delta) / abs(fx - fb) if fx != fb else float("inf")
    heat = attr.values[0].double().sum(0).cpu().numpy()
    fig, (ax0, ax1) = _figure(2, width=7.5, height=3.5)
    ax0.imshow(to_display(x[0]))
    ax0.set_title("input")
    lim = float(np.abs(heat).max()) or 1.0
    im = ax1.imshow(heat, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax1, fraction=0.046, pad=0.04)
    ax1.set_title(f"IG ({rule}, {steps} steps)")
    for ax in (ax0, ax1):
        ax.set_axis_off()
    text = (
        f"class {c}: F(x) = {fx:.5f}, F(baseline {baseline}) = {fb:.5f}, F(x) - F(x') = {fx - fb:.5f}\n"
        f"sum of IG = {total:.5f} with {steps} steps of {rule}\n"
        f"completeness error delta = {delta:.3e}  (relative {rel:.3e})"
    )
    return _png(fig, right=0.9), text


def ig_explorer(model: nn.Module, image: Tensor, target: int | None = None, max_steps: int = 64) -> Explorer:
    """A slider for the number of steps and a choice of quadrature rule and baseline."""
    model = check_model(model)
    image = _images(image, "image")[:1]
    rules = _ig_rules()
    controls = {
        "steps": _slider(widgets.IntSlider, "steps", 16, 1, int(max_steps), 1),
        "rule": _choice("rule", rules, "trapezoid" if "trapezoid" in rules else rules[0]),
        "baseline": _choice("baseline", ("black", "grey", "blur"), "black"),
    }
    steps = [s for s in (2, 4, 8, 16, 32, 64) if s <= int(max_steps)]  # the trapezoid rule needs 2 nodes
    return Explorer(
        "ig", render_ig, controls, {"model": model, "image": image, "target": target}, static={"steps": steps, "rule": None}
    )


# ----------------------------------------------------------------------------- nb07: beyond Grad-CAM

#: the methods of notebook 07's explorer: label -> (camlib function name, uses a layer, uses the noise level)
BEYOND_METHODS: dict[str, tuple[str, bool, bool]] = {
    "guided backprop": ("guided_backprop", False, False),
    "DeconvNet": ("deconvnet", False, False),
    "Guided Grad-CAM": ("guided_grad_cam", True, False),
    "SmoothGrad": ("smooth_grad", False, True),
    "VarGrad": ("smooth_grad", False, True),
    "Grad-CAM": ("grad_cam", True, False),
    "HiResCAM": ("hires_cam", True, False),
    "LayerCAM": ("layer_cam", True, False),
    "Ablation-CAM": ("ablation_cam", True, False),
    "Score-CAM": ("score_cam", True, False),
    "Eigen-CAM": ("eigen_cam", True, False),
}


def _beyond(model: nn.Module, x: Tensor, method: str, layer: str, target: int | None, noise_level: float) -> Any:
    if method not in BEYOND_METHODS:
        raise ValueError(f"method must be one of {tuple(BEYOND_METHODS)}, got {method!r}")
    name, uses_layer, uses_noise = BEYOND_METHODS[method]
    fn = getattr(camlib, name)
    if uses_noise:
        variant = "vargrad" if method == "VarGrad" else "smoothgrad"
        return fn(model, x, camlib.saliency, target=target, noise_level=float(noise_level), variant=variant)
    return fn(model, x, layer, target=target) if uses_layer else fn(model, x, target=target)


def render_beyond(
    model: nn.Module,
    images: Tensor,
    index: int = 0,
    target: int | None = None,
    method: str = "guided backprop",
    layer: str = "features",
    noise_level: float = 0.15,
    masks: Tensor | None = None,
    class_names: Sequence[str] | None = None,
) -> RenderResult:
    """One method of notebook 07 on image ``index`` for class ``target`` (``None`` or negative: the argmax).

    A pixel attribution is drawn as ``|values|`` summed over the colour channels, a CAM over the image
    (bilinear upsampling), each on its own colour scale from 0. ``layer`` is used by the CAM methods and
    Guided Grad-CAM, ``noise_level`` (a fraction of the image's range) by SmoothGrad and VarGrad (of the
    absolute gradient, 25 samples). With ``masks`` the readout scores the map on the object mask:
    energy inside and the pointing game (:mod:`camlib.metrics`).
    """
    model, images = check_model(model), _images(images)
    x = _pick(images, index, model)
    res = _beyond(model, x, method, layer, _target_arg(target), noise_level)
    _, uses_layer, uses_noise = BEYOND_METHODS[method]
    is_cam = isinstance(res, camlib.CamResult)
    heat = res.map[0] if is_cam else res.values[0].abs().sum(dim=0)
    logits = predict(model, x)
    names = _class_names(model, logits.shape[-1], class_names)
    c, pred = int(res.target[0]), int(logits[0].argmax())
    mask = None
    if masks is not None:
        if not isinstance(masks, Tensor) or masks.ndim != 3 or masks.shape[0] != images.shape[0]:
            raise ValueError("masks must be a (N, H, W) tensor with one mask per image")
        mask = masks[int(index)].to(x.device)
    fig, (ax0, ax1) = _figure(2, width=7.5, height=3.6)
    ax0.imshow(to_display(x[0]))
    if mask is not None:
        ax0.contour(mask.cpu().numpy().astype(float), levels=[0.5], colors="white", linewidths=1)
    ax0.set_title(f"image {index}: predicted {_name(names, pred)}", fontsize=10)
    where = f" at {layer}" if uses_layer else (f", noise {noise_level:.0%}" if uses_noise else "")
    draw_map(ax1, heat, image=x[0] if is_cam else None, mask=mask, title=f"{method}{where}, class {_name(names, c)}")
    for ax in (ax0, ax1):
        ax.set_axis_off()
    agnostic = " (the same map for every class)" if method == "Eigen-CAM" else ""
    lines = [
        f"{method}{where}: class {c} ({_name(names, c)}){agnostic}, score {res.score_kind} = {float(res.score[0]):.4f}",
        f"predicted {_name(names, pred)} (logit {float(logits[0, pred]):.4f}); map range "
        f"[{float(heat.min()):.4g}, {float(heat.max()):.4g}]",
    ]
    if mask is not None:
        hit = float(camlib.metrics.pointing_game(heat[None], mask[None]).values[0])
        energy = float(camlib.metrics.energy_inside(heat[None], mask[None]).values[0])
        lines.append(f"on the object mask ({float(mask.float().mean()):.0%} of the image): energy inside "
                     f"{energy:.2f}, pointing game {'hit' if hit == 1.0 else ('miss' if hit == 0.0 else f'{hit:.2f}')}")
    return _png(fig), "\n".join(lines)


def beyond_explorer(
    model: nn.Module,
    images: Tensor,
    masks: Tensor | None = None,
    layer: str = "features",
    class_names: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
) -> Explorer:
    """Image index, class (or predicted), method (notebook 07's), layer (for the methods that take one)
    and noise level (for SmoothGrad and VarGrad); with ``masks`` the readout scores the map."""
    model, images = check_model(model), _images(images)
    n_out = predict(model, images[:1]).shape[-1]
    names = _class_names(model, n_out, class_names)
    layer_names = list(layers) if layers is not None else _conv_layers(model, layer)
    controls: dict[str, widgets.ValueWidget] = {
        "index": _slider(widgets.IntSlider, "image", 0, 0, images.shape[0] - 1, 1),
        "target": _choice("class", [("predicted", -1), *[(n, i) for i, n in enumerate(names)]], -1),
        "method": _choice("method", list(BEYOND_METHODS), "guided backprop"),
        "layer": _choice("layer", layer_names, layer),
        "noise_level": _slider(widgets.FloatSlider, "noise", 0.15, 0.0, 0.5, 0.05),
    }

    def on_change(explorer: Explorer, _name_changed: str) -> None:
        _, uses_layer, uses_noise = BEYOND_METHODS[explorer.controls["method"].value]
        explorer.controls["layer"].disabled = not uses_layer
        explorer.controls["noise_level"].disabled = not uses_noise

    return Explorer(
        "beyond", render_beyond, controls,
        {"model": model, "images": images, "masks": masks, "class_names": names},
        on_change=on_change, static={"method": None},
    )  # fmt: skip


# ----------------------------------------------------------------------------- nb08: comparison


def _explain(model: nn.Module, x: Tensor, method: str, layer: str | nn.Module, target: int | None) -> Any:
    if method in CAM_METHODS:
        return getattr(camlib, method)(model, x, layer, target=target)
    if method not in PIXEL_METHODS:
        raise ValueError(f"method must be one of {(*CAM_METHODS, *PIXEL_METHODS)}, got {method!r}")
    if method == "integrated_gradients":
        return camlib.integrated_gradients(model, x, target=target, steps=COMPARISON_IG_STEPS)
    return getattr(camlib, method)(model, x, target=target)


#: Integrated Gradients steps in the comparison explorer (trapezoid rule, black baseline): enough for a
#: completeness error well under 1 % on the course models, and fast enough for a slider.
COMPARISON_IG_STEPS = 16


def render_comparison(
    model: nn.Module,
    images: Tensor,
    masks: Tensor,
    index: int = 0,
    method: str = "grad_cam",
    layer: str | nn.Module = "features",
    target: int | None = None,
) -> RenderResult:
    """One method's map on image ``index`` with the object mask, scored with camlib.metrics.

    The map is ``camlib.metrics.to_map(result, mask size)`` (a CAM's ``.map`` upsampled, or a pixel
    attribution summed over channels). Readout: the pointing game with ``ties="first"`` (hit when the
    first raster-order maximum is inside the mask) and the energy inside the mask
    ``sum_{mask} relu(M) / sum relu(M)``.
    """
    model, images = check_model(model), _images(images)
    if not isinstance(masks, Tensor) or masks.ndim != 3 or masks.shape[0] != images.shape[0]:
        raise ValueError("masks must be a (N, H, W) tensor with one mask per image")
    x = _pick(images, index, model)
    mask = masks[int(index) : int(index) + 1].to(x.device)
    res = _explain(model, x, method, layer, _target_arg(target))
    c = int(res.target[0])
    heat_t = camlib.metrics.to_map(res, tuple(mask.shape[-2:]))
    hit = float(camlib.metrics.pointing_game(heat_t, mask, ties="first").values[0])
    energy = float(camlib.metrics.energy_inside(heat_t, mask).values[0])
    area = float(mask.float().mean())
    heat = heat_t[0].double().cpu().numpy()
    r, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    outline = mask[0].cpu().numpy().astype(float)
    fig, (ax0, ax1) = _figure(2, width=7.5, height=3.6)
    ax0.imshow(to_display(x[0]))
    ax0.contour(outline, levels=[0.5], colors="lime", linewidths=1)
    ax0.set_title(f"image {index} and its mask", fontsize=10)
    ax1.imshow(overlay(x[0], np.maximum(heat, 0.0), alpha=0.5))
    if not heat.max() > 0:  # never a silent empty panel
        ax1.text(0.5, 0.5, "all zero", transform=ax1.transAxes, ha="center", va="center", fontsize=9,
                 bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    ax1.contour(outline, levels=[0.5], colors="white", linewidths=1)
    ax1.plot([col], [r], marker="x", color="white" if hit else "red", ms=10, mew=2)
    ax1.set_title(f"{method} (class {c})", fontsize=10)
    for ax in (ax0, ax1):
        ax.set_axis_off()
    detail = f" ({COMPARISON_IG_STEPS} steps, black baseline)" if method == "integrated_gradients" else ""
    text = (
        f"{method}{detail} on image {index}, class {c}\n"
        f"pointing game: {'hit' if hit == 1.0 else 'miss'} (first maximum at row {r}, col {col})\n"
        f"energy in mask = {energy:.4f}  (mask covers {area * 100:.1f} % of the image)"
    )
    return _png(fig), text


def comparison_explorer(
    model: nn.Module,
    images: Tensor,
    masks: Tensor,
    methods: Sequence[str] = ("cam", "grad_cam", "grad_cam_pp", "xgrad_cam", "saliency", "gradient_x_input", "integrated_gradients"),
    layer: str | nn.Module = "features",
) -> Explorer:
    """An image slider and a method choice; the readout scores the map against the mask."""
    model, images = check_model(model), _images(images)
    if not isinstance(masks, Tensor) or masks.ndim != 3 or masks.shape[0] != images.shape[0]:
        raise ValueError("masks must be a (N, H, W) tensor with one mask per image")
    controls = {
        "index": _slider(widgets.IntSlider, "image", 0, 0, images.shape[0] - 1, 1),
        "method": _choice("method", list(methods), "grad_cam" if "grad_cam" in methods else methods[0]),
    }
    return Explorer(
        "comparison", render_comparison, controls, {"model": model, "images": images, "masks": masks, "layer": layer},
        static={"method": None, "index": list(range(min(4, images.shape[0])))},
    )  # fmt: skip


# ----------------------------------------------------------------------------- nb09: a real network


#: what the real-network explorer can explain: the face logit or one of O-Net's five landmarks
REAL_OUTPUTS = ("face", "left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def render_real_network(
    model: nn.Module,
    images: Tensor,
    names: Sequence[str],
    points: Tensor,
    index: int = 0,
    output: str = "face",
    method: str = "grad_cam",
    layer: str = "prelu3",
) -> RenderResult:
    """MTCNN's O-Net on image ``index``: the face logit or a landmark explained by ``method``.

    ``output="face"``: the map of the face logit at 48 x 48 (:func:`camlib.figures.nb09.face_map`:
    a CAM's ``map`` after its ReLU, or a pixel attribution summed over channels). A landmark (e.g.
    ``"left_eye"``): :func:`camlib.figures.nb09.landmark_map`, ``|S(u)| + |S(v)|`` of the point's
    two coordinates, with O-Net's prediction (+) and the reference point of ``points`` (x; O-Net's
    own prediction for LFW, the hand annotation for the portraits) and the pointing-game
    tolerance drawn. ``layer`` is used by the CAM family and Guided Grad-CAM. Readout: the face
    probability, the explained score, the map's range, for a landmark the distance from the map's
    maximum to the reference point and the verdict at the tolerance, for a CAM method the share of
    negative activations at the layer and of channels whose activations sum below zero (PReLU).
    """
    from .figures import nb09

    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise TypeError(f"index must be an int (the image's position in the batch); got {index!r}.")
    if not 0 <= int(index) < images.shape[0]:
        raise ValueError(f"index {index} is out of range: there are {images.shape[0]} images")
    if output not in REAL_OUTPUTS:
        raise ValueError(f"output must be one of {REAL_OUTPUTS}, got {output!r}")
    i = int(index)
    x = images[i : i + 1]
    with torch.no_grad():
        outs = model.outputs(x)
    p_face = float(outs.face_probability[0])
    predicted = outs.landmark_pixels[0]
    uses_layer = method in nb09.CAM_METHODS or method == "guided_grad_cam"
    fig, (ax0, ax1, ax2) = _figure(3, width=9.0, height=3.5)
    ax0.imshow(to_display(x[0]))
    ax0.set_axis_off()
    ax0.set_title(f"{names[i]}: p(face) = {p_face:.4f}", fontsize=9)
    lines = []
    if output == "face":
        res = nb09.explain(method, model, x, "face", layer)
        heat = nb09.face_map(res)[0]
        lines.append(f"{nb09.LABELS.get(method, method)}{f' at {layer}' if uses_layer else ''} explains the face logit "
                     f"z_face = {float(res.score[0]):.3f} (p(face) = {p_face:.4f})")
        ref = None
    else:
        k = camlib.models.ONET_LANDMARKS.index(output)
        res = None
        heat = nb09.landmark_map(method, model, x, output, layer)[0]
        ref = points[i, k]
        own = bool(torch.isnan(ref).any())
        if own:  # no reference point for this image (a non-face): O-Net's own prediction stands in
            ref = predicted[k]
        flat = int(heat.argmax())
        row, col = divmod(flat, heat.shape[-1])
        dist = math.hypot(col - float(ref[0]), row - float(ref[1]))
        hit = float(nb09.pointing(heat[None], ref[None]).values[0])
        lines.append(f"{nb09.LABELS.get(method, method)}{f' at {layer}' if uses_layer else ''} explains the {output.replace('_', ' ')}: "
                     f"|map of {output}_x| + |map of {output}_y|")
        lines.append(f"O-Net puts it at (x, y) = ({float(predicted[k, 0]):.1f}, {float(predicted[k, 1]):.1f}); "
                     f"reference ({float(ref[0]):.1f}, {float(ref[1]):.1f})"
                     + (" = O-Net's own point (no reference for this image)" if own else ""))
        lines.append(f"map maximum at ({col}, {row}), {dist:.1f} px from the reference: "
                     f"{'hit' if hit == 1.0 else 'miss' if hit == 0.0 else f'{hit:.2f} of the tied maxima inside'} "
                     f"at the {nb09.TOLERANCE} px tolerance")
        for ax in (ax0, ax1, ax2):
            ax.plot([float(predicted[k, 0])], [float(predicted[k, 1])], marker="+", color="#33ff99", ms=9, mew=2)
            ax.plot([float(ref[0])], [float(ref[1])], marker="x", color="#33ccff", ms=6, mew=1.5)
        ax1.add_patch(Circle((float(ref[0]), float(ref[1])), nb09.TOLERANCE, fill=False, color="#33ccff", lw=1))
    lo, hi, cmap = camlib.plotting.map_scale(heat)
    shown = camlib.plotting.draw_map(ax1, heat, vmin=lo, vmax=hi, cmap=cmap, title="map (its own scale)")
    fig.colorbar(shown, ax=ax1, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    camlib.plotting.draw_map(ax2, heat, image=x[0], vmin=lo, vmax=hi, cmap=cmap, title="over the image")
    lines.append(f"map range [{float(heat.min()):.3g}, {float(heat.max()):.3g}]")
    if uses_layer and output == "face" and isinstance(res, camlib.CamResult):
        a = res.activations
        s = a.flatten(2).sum(-1)
        lines.append(f"layer {layer}: {100 * float((a < 0).double().mean()):.1f} % of activations negative, "
                     f"{int((s < 0).sum())} of {s.shape[1]} channels sum below zero (PReLU)")
    return _png(fig, right=0.95), "\n".join(lines)


def real_network_explorer(
    model: nn.Module, images: Tensor, names: Sequence[str], points: Tensor, methods: Sequence[str] | None = None
) -> Explorer:
    """Image, output (face or a landmark), method and layer for MTCNN's O-Net (notebook 09).

    ``images`` (N, 3, 48, 48), ``names`` one per image, ``points`` (N, 5, 2) reference landmarks
    (NaN where there are none). ``methods`` defaults to every method of
    :mod:`camlib.figures.nb09` that camlib provides. The layer choice is disabled for the pixel
    methods, which do not read a layer.
    """
    from .figures import nb09

    if not isinstance(images, Tensor) or images.ndim != 4 or len(names) != images.shape[0]:
        raise ValueError("images must be (N, 3, 48, 48) with one name per image")
    methods = list(methods if methods is not None else nb09.available(nb09.PIXEL_METHODS + nb09.CAM_METHODS))
    controls: dict[str, widgets.ValueWidget] = {
        "index": _slider(widgets.IntSlider, "image", 0, 0, images.shape[0] - 1, 1),
        "output": _choice("explain", list(REAL_OUTPUTS), "face"),
        "method": _choice("method", methods, "grad_cam" if "grad_cam" in methods else methods[0]),
        "layer": _choice("layer", list(nb09.LAYER_CHOICES), "prelu3"),
    }

    def on_change(explorer: Explorer, _name_changed: str) -> None:
        method = explorer.controls["method"].value
        explorer.controls["layer"].disabled = not (method in nb09.CAM_METHODS or method == "guided_grad_cam")

    return Explorer(
        "real-network", render_real_network, controls,
        {"model": model, "images": images, "names": list(names), "points": points}, on_change=on_change,
        static={"index": list(range(images.shape[0])), "output": ["face", "left_eye"]},
    )  # fmt: skip
