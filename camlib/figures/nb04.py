"""Key figure of notebook 04: Grad-CAM generalises CAM.

One held-out shapes image and six panels computed with camlib, each map bilinearly upsampled to
the image and overlaid after min-max normalisation:

1. the image; 2. CAM of the ``gap`` model; 3. Grad-CAM of the ``gap`` model (equal to CAM / Z,
   so identical after normalisation); 4. Grad-CAM of the ``fc`` model, whose head is not
   GAP-linear, so CAM does not exist for it; 5. Grad-CAM of the softmax probability (the other
   classes' maps are subtracted); 6. the counterfactual map ``ReLU(-raw)`` of the ``gap`` model.

All maps explain the true class at layer ``"features"``.
"""

from __future__ import annotations

import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

import camlib
from camlib.data import CLASSES
from camlib.plotting import overlay, to_display

__all__ = ["IMAGE_INDEX", "panels", "key_figure"]

#: Index of the held-out image shown (camlib.data.test_set()).
IMAGE_INDEX = 3


def panels(index: int = IMAGE_INDEX) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The image ``(1, 3, H, W)`` and the ``(title, map (h, w))`` pairs drawn by :func:`key_figure`."""
    shapes = camlib.data.test_set()[index : index + 1]
    x, target = shapes.images, shapes.labels
    gap = camlib.models.load_model("gap")
    fc = camlib.models.load_model("fc")
    maps = [
        ("ReLU(CAM) (gap)", camlib.cam(gap, x, target=target).raw.clamp_min(0)),
        ("Grad-CAM (gap)", camlib.grad_cam(gap, x, "features", target=target).map),
        ("Grad-CAM (fc head)", camlib.grad_cam(fc, x, "features", target=target).map),
        ("Grad-CAM of softmax", camlib.grad_cam(gap, x, "features", target=target, score="softmax").map),
        ("counterfactual (gap)", camlib.counterfactual(gap, x, "features", target=target).map),
    ]
    return x, [(title, m[0]) for title, m in maps]


def key_figure() -> Figure:
    """Image, CAM, Grad-CAM, Grad-CAM on a non-GAP head, softmax target and counterfactual map."""
    x, maps = panels()
    label = int(camlib.data.test_set()[IMAGE_INDEX : IMAGE_INDEX + 1].labels[0])
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(2.0 * (len(maps) + 1), 2.4), dpi=100)
    axes[0].imshow(to_display(x[0]))
    axes[0].set_title(f"input ({CLASSES[label]})", fontsize=9)
    for ax, (title, m) in zip(axes[1:], maps):
        if float(m.max()) > 0:
            ax.imshow(overlay(x[0], m, alpha=0.5))
        else:
            ax.imshow(to_display(x[0]) * 0.5)
            ax.text(0.5, 0.5, "all zero", ha="center", va="center", transform=ax.transAxes, color="w")
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("Grad-CAM = CAM / Z on a GAP head, and it also works where CAM does not", fontsize=10)
    fig.tight_layout()
    return fig
