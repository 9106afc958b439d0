"""Key figure of notebook 05: why Grad-CAM++ is nearly Grad-CAM with positive gradients.

Left: ``alpha = 1 / (2 + s_k g)`` (eq. 19 of Grad-CAM++) against the product ``s_k g``, over the
histogram of the products measured on the ``fc`` model (layer ``"features"``, positive gradients of
the true-class logit, 64 held-out images). Where the products are small, ``alpha`` is close to 1/2
and Grad-CAM++ is half of Grad-CAM+.

Right: one image with three instances of its class (``make_shapes(..., instances=3)``) and the
Grad-CAM, Grad-CAM+ and Grad-CAM++ maps of the ``fc`` model, all computed with camlib.
"""

from __future__ import annotations

import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import camlib
from camlib.data import CLASSES
from camlib.plotting import overlay, to_display

__all__ = ["products", "key_figure"]

MULTI_SEED = 11
MULTI_INDEX = 0


def products(n: int = 64) -> torch.Tensor:
    """The products ``s_k g_ij`` at the positions with ``g_ij > 0`` (fc model, held-out set)."""
    shapes = camlib.data.test_set()[:n]
    fc = camlib.models.load_model("fc")
    res = camlib.grad_cam_plus(fc, shapes.images, "features", target=shapes.labels)
    s = res.activations.sum(dim=(2, 3), keepdim=True)
    prod = (s * res.gradients).expand_as(res.gradients)
    return prod[res.gradients > 0].double()


def key_figure() -> Figure:
    """alpha(s g) with the measured products, and the three maps on a three-instance image."""
    prod = products()
    fig = plt.figure(figsize=(10.0, 2.9), dpi=100)
    grid = fig.add_gridspec(1, 5, width_ratios=[2.2, 1, 1, 1, 1])
    ax = fig.add_subplot(grid[0, 0])
    lo = max(float(torch.quantile(prod, 0.001)), 1e-8)
    hi = max(2.0, float(prod.max()) * 1.5)
    xs = torch.logspace(torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item(), 200,
                        dtype=torch.float64)
    ax.plot(xs, 1.0 / (2.0 + xs), color="C0", label=r"$\alpha = 1/(2+s_k g)$")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel(r"$s_k\,g_{ij}$ at positive gradients (log scale)")
    ax.set_ylabel(r"$\alpha$")
    ax.set_ylim(0.0, 0.55)
    ax.set_zorder(2)
    ax.patch.set_visible(False)
    twin = ax.twinx()
    twin.hist(prod[prod >= lo].clamp_max(hi).numpy(), bins=xs[::4].numpy(), color="C1", alpha=0.5)
    twin.set_yticks([])
    ax.set_title(f"fc model: median {float(prod.median()):.2g}, max {float(prod.max()):.2g}", fontsize=9)
    ax.legend(fontsize=8, loc="center left")

    multi = camlib.data.make_shapes(MULTI_INDEX + 1, seed=MULTI_SEED, instances=3)[MULTI_INDEX:]
    fc = camlib.models.load_model("fc")
    x, t = multi.images, multi.labels
    maps = [
        ("Grad-CAM", camlib.grad_cam(fc, x, "features", target=t).map[0]),
        ("Grad-CAM+", camlib.grad_cam_plus(fc, x, "features", target=t).map[0]),
        ("Grad-CAM++", camlib.grad_cam_pp(fc, x, "features", target=t).map[0]),
    ]
    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(to_display(x[0]))
    ax.set_title(f"3 x {CLASSES[int(t[0])]}", fontsize=9)
    ax.set_axis_off()
    for col, (title, m) in enumerate(maps, start=2):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(overlay(x[0], m, alpha=0.5) if float(m.max()) > 0 else to_display(x[0]) * 0.5)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
