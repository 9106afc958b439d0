"""Figures of notebook 05: Grad-CAM++, nearly Grad-CAM with positive gradients, and what that costs.

Grad-CAM++ sums its weighted gradients where Grad-CAM+ averages them, so its maps are about ``Z / 2``
times larger (``alpha`` is close to 1/2). To compare the three methods on ONE colour scale, Grad-CAM++
maps are drawn multiplied by ``2 / Z`` (the panels say so); all maps are computed with camlib at the
layer ``"features"`` and drawn over their image with the objects outlined.

* :func:`key_figure`: ``alpha = 1 / (2 + s_k g)`` over the histogram of the products ``s_k g`` measured
  on the ``fc`` model; the three maps of the thread's three-triangle image; and the true-class and
  wrong-class maps of the thread's triangle, where Grad-CAM+ and Grad-CAM++ lose the class.
* :func:`sandwich_figure`: every channel's ``2 w++ / W+`` against ``s_k g_max``, inside the bound.
* :func:`class_figure`: one image, every class, the three methods (one scale per method).
* :func:`instances_figure`: images with several instances, the three methods (one scale per image).
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

import camlib
from camlib._hooks import predict
from camlib.data import CLASSES, THREAD
from camlib.plotting import draw_map, map_scale, to_display

__all__ = ["METHODS", "products", "method_maps", "key_figure", "sandwich_figure", "class_figure",
           "instances_figure"]

#: the three methods compared, with the factor that puts them in the same units (Grad-CAM++ sums)
METHODS: tuple[str, ...] = ("Grad-CAM", "Grad-CAM+", "Grad-CAM++ x 2/Z")


def _colourbar(fig, artist, axes, label: str) -> None:
    bar = fig.colorbar(artist, ax=axes, shrink=0.8, fraction=0.05, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def products(n: int = 64) -> Tensor:
    """The products ``s_k g_ij`` at the positions with ``g_ij > 0`` (fc model, held-out set)."""
    shapes = camlib.data.test_set()[:n]
    fc = camlib.models.load_model("fc")
    res = camlib.grad_cam_plus(fc, shapes.images, "features", target=shapes.labels)
    s = res.activations.sum(dim=(2, 3), keepdim=True)
    prod = (s * res.gradients).expand_as(res.gradients)
    return prod[res.gradients > 0].double()


def method_maps(model: nn.Module, x: Tensor, target, layer: str = "features") -> dict[str, Tensor]:
    """Grad-CAM, Grad-CAM+ and Grad-CAM++ (times ``2 / Z``) maps ``(N, h, w)``, keyed by :data:`METHODS`."""
    gc = camlib.grad_cam(model, x, layer, target=target)
    z = gc.map.shape[-1] * gc.map.shape[-2]
    return {
        METHODS[0]: gc.map,
        METHODS[1]: camlib.grad_cam_plus(model, x, layer, target=target).map,
        METHODS[2]: camlib.grad_cam_pp(model, x, layer, target=target).map * (2.0 / z),
    }


def _alpha_panel(ax, prod: Tensor) -> None:
    lo = max(float(torch.quantile(prod, 0.001)), 1e-8)
    hi = max(2.0, float(prod.max()) * 1.5)
    xs = torch.logspace(torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item(), 200,
                        dtype=torch.float64)
    ax.plot(xs, 1.0 / (2.0 + xs), color="C0", label=r"$\alpha = 1/(2+s_k g)$")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel(r"$s_k\,g_{ij}$ at positive gradients (log scale)", fontsize=8)
    ax.set_ylabel(r"$\alpha$")
    ax.set_ylim(0.0, 0.55)
    ax.set_zorder(2)
    ax.patch.set_visible(False)
    twin = ax.twinx()
    twin.hist(prod[prod >= lo].clamp_max(hi).numpy(), bins=xs[::4].numpy(), color="C1", alpha=0.5)
    twin.set_yticks([])
    ax.set_title(f"fc model, 64 images: histogram of $s_k g$\nmedian {float(prod.median()):.2g}, "
                 f"max {float(prod.max()):.2g}", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")


def _row(fig, axes, image: Tensor, maps: list[tuple[str, Tensor]], outline: Tensor, label: str, first: str) -> None:
    axes[0].imshow(to_display(image))
    axes[0].contour(outline.double().numpy(), levels=[0.5], colors="white", linewidths=0.8)
    axes[0].set_title(first, fontsize=9)
    axes[0].set_axis_off()
    vmin, vmax, cmap = map_scale([m for _, m in maps], signed=False)
    for ax, (title, m) in zip(axes[1:], maps):
        artist = draw_map(ax, m, image=image, mask=outline, vmin=vmin, vmax=vmax, cmap=cmap, title=title)
    _colourbar(fig, artist, list(axes[1:]), label)


def key_figure() -> Figure:
    """alpha(s g) with the measured products; three maps on three triangles; true and wrong class maps."""
    prod = products()
    thread = camlib.data.thread()
    fc = camlib.models.load_model("fc")
    gap = camlib.models.load_model("gap")
    fig = Figure(figsize=(13.0, 5.6), dpi=100, layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.0, 2.7])
    _alpha_panel(left.subplots(1, 1), prod)
    top, bottom = right.subfigures(2, 1)

    multi = thread[THREAD["multi"]:THREAD["multi"] + 1]
    maps = method_maps(fc, multi.images, multi.labels)
    _row(top, top.subplots(1, 4), multi.images[0], [(f"{k} (fc)", m[0]) for k, m in maps.items()],
         multi.object_masks[0].any(dim=0), "logit per position (one scale)",
         f"3 x {CLASSES[int(multi.labels[0])]}")

    tri = thread[THREAD["triangle"]:THREAD["triangle"] + 1]
    right_class, wrong = int(tri.labels[0]), CLASSES.index("circle")
    both = method_maps(gap, tri.images.expand(2, -1, -1, -1), [right_class, wrong])
    panels = []
    for method in (METHODS[0], METHODS[2]):
        a, b = both[method][0].flatten(), both[method][1].flatten()
        cosine = float(a @ b / (a.norm() * b.norm()).clamp_min(1e-30))
        name = method.replace(" x 2/Z", "")
        panels += [(f"{name}\nclass {CLASSES[right_class]}", both[method][0]),
                   (f"{name}\nclass {CLASSES[wrong]} (cos {cosine:.2f})", both[method][1])]
    _row(bottom, bottom.subplots(1, 5), tri.images[0], panels, tri.masks[0],
         "logit per position (one scale;\nGrad-CAM++ x 2/Z)", "gap model, two classes")
    fig.suptitle("Grad-CAM++ is nearly Grad-CAM with positive gradients (top), and like it, it loses the class "
                 "(bottom: the circle map of a triangle keeps the triangle's shape)", fontsize=10)
    return fig


def sandwich_figure(channels: dict[str, tuple[Tensor, Tensor]]) -> Figure:
    """Each channel's ``2 w++_k / W+_k`` against ``s_k g^k_max``, with the bound ``2 / (2 + x) <= . <= 1``.

    ``channels`` maps a model name to ``(products s_k g_max, ratios 2 w++ / W+)``, both 1-D, for the
    channels with ``W+ > 0``.
    """
    fig = Figure(figsize=(5.6, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    top = max(float(p.max()) for p, _ in channels.values()) * 1.1
    xs = torch.linspace(0.0, top, 200, dtype=torch.float64)
    ax.fill_between(xs, 2.0 / (2.0 + xs), 1.0, color="0.9", label="allowed by the bound")
    ax.plot(xs, 2.0 / (2.0 + xs), color="k", lw=1, label=r"lower bound $2/(2+s_k g_{\max})$")
    for (name, (p, r)), colour in zip(channels.items(), ("C0", "C3")):
        ax.scatter(p, r, s=4, alpha=0.4, color=colour, label=f"{name} model: one dot per image and channel")
    ax.set_xlabel(r"$s_k\,g^k_{\max}$")
    ax.set_ylabel(r"$2\,w^{++}_k / W^+_k$")
    ax.set_ylim(0.6, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Grad-CAM++ = Grad-CAM+ (sums) shrunk channel by channel", fontsize=9)
    return fig


def class_figure(model: nn.Module, x: Tensor, outline: Tensor | None = None) -> Figure:
    """One image ``(1, 3, H, W)``, every class (columns), the three methods (rows, one scale per row)."""
    n = len(CLASSES)
    maps = method_maps(model, x.expand(n, -1, -1, -1), list(range(n)))
    p = torch.softmax(predict(model, x), dim=1)[0]
    fig = Figure(figsize=(2.2 * n + 1.0, 2.2 * len(METHODS) + 0.4), dpi=80, layout="constrained")
    rows = fig.subfigures(len(METHODS), 1)
    for row, (method, m) in zip(rows, maps.items()):
        axes = row.subplots(1, n)
        vmin, vmax, cmap = map_scale(list(m), signed=False)
        for c, ax in enumerate(axes):
            artist = draw_map(ax, m[c], image=x[0], mask=outline, vmin=vmin, vmax=vmax, cmap=cmap,
                              title=f"{CLASSES[c]} (p = {float(p[c]):.2f})")
        _colourbar(row, artist, list(axes), "one scale per row")
        row.suptitle(method, fontsize=10)
    return fig


def instances_figure(model: nn.Module, shapes, rows: int = 3) -> Figure:
    """The first ``rows`` images of ``shapes`` (several instances each), with the three methods' maps of
    the labelled class on one scale per image; every instance of the label is outlined."""
    fig = Figure(figsize=(10.5, 2.3 * rows), dpi=80, layout="constrained")
    figs = fig.subfigures(rows, 1)
    maps = method_maps(model, shapes.images[:rows], shapes.labels[:rows])
    predicted = predict(model, shapes.images[:rows]).argmax(dim=1)
    for n, sub in enumerate(figs):
        outline = (shapes.object_masks[n] & (shapes.object_classes[n] == shapes.labels[n])[:, None, None]).any(dim=0)
        verdict = "right" if int(predicted[n]) == int(shapes.labels[n]) else f"wrong: {CLASSES[int(predicted[n])]}"
        _row(sub, sub.subplots(1, 4), shapes.images[n], [(k, v[n]) for k, v in maps.items()], outline,
             "one scale per row", f"label {CLASSES[int(shapes.labels[n])]} ({verdict})")
    return fig
