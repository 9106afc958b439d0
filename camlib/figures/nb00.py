"""Key figure of notebook 00: from an image to K feature maps to one logit.

For the thread's triangle (``camlib.data.thread()[THREAD_TRIANGLE]``) and the course's GAP model
(``camlib.models.load_model("gap")``) the figure shows, left to right: the image with the
receptive field of one cell of the last feature map (the 46 x 46 pixels that cell sees); the
first layer's response maps of an edge, a colour and a background channel
(:func:`first_layer_roles`); the three feature maps ``A^k`` of the layer ``"features"`` with the
largest contribution ``w^c_k F_k`` to the predicted class's logit (``F_k = mean_ij A^k_ij``), on one
colour scale, with that cell marked; and below, all K contributions, which add up to
``logit_c - b_c``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle
from matplotlib.figure import Figure
from torch import Tensor, nn

from .._hooks import predict_with_layer
from ..postprocess import normalize

__all__ = ["filter_mosaic", "head_contributions", "first_layer_roles", "receptive_field", "key_figure"]


def filter_mosaic(weight: Tensor, columns: int = 8, gap: int = 1) -> Tensor:
    """Tile RGB filters (K, 3, kh, kw) into one (rows*(kh+gap), columns*(kw+gap), 3) image in [0, 1].

    Each filter is min-max scaled on its own, so the tiles show patterns, not magnitudes.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected RGB filters of shape (K, 3, kh, kw), got {tuple(weight.shape)}.")
    k, _, kh, kw = weight.shape
    rows = -(-k // columns)
    canvas = torch.ones(rows * (kh + gap) - gap, columns * (kw + gap) - gap, 3)
    for index in range(k):
        f = normalize(weight[index : index + 1].detach().float())[0]
        r, c = divmod(index, columns)
        canvas[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = f.permute(1, 2, 0)
    return canvas


def head_contributions(model: nn.Module, x: Tensor, target: int | None = None) -> dict[str, Tensor]:
    """Activations ``A`` of ``model.features``, pooled ``F``, and ``w^c_k F_k`` for the class ``c``.

    ``c`` is ``target`` or the predicted class. Returns a dict with ``A`` (K, h, w), ``F`` (K,),
    ``contributions`` (K,), ``bias`` (scalar), ``logit`` (scalar) and ``target`` (int), where
    ``contributions.sum() + bias == logit`` for a GAP-linear head.
    """
    out, acts = predict_with_layer(model, x, "features")
    A, logits = acts[0], out[0]
    c = int(logits.argmax()) if target is None else int(target)
    F = A.mean(dim=(1, 2))
    return {
        "A": A,
        "F": F,
        "contributions": model.fc.weight[c].detach() * F,
        "bias": model.fc.bias[c].detach(),
        "logit": logits[c],
        "target": c,
    }


def first_layer_roles(maps: Tensor, mask: Tensor, band: int = 2) -> list[str]:
    """Name what each response map (K, H, W) of an image responds to: ``"edge"``, ``"colour"``,
    ``"background"`` or ``"silent"``.

    The image is split into the object's outline (pixels within ``band`` pixels of the mask's
    boundary), its inside (the rest of the mask) and the background (the rest). A channel's role is
    the region where its *mean* response is largest: "edge" for the outline, "colour" for the inside
    (the channel fires on the object's colour), "background" for the background; "silent" when the
    map is zero everywhere. The rule reads one image: a colour channel that fills a blue object
    here lights up a blue background elsewhere.
    """
    m = mask.to(maps.dtype)[None, None]
    grown = F.max_pool2d(m, 2 * band + 1, 1, band)[0, 0] > 0
    shrunk = -F.max_pool2d(-m, 2 * band + 1, 1, band)[0, 0] > 0
    regions = (grown & ~shrunk, shrunk, ~grown)
    roles = []
    for a in maps:
        means = torch.stack([a[r].mean() if r.any() else a.new_zeros(()) for r in regions])
        roles.append(("edge", "colour", "background")[int(means.argmax())] if bool(a.max() > 0) else "silent")
    return roles


def receptive_field(features: nn.Module, row: int, col: int, size: int = 64) -> tuple[int, int, int, int]:
    """Pixels ``(top, left, bottom, right)`` (inclusive) of a ``size`` x ``size`` input that cell
    ``(row, col)`` of ``features``' output can depend on, measured with autograd.

    A copy of ``features`` with every ReLU replaced by the identity and every max-pool by an average
    pool of the same window is differentiated: then every pixel that some path reaches gets a
    non-zero gradient, whichever ReLUs are active and whichever pixel wins a pool in a real image.
    The field of a cell far from the border is ``r x r`` with ``r = 1 + sum_l (k_l - 1) j_l`` (kernel
    ``k_l`` of layer ``l``, ``j_l`` the product of the strides before it); near the border it is cut.
    """
    linear = copy.deepcopy(features).double()
    for name, module in list(linear.named_children()):
        if isinstance(module, nn.ReLU):
            setattr(linear, name, nn.Identity())
        elif isinstance(module, nn.MaxPool2d):
            setattr(linear, name, nn.AvgPool2d(module.kernel_size, module.stride, module.padding))
    x = torch.ones(1, linear[0].in_channels, size, size, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(linear(x)[0, :, row, col].sum(), x)
    rows, cols = grad.abs().sum(dim=(0, 1)).nonzero(as_tuple=True)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def key_figure(index: int | None = None) -> Figure:
    """The triangle's receptive field, first-layer detectors, top feature maps and all contributions."""
    from camlib.data import CLASSES, THREAD_TRIANGLE, thread
    from camlib.models import load_model
    from camlib.plotting import HEAT_CMAP, draw_map

    index = THREAD_TRIANGLE if index is None else index
    model = load_model("gap")
    shapes = thread()
    x, mask = shapes.images[index : index + 1], shapes.masks[index]
    parts = head_contributions(model, x)
    order = parts["contributions"].argsort(descending=True)
    top = order[:3].tolist()
    A = parts["A"]
    step = x.shape[-1] // A.shape[-1]  # input pixels per cell of the last map
    cell = divmod(int(A[top[0]].argmax()), A.shape[-1])
    box = receptive_field(model.features, *cell, size=x.shape[-1])
    first = torch.relu(predict_with_layer(model, x, "features.0")[1])[0]
    roles = first_layer_roles(first, mask)
    shown = [(role, roles.index(role)) for role in ("edge", "colour", "background") if role in roles]

    fig = plt.figure(figsize=(13, 5.2), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, 7, height_ratios=(1, 0.85))
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(x[0].permute(1, 2, 0).numpy())
    ax.add_patch(Rectangle((box[1] - 0.5, box[0] - 0.5), box[3] - box[1] + 1, box[2] - box[0] + 1, fill=False,
                           edgecolor="white", linewidth=1.5))
    ax.add_patch(Rectangle((cell[1] * step - 0.5, cell[0] * step - 0.5), step, step, fill=False,
                           edgecolor="yellow", linewidth=1.2))
    ax.set_title(f"{CLASSES[int(shapes.labels[index])]}: one cell (yellow)\nsees {box[2] - box[0] + 1} x "
                 f"{box[3] - box[1] + 1} pixels (white)", fontsize=8)
    ax.set_axis_off()
    for j, (role, k) in enumerate(shown):
        ax = fig.add_subplot(grid[0, 1 + j])
        first_artist = draw_map(ax, first[k] / first[k].max(), vmin=0.0, vmax=1.0, cmap=HEAT_CMAP,
                                title=f"layer 1, channel {k}:\n{role} detector")
    fig.colorbar(first_artist, ax=fig.axes[-len(shown):], fraction=0.04, pad=0.02, label="response / its maximum")
    vmax = float(A[top].max())
    for j, k in enumerate(top):
        ax = fig.add_subplot(grid[0, 4 + j])
        artist = draw_map(ax, A[k], vmin=0.0, vmax=vmax, cmap=HEAT_CMAP,
                          title=f"last layer $A^{{{k}}}$\n$w^c_kF_k$ = {float(parts['contributions'][k]):.2f}")
        ax.add_patch(Rectangle((cell[1] - 0.5, cell[0] - 0.5), 1, 1, fill=False, edgecolor="yellow", linewidth=1.2))
    fig.colorbar(artist, ax=fig.axes[-3:], fraction=0.04, pad=0.02, label="activation (one scale)")
    ax = fig.add_subplot(grid[1, :])
    values = parts["contributions"][order].numpy()
    ax.bar(range(values.size), values, color=["#c44e52" if v > 0 else "#4c72b0" for v in values])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("channel k of the last layer, sorted by contribution")
    ax.set_ylabel("$w^c_k F_k$")
    ax.set_xticks([])
    ax.set_title(
        f"{values.size} contributions to the '{CLASSES[parts['target']]}' logit: "
        f"sum {float(parts['contributions'].sum()):.2f} + bias {float(parts['bias']):.2f} = logit {float(parts['logit']):.2f}",
        fontsize=9,
    )
    fig.suptitle("Layer 1 finds edges and colours; the last layer's maps keep the layout; the head adds up one "
                 "number per map", fontsize=10)
    return fig
