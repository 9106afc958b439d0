"""Key figure of notebook 03: class activation maps of every class, and the localised region.

For the four one-class images of the thread (``camlib.data.thread()``: circle, square, triangle,
cross) and the course's GAP network, the figure shows the image with its object outlined, the CAM
``M_c = sum_k w^c_k A^k`` (``camlib.cam``, before any ReLU, 8 x 8) of each of the four classes on one
symmetric colour scale per row with its colourbar (red = evidence for the class, blue = against; the
true class is starred), and the upsampled ``ReLU(M_c)`` of the true class over the image in grey with
the region above 20 % of its maximum outlined (the CAM paper's threshold) and the object dashed.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from .nb02 import example_images

__all__ = ["example_images", "key_figure"]

THRESHOLD = 0.2


def key_figure() -> Figure:
    """Rows: the thread's circle, square, triangle, cross; columns: image, CAM of each class, upsampled true-class map."""
    import camlib
    from camlib.data import CLASSES
    from camlib.models import load_model
    from camlib.plotting import HEAT_CMAP, SIGNED_CMAP, draw_map

    model = load_model("gap")
    images, labels, masks = example_images()
    n, classes = images.shape[0], len(CLASSES)
    # all classes at once: one camlib.cam call per class on the whole batch
    raws = torch.stack([camlib.cam(model, images, target=k).raw for k in range(classes)], dim=1)  # (n, C, h, w)
    true_maps = camlib.upsample(raws[torch.arange(n), labels].clamp(min=0), tuple(images.shape[-2:]))

    fig = Figure(figsize=(1.9 * (classes + 2) + 1.6, 1.9 * n + 0.5), dpi=100, layout="constrained")
    axes = fig.subplots(n, classes + 2, squeeze=False)
    for i in range(n):
        truth = int(labels[i])
        axes[i, 0].imshow(images[i].permute(1, 2, 0).numpy())
        axes[i, 0].contour(masks[i].numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_title(f"image: {CLASSES[truth]}", fontsize=9)
        axes[i, 0].set_axis_off()
        limit = float(raws[i].abs().max()) or 1.0
        for k in range(classes):
            star = " *" if k == truth else ""
            artist = draw_map(axes[i, k + 1], raws[i, k], mask=masks[i], vmin=-limit, vmax=limit, cmap=SIGNED_CMAP,
                              title=f"CAM '{CLASSES[k]}'{star}")
        fig.colorbar(artist, ax=axes[i, 1 : classes + 1].tolist(), shrink=0.8, pad=0.01, label="$M_c$")
        heat = true_maps[i]
        draw_map(axes[i, -1], heat, image=images[i], vmin=0.0, vmax=float(heat.max()) or 1.0, cmap=HEAT_CMAP,
                 alpha=0.55, title="> 20 % of max (white)")
        if float(heat.max()) > 0:
            axes[i, -1].contour((heat > THRESHOLD * heat.max()).numpy(), levels=[0.5], colors="white", linewidths=1)
        axes[i, -1].contour(masks[i].numpy(), levels=[0.5], colors="cyan", linewidths=0.8, linestyles="dashed")
    fig.suptitle("Class activation maps M_c = sum_k w_k^c A^k (red: for the class, blue: against; * the true class); "
                 "right: the true class's map upsampled, object dashed", fontsize=10)
    return fig
