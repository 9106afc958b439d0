"""Overlays and grids of explanation maps, drawn with matplotlib's object API.

Nothing here touches ``matplotlib.pyplot``: figures are ``matplotlib.figure.Figure`` objects that
Jupyter displays once when a cell returns them, and that :func:`figure_to_png` turns into PNG
bytes for the widgets. So a notebook never gets a duplicated figure and no figure is left open.

* :func:`to_display` maps an image tensor or array to an ``(H, W, 3)`` float array in ``[0, 1]``.
* :func:`overlay` blends a colour-mapped map, min-max normalised by :func:`camlib.normalize`, over
  an image:
  ``out = (1 - alpha) * image + alpha * cmap(normalize(upsample(map)))``.
* :func:`show_maps` draws a grid of images with their maps.
* :func:`draw_map` draws one map on an axis, on a colour scale it is given, over the image when one
  is given, with the object outlined; a map that is all zero says so on the panel.
* :func:`compare_maps` draws maps that are to be compared on ONE colour scale with one colourbar.
* :func:`figure_to_png` renders a figure to PNG bytes with the Agg backend.

Colour maps are perceptually uniform (equal steps in value look like equal steps in colour, and
the order survives printing in grey): :data:`HEAT_CMAP` for maps that are never negative,
:data:`SIGNED_CMAP` (diverging, white at zero) for signed maps. No rainbow map such as ``jet``,
whose bright bands invent edges that are not in the data.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .postprocess import normalize, upsample

__all__ = [
    "HEAT_CMAP",
    "SIGNED_CMAP",
    "to_display",
    "as_map",
    "overlay",
    "show_maps",
    "map_scale",
    "draw_map",
    "compare_maps",
    "figure_to_png",
]

#: colour map of maps that are never negative (a CAM after its ReLU, |gradient|): perceptually uniform
HEAT_CMAP = "inferno"
#: colour map of signed maps, used with limits symmetric about zero: red = for, white = 0, blue = against
SIGNED_CMAP = "RdBu_r"


def _as_numpy(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=False)
    raise TypeError(f"{what} must be a torch.Tensor or a numpy array, got {type(value).__name__}")


def to_display(image: Any) -> np.ndarray:
    """Return ``image`` as an ``(H, W, 3)`` float64 array in ``[0, 1]`` for ``imshow``.

    Accepts ``(3, H, W)``, ``(1, 3, H, W)``, ``(H, W, 3)``, ``(1, H, W)`` or ``(H, W)``. Values already
    in ``[0, 1]`` are kept; anything else (e.g. an ImageNet-normalised photo) is min-max rescaled:
    ``(x - min x) / (max x - min x)`` (a constant image becomes zeros).
    """
    arr = _as_numpy(image, "image")
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"pass one image, not a batch of {arr.shape[0]}: index it first, e.g. images[i]")
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3) and arr.shape[0] in (1, 3):
        arr = np.moveaxis(arr, 0, -1)  # channels first -> channels last
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (3,H,W), (H,W,3) or (H,W); got shape {tuple(arr.shape)}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or inf values")
    if float(arr.min()) < 0.0 or float(arr.max()) > 1.0:
        arr = normalize(torch.from_numpy(np.ascontiguousarray(arr))[None])[0].numpy()
    return np.ascontiguousarray(arr)


def as_map(map: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """Return a 2-D map as float64, bilinearly resized to ``size = (H, W)`` when given.

    Accepts ``(h, w)``, ``(1, h, w)`` or ``(1, 1, h, w)``; no normalisation is applied. The
    resize is :func:`camlib.upsample` (bilinear, ``align_corners=False``).
    """
    arr = _as_numpy(map, "map")
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"map must be 2-D (h, w) (one map, not a batch); got shape {tuple(arr.shape)}")
    if size is not None and tuple(arr.shape) != tuple(size):
        arr = upsample(torch.from_numpy(np.ascontiguousarray(arr)), tuple(size)).numpy()
    return arr


def overlay(image: Any, map: Any, alpha: float = 0.5, cmap: str = HEAT_CMAP) -> np.ndarray:
    """Blend a map over an image: ``(1 - alpha) * image + alpha * cmap(minmax(map))``.

    ``map`` is resized (bilinear) to the image size and min-max normalised (a constant map becomes
    zeros); ``image`` goes through :func:`to_display`. Returns an ``(H, W, 3)`` array in ``[0, 1]``.
    """
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    base = to_display(image)
    heat = normalize(torch.from_numpy(as_map(map, base.shape[:2]))).numpy()
    try:
        colours = matplotlib.colormaps[cmap](heat)[..., :3]
    except KeyError:
        raise ValueError(f"unknown colormap {cmap!r}; use a matplotlib name such as 'inferno' or 'viridis'") from None
    return np.clip((1.0 - alpha) * base + alpha * colours, 0.0, 1.0)


def show_maps(
    images: Any,
    maps: Any,
    titles: Sequence[str] | None = None,
    alpha: float = 0.5,
    cmap: str = HEAT_CMAP,
    ncols: int | None = None,
    size: float = 2.2,
) -> Figure:
    """A grid with one panel per ``overlay(images[i], maps[i], alpha, cmap)``.

    ``images`` is ``(N, 3, H, W)`` (or one image, broadcast to every map), ``maps`` is ``(N, h, w)``.
    Returns a ``matplotlib.figure.Figure`` (not registered with pyplot: a cell that returns it shows it
    once).
    """
    map_arr = _as_numpy(maps, "maps")
    if map_arr.ndim == 2:
        map_arr = map_arr[None]
    if map_arr.ndim == 4 and map_arr.shape[1] == 1:
        map_arr = map_arr[:, 0]
    if map_arr.ndim != 3:
        raise ValueError(f"maps must be (N, h, w); got shape {tuple(map_arr.shape)}")
    n = map_arr.shape[0]
    img_arr = _as_numpy(images, "images")
    if img_arr.ndim == 3:
        img_arr = np.broadcast_to(img_arr, (n, *img_arr.shape))
    if img_arr.ndim != 4 or img_arr.shape[0] != n:
        raise ValueError(f"images must be (N, 3, H, W) with N = {n} (the number of maps); got {tuple(img_arr.shape)}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} maps; pass one title per map or None")
    cols = min(n, ncols or 6)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size * cols, size * rows + (0.3 if titles else 0.0)))
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        if i < n:
            ax.imshow(overlay(img_arr[i], map_arr[i], alpha=alpha, cmap=cmap))
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    return fig


def map_scale(maps: Any, signed: bool | None = None) -> tuple[float, float, str]:
    """One colour scale ``(vmin, vmax, cmap)`` for every map in ``maps`` (a map or a sequence of maps).

    Signed (``signed=None``: some value is negative): ``(-m, m, SIGNED_CMAP)`` with ``m = max |value|``,
    so white is zero. Otherwise ``(0, max value, HEAT_CMAP)``. An all-zero set gets ``m = 1``.
    """
    arrays = [_as_numpy(m, "map") for m in (maps if isinstance(maps, (list, tuple)) else [maps])]
    lo = min(float(a.min()) for a in arrays)
    top = max(float(np.abs(a).max()) for a in arrays) or 1.0
    if signed is None:
        signed = lo < 0.0
    return (-top, top, SIGNED_CMAP) if signed else (0.0, top, HEAT_CMAP)


def draw_map(
    ax: Any,
    map: Any,
    *,
    image: Any = None,
    mask: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | None = None,
    alpha: float = 0.6,
    title: str | None = None,
) -> Any:
    """Draw one map on ``ax`` with the colour scale ``[vmin, vmax]`` and return the image artist.

    With ``image`` the map is resized (bilinear) to the image and drawn with opacity ``alpha`` over
    the image in grey (so that the map's colours are not confused with the object's). Without it the
    map is drawn on its own grid, one square per value. ``mask`` (an object mask, any size) is
    outlined in white, at its place even over a coarser map. Limits left as ``None`` come from
    :func:`map_scale` of this map alone: pass the same limits to every panel that is to be compared.
    A map that is exactly zero everywhere is labelled "all zero" on the panel, so that an empty panel
    is never mistaken for a missing one.
    """
    base = None if image is None else to_display(image)
    arr = as_map(map, None if base is None else base.shape[:2])
    if vmin is None or vmax is None or cmap is None:
        lo, hi, auto = map_scale(arr)
        vmin, vmax, cmap = (lo if vmin is None else vmin), (hi if vmax is None else vmax), (cmap or auto)
    outline = None if mask is None else as_map(mask)
    height, width = base.shape[:2] if base is not None else (outline.shape if outline is not None else arr.shape)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # map cells stretched over the mask's pixels
    if base is not None:
        ax.imshow(base.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0)
        artist = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha)
    else:
        artist = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", extent=extent)
    if outline is not None:  # black on a signed map's white zero, white on a dark heat map or a grey image
        ax.contour(outline, levels=[0.5], colors="black" if (base is None and vmin < 0) else "white", linewidths=0.8)
    if not np.any(arr):
        ax.text(0.5, 0.5, "all zero", transform=ax.transAxes, ha="center", va="center", fontsize=9,
                color="black", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    if title is not None:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return artist


def compare_maps(
    maps: Any,
    titles: Sequence[str] | None = None,
    *,
    images: Any = None,
    masks: Any = None,
    signed: bool | None = None,
    label: str = "",
    alpha: float = 0.6,
    ncols: int | None = None,
    size: float = 2.2,
    suptitle: str | None = None,
) -> Figure:
    """Panels of maps compared on ONE colour scale (:func:`map_scale` of all of them), one colourbar.

    ``maps`` is ``(N, h, w)`` or a sequence of ``(h, w)`` maps. ``images`` (one ``(3, H, W)`` image
    for all panels, or ``(N, 3, H, W)``) puts each map over its image; ``masks`` (``(H, W)`` or
    ``(N, H, W)``) outlines the object. A panel whose map is all zero says so. ``label`` names the
    colourbar (the unit of the maps). Returns a ``Figure`` not registered with pyplot.
    """
    arrays = [as_map(m) for m in (maps if isinstance(maps, (list, tuple)) else list(_as_numpy(maps, "maps")))]
    n = len(arrays)
    if n == 0:
        raise ValueError("maps is empty: pass at least one map")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} maps; pass one title per map or None")

    def per_panel(value: Any, what: str, dims: int) -> list[Any]:
        if value is None:
            return [None] * n
        arr = _as_numpy(value, what)
        if arr.ndim == dims:
            return [arr] * n
        if arr.ndim != dims + 1 or arr.shape[0] != n:
            raise ValueError(f"{what} must be one item or one per map ({n}); got shape {tuple(arr.shape)}")
        return list(arr)

    image_list, mask_list = per_panel(images, "images", 3), per_panel(masks, "masks", 2)
    vmin, vmax, cmap = map_scale(arrays, signed)
    cols = min(n, ncols or 6)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size * cols + 0.9, size * rows + (0.35 if titles else 0.0) + (0.3 if suptitle else 0.0)),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    artist = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            artist = draw_map(ax, arrays[i], image=image_list[i], mask=mask_list[i], vmin=vmin, vmax=vmax,
                              cmap=cmap, alpha=alpha, title=None if titles is None else str(titles[i]))
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=artist.norm, cmap=cmap), ax=axes.ravel().tolist(),
                       shrink=0.85, fraction=0.05, pad=0.02)
    bar.set_label(label or ("one scale for all panels; 0 = white" if vmin < 0 else "one scale for all panels"),
                  fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def figure_to_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` with the Agg backend and return the PNG bytes (deterministic for equal input)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib.figure.Figure, got {type(fig).__name__}")
    FigureCanvasAgg(fig)  # attach an Agg canvas: no GUI backend, no pyplot state
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
