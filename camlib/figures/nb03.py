"""Key figure of notebook 03: class activation maps of every class, and the localised region.

For the first correctly classified held-out image of each class (``camlib.data.test_set``) and
the course's GAP network, the figure shows the image with its object outlined, the CAM
``M_c = sum_k w^c_k A^k`` (``camlib.cam``, before any ReLU, 8 x 8) of each of the four classes
on one symmetric colour scale per row (red = evidence for the class, blue = against; the true
class is starred), and the upsampled ``ReLU(M_c)`` of the true class over the image with the
region above 20 % of its maximum outlined (the CAM paper's threshold).
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from .nb02 import example_images

__all__ = ["example_images", "key_figure"]

THRESHOLD = 0.2


def key_figure() -> Figure:
    """Rows: one test image per class; columns: image, CAM of each class, upsampled true-class map."""
    import camlib
    from camlib.data import CLASSES
    from camlib.models import load_model

    model = load_model("gap")
    images, labels, masks = example_images(model)
    n, classes = images.shape[0], len(CLASSES)
    # all classes at once: one camlib.cam call per class on the whole batch
    raws = torch.stack([camlib.cam(model, images, target=k).raw for k in range(classes)], dim=1)  # (n, C, h, w)
    true_maps = camlib.upsample(raws[torch.arange(n), labels].clamp(min=0), tuple(images.shape[-2:]))

    fig = Figure(figsize=(1.8 * (classes + 2), 1.8 * n + 0.5), dpi=100)
    axes = fig.subplots(n, classes + 2, squeeze=False)
    for i in range(n):
        truth = int(labels[i])
        axes[i, 0].imshow(images[i].permute(1, 2, 0).numpy())
        axes[i, 0].contour(masks[i].numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_title(f"image: {CLASSES[truth]}", fontsize=9)
        limit = float(raws[i].abs().max()) or 1.0
        for k in range(classes):
            axes[i, k + 1].imshow(raws[i, k].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
            star = " *" if k == truth else ""
            axes[i, k + 1].set_title(f"CAM '{CLASSES[k]}'{star}", fontsize=9)
        heat = true_maps[i]
        axes[i, -1].imshow(images[i].permute(1, 2, 0).numpy())
        axes[i, -1].imshow(heat.numpy(), cmap="inferno", alpha=0.5)
        if float(heat.max()) > 0:
            axes[i, -1].contour((heat > THRESHOLD * heat.max()).numpy(), levels=[0.5], colors="white",
                                linewidths=1)
        axes[i, -1].contour(masks[i].numpy(), levels=[0.5], colors="black", linewidths=0.8, linestyles="dashed")
        axes[i, -1].set_title("> 20 % of max", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("Class activation maps M_c = sum_k w_k^c A^k (red: for the class, blue: against)", fontsize=10)
    fig.tight_layout()
    return fig
