"""Key figure of notebook 00: from an image to K feature maps to one logit.

For one test image and the course's GAP model (``camlib.models.load_model("gap")``) the figure
shows the image, the filters of the first convolution (as RGB tiles), the feature maps
``A^k`` of the layer ``"features"`` for the four channels with the largest contribution
``w^c_k F_k`` to the predicted class's logit (``F_k = mean_ij A^k_ij``), and all K
contributions, which add up to ``logit_c - b_c``.
"""

from __future__ import annotations

import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = ["filter_mosaic", "head_contributions", "key_figure"]


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
        f = weight[index].detach().float()
        f = (f - f.min()) / (f.max() - f.min()).clamp_min(1e-12)
        r, c = divmod(index, columns)
        canvas[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = f.permute(1, 2, 0)
    return canvas


def head_contributions(model: nn.Module, x: Tensor, target: int | None = None) -> dict[str, Tensor]:
    """Activations ``A`` of ``model.features``, pooled ``F``, and ``w^c_k F_k`` for the class ``c``.

    ``c`` is ``target`` or the predicted class. Returns a dict with ``A`` (K, h, w), ``F`` (K,),
    ``contributions`` (K,), ``bias`` (scalar), ``logit`` (scalar) and ``target`` (int), where
    ``contributions.sum() + bias == logit`` for a GAP-linear head.
    """
    with torch.no_grad():
        A = model.features(model.norm(x))[0]
        logits = model(x)[0]
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


def key_figure(index: int = 0) -> Figure:
    """Image, first-layer filters, the four most contributing feature maps and all contributions."""
    from camlib.data import CLASSES, test_set
    from camlib.models import load_model

    model = load_model("gap")
    x = test_set().images[index : index + 1]
    parts = head_contributions(model, x)
    order = parts["contributions"].argsort(descending=True)
    top = order[:4].tolist()

    fig = plt.figure(figsize=(11, 4.6), dpi=100)
    grid = fig.add_gridspec(2, 6, height_ratios=(1, 0.9))
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(x[0].permute(1, 2, 0).numpy())
    label = CLASSES[int(test_set().labels[index])]
    ax.set_title(f"{label} (pred. {CLASSES[parts['target']]})", fontsize=9)
    ax.set_axis_off()
    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(filter_mosaic(model.features[0].weight, columns=4).numpy(), interpolation="nearest")
    ax.set_title(f"{model.features[0].weight.shape[0]} first-layer filters", fontsize=9)
    ax.set_axis_off()
    vmax = float(parts["A"][top].max())
    for j, k in enumerate(top):
        ax = fig.add_subplot(grid[0, 2 + j])
        ax.imshow(parts["A"][k].numpy(), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(f"$A^{{{k}}}$:  $w^c_kF_k$ = {float(parts['contributions'][k]):.2f}", fontsize=9)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    values = parts["contributions"][order].numpy()
    ax.bar(range(values.size), values, color=["#c44e52" if v > 0 else "#4c72b0" for v in values])
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("channel k, sorted by contribution")
    ax.set_ylabel("$w^c_k F_k$")
    ax.set_xticks([])
    ax.set_title(
        f"{values.size} contributions to the '{CLASSES[parts['target']]}' logit: "
        f"sum {float(parts['contributions'].sum()):.2f} + bias {float(parts['bias']):.2f} = logit {float(parts['logit']):.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
