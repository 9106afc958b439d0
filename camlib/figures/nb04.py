"""Figures of notebook 04: Grad-CAM, and how it generalises CAM.

All maps explain a held-out image of the course's thread (:func:`camlib.data.thread`) at the layer
``"features"`` unless said otherwise; they are drawn at the layer's resolution, bilinearly resized and
laid over the image, with the object outlined. Panels that are compared share one colour scale and a
colourbar (:func:`camlib.plotting.map_scale`); a map that is zero everywhere says so.

* :func:`key_figure` (the triangle): ReLU(CAM) / Z and Grad-CAM of the ``gap`` model (equal, panel
  for panel), Grad-CAM of the ``fc`` model (no CAM exists for it), the counterfactual map, all in logit
  units on one scale; and the Grad-CAM map of the softmax probability on its own scale (a
  probability, about a hundred times smaller).
* :func:`ingredients_figure`: the definition ``M = sum_k alpha_k A^k`` drawn term by term.
* :func:`layer_figure`: Grad-CAM at every ReLU of the feature extractor, after and before its ReLU.
* :func:`class_figure`: one image explained for every class with the logit, the counterfactual and the
  softmax probability.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import nn

import camlib
from camlib._hooks import predict
from camlib.data import CLASSES, THREAD
from camlib.plotting import draw_map, map_scale, to_display

__all__ = ["IMAGE_INDEX", "panels", "key_figure", "ingredients_figure", "relu_layers", "layer_figure",
           "class_figure"]

#: Index in :func:`camlib.data.thread` of the image of the key figure (the triangle).
IMAGE_INDEX = THREAD["triangle"]


def _colourbar(fig: Figure, artist, axes, label: str) -> None:
    bar = fig.colorbar(artist, ax=axes, shrink=0.8, fraction=0.05, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def panels(index: int = IMAGE_INDEX) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]], tuple[str, torch.Tensor]]:
    """The image ``(1, 3, H, W)``, the ``(title, map (h, w))`` pairs in logit units, and the softmax pair."""
    shapes = camlib.data.thread()[index : index + 1]
    x, target = shapes.images, shapes.labels
    gap = camlib.models.load_model("gap")
    fc = camlib.models.load_model("fc")
    cam = camlib.cam(gap, x, target=target)
    z = cam.raw.shape[-1] * cam.raw.shape[-2]
    logit_maps = [
        ("ReLU(CAM) / Z (gap)", cam.map[0] / z),
        ("Grad-CAM (gap)", camlib.grad_cam(gap, x, "features", target=target).map[0]),
        ("Grad-CAM (fc head)", camlib.grad_cam(fc, x, "features", target=target).map[0]),
        ("counterfactual (gap)", camlib.counterfactual(gap, x, "features", target=target).map[0]),
    ]
    softmax = ("Grad-CAM of softmax (gap)", camlib.grad_cam(gap, x, "features", target=target, score="softmax").map[0])
    return x, logit_maps, softmax


def key_figure() -> Figure:
    """The triangle: CAM / Z, Grad-CAM on two heads and the counterfactual on one scale; softmax on its own."""
    x, logit_maps, (soft_title, soft_map) = panels()
    shapes = camlib.data.thread()[IMAGE_INDEX : IMAGE_INDEX + 1]
    image, mask = x[0], shapes.masks[0]
    fig = Figure(figsize=(13.0, 2.9), dpi=100, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[5.6, 1.5])
    axes = left.subplots(1, 5)
    axes[0].imshow(to_display(image))
    axes[0].set_title(f"held-out image ({CLASSES[int(shapes.labels[0])]})", fontsize=9)
    axes[0].set_axis_off()
    vmin, vmax, cmap = map_scale([m for _, m in logit_maps], signed=False)
    for ax, (title, m) in zip(axes[1:], logit_maps):
        artist = draw_map(ax, m, image=image, mask=mask, vmin=vmin, vmax=vmax, cmap=cmap, title=title)
    _colourbar(left, artist, list(axes[1:]), "logit per position (one scale)")
    ax = right.subplots(1, 1)
    lo, hi, soft_cmap = map_scale(soft_map, signed=False)
    artist = draw_map(ax, soft_map, image=image, mask=mask, vmin=lo, vmax=hi, cmap=soft_cmap, title=soft_title)
    _colourbar(right, artist, ax, "probability per position (own scale)")
    fig.suptitle("Grad-CAM = CAM / Z on a GAP head, it works where CAM does not, and the score explained "
                 "changes the map", fontsize=10)
    return fig


def ingredients_figure(model: nn.Module, x: torch.Tensor, target: int, mask: torch.Tensor | None = None,
                       layer: str = "features", shown: int = 4) -> Figure:
    """``M = sum_k alpha_k A^k`` term by term for one image ``x`` ``(1, 3, H, W)``.

    The ``shown`` channels with the largest ``|alpha_k| * mean(A^k)`` (their share of the score) are drawn
    on one activation scale with their weights in the titles; then the pre-ReLU map ``M`` (signed, white
    at 0) and the Grad-CAM map ``ReLU(M)`` over the image.
    """
    res = camlib.grad_cam(model, x, layer, target=target)
    a, w = res.activations[0], res.weights[0]
    share = w * a.mean(dim=(1, 2))
    top = share.abs().argsort(descending=True)[:shown].tolist()
    fig = Figure(figsize=(2.0 * (shown + 2) + 1.6, 2.7), dpi=100, layout="constrained")
    left, mid, right = fig.subfigures(1, 3, width_ratios=[2.0 * shown + 0.6, 2.6, 2.6])
    axes = left.subplots(1, shown)
    vmin, vmax, cmap = map_scale([a[k] for k in top], signed=False)
    for ax, k in zip(axes, top):
        artist = draw_map(ax, a[k], vmin=vmin, vmax=vmax, cmap=cmap,
                          title=f"$A^{{{k}}}$, $\\alpha_{{{k}}}$ = {float(w[k]):+.4f}")
    _colourbar(left, artist, list(axes), "activation (one scale)")
    ax = mid.subplots(1, 1)
    lo, hi, signed_cmap = map_scale(res.raw[0], signed=True)
    artist = draw_map(ax, res.raw[0], vmin=lo, vmax=hi, cmap=signed_cmap,
                      title=r"$M = \sum_k \alpha_k A^k$ (all %d)" % a.shape[0])
    _colourbar(mid, artist, ax, "logit per position; 0 = white")
    ax = right.subplots(1, 1)
    artist = draw_map(ax, res.map[0], image=x[0], mask=mask, vmin=0.0, vmax=hi, cmap=map_scale(res.map[0], signed=False)[2],
                      title="Grad-CAM = ReLU(M)")
    _colourbar(right, artist, ax, "logit per position")
    return fig


def relu_layers(model: nn.Module) -> list[str]:
    """The dotted names of the ReLUs of ``model.features``; the last one is ``"features"`` itself."""
    names = [f"features.{name}" for name, module in model.features.named_children() if isinstance(module, nn.ReLU)]
    names[-1] = "features"
    return names


def layer_figure(model: nn.Module, x: torch.Tensor, target: int, mask: torch.Tensor | None = None,
                 results: dict | None = None) -> Figure:
    """Grad-CAM of class ``target`` at every ReLU of the feature extractor, for one image ``(1, 3, H, W)``.

    Top row: the map ``ReLU(M)`` over the image; bottom row: ``M`` before the ReLU (signed, white at 0).
    Each layer has its own colour scale and colourbar: the layers' activations have different units, so
    one scale across layers would compare nothing. ``results`` (layer name -> ``camlib.grad_cam`` result
    for this image and class) reuses results already computed.
    """
    layers = relu_layers(model)
    results = results or {}
    fig = Figure(figsize=(2.6 * (len(layers) + 1), 5.2), dpi=90, layout="constrained")
    cols = fig.subfigures(1, len(layers) + 1)
    ax = cols[0].subplots(2, 1)
    ax[0].imshow(to_display(x[0]))
    ax[0].set_title(f"class {CLASSES[int(target)]}", fontsize=9)
    for a in ax:
        a.set_axis_off()
    ax[1].text(0.5, 0.5, "top: ReLU(M)\nover the image\n\nbottom: M before\nthe ReLU\n(white = 0)",
               ha="center", va="center", fontsize=9, transform=ax[1].transAxes)
    for col, layer in zip(cols[1:], layers):
        res = results.get(layer) or camlib.grad_cam(model, x, layer, target=target)
        top, bottom = col.subplots(2, 1)
        positive = int((res.map[0] > 0).sum())
        lo, hi, cmap = map_scale(res.map[0], signed=False)
        artist = draw_map(top, res.map[0], image=x[0], mask=mask, vmin=lo, vmax=hi, cmap=cmap,
                          title=f"{layer} {tuple(res.map.shape[1:])}\n> 0 at {positive} of {res.map[0].numel()}")
        _colourbar(col, artist, top, "")
        lo, hi, cmap = map_scale(res.raw[0], signed=True)
        artist = draw_map(bottom, res.raw[0], vmin=lo, vmax=hi, cmap=cmap)
        _colourbar(col, artist, bottom, "")
    return fig


def class_figure(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, layer: str = "features") -> Figure:
    """One image ``(1, 3, H, W)`` explained for every class (rows).

    Columns: Grad-CAM of the logit and the counterfactual map, on ONE scale (both in logit units), and
    Grad-CAM of the softmax probability on its own scale. Row titles give each map's largest value.
    """
    n = len(CLASSES)
    copies, classes = x.expand(n, *x.shape[1:]), list(range(n))   # one batch: the image once per class
    logit = list(camlib.grad_cam(model, copies, layer, target=classes).map)
    counter = list(camlib.counterfactual(model, copies, layer, target=classes).map)
    soft = list(camlib.grad_cam(model, copies, layer, target=classes, score="softmax").map)
    p = torch.softmax(predict(model, x), dim=1)[0]
    fig = Figure(figsize=(9.6, 2.1 * n + 0.6), dpi=80, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[3.3, 1.5])
    axes = left.subplots(n, 3)
    vmin, vmax, cmap = map_scale(logit + counter, signed=False)
    for c in range(n):
        axes[c, 0].imshow(to_display(x[0]))
        axes[c, 0].set_axis_off()
        axes[c, 0].set_title(f"class {CLASSES[c]} (p = {float(p[c]):.3f})", fontsize=9)
        artist = draw_map(axes[c, 1], logit[c], image=x[0], mask=mask, vmin=vmin, vmax=vmax, cmap=cmap,
                          title=f"logit map, max {float(logit[c].max()):.3f}")
        draw_map(axes[c, 2], counter[c], image=x[0], mask=mask, vmin=vmin, vmax=vmax, cmap=cmap,
                 title=f"counterfactual, max {float(counter[c].max()):.3f}")
    _colourbar(left, artist, list(axes[:, 1:].ravel()), "logit per position (one scale)")
    axes = right.subplots(n, 1)
    lo, hi, soft_cmap = map_scale(soft, signed=False)
    for c in range(n):
        artist = draw_map(axes[c], soft[c], image=x[0], mask=mask, vmin=lo, vmax=hi, cmap=soft_cmap,
                          title=f"softmax map, max {float(soft[c].max()):.1e}")
    _colourbar(right, artist, list(axes), "probability per position (own scale)")
    return fig
