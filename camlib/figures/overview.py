"""The README's overview: one held-out image of each class explained by every camlib method.

Rows are the four classes of the shapes data set; columns are the image with its ground-truth
mask outlined, then CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Ablation-CAM,
Score-CAM and Eigen-CAM (all at the layer ``features``), Integrated Gradients, occlusion, guided
backpropagation, Guided Grad-CAM and SmoothGrad (absolute values summed over colour channels),
each overlaid on the image after min-max normalisation.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

import camlib

from .._hooks import predict

__all__ = ["key_figure"]

METHODS = ("CAM", "Grad-CAM", "Grad-CAM++", "XGrad-CAM", "HiResCAM", "LayerCAM", "Ablation-\nCAM",
           "Score-CAM", "Eigen-CAM", "Integrated\nGradients", "Occlusion", "Guided\nbackprop",
           "Guided\nGrad-CAM", "SmoothGrad")


def _maps(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    target = predict(model, images).argmax(dim=1)
    cams = [
        camlib.cam(model, images, target=target, layer="features").map,
        camlib.grad_cam(model, images, "features", target=target).map,
        camlib.grad_cam_pp(model, images, "features", target=target).map,
        camlib.xgrad_cam(model, images, "features", target=target).map,
        camlib.hires_cam(model, images, "features", target=target).map,
        camlib.layer_cam(model, images, "features", target=target).map,
        camlib.ablation_cam(model, images, "features", target=target).map,
        camlib.score_cam(model, images, "features", target=target).map,
        camlib.eigen_cam(model, images, "features", target=target).map,
    ]
    pixels = [
        camlib.integrated_gradients(model, images, target=target, steps=32).values.abs().sum(dim=1),
        camlib.occlusion(model, images, target=target, patch=12, stride=4, baseline=0.5).values.sum(dim=1),
        camlib.guided_backprop(model, images, target=target).values.abs().sum(dim=1),
        camlib.guided_grad_cam(model, images, "features", target=target).values.abs().sum(dim=1),
        camlib.smooth_grad(model, images, camlib.saliency, target=target).values.sum(dim=1),
    ]
    return cams + pixels


def key_figure() -> Figure:
    """Grid of overlays: 4 classes x (image + 14 methods)."""
    model = camlib.models.load_model("gap")
    shapes = camlib.data.test_set()
    index = [int((shapes.labels == c).nonzero()[0]) for c in range(len(camlib.data.CLASSES))]
    images, masks = shapes.images[index], shapes.masks[index]
    maps = _maps(model, images)
    rows, cols = len(index), len(METHODS) + 1
    fig = Figure(figsize=(1.3 * cols, 1.3 * rows + 0.6))
    for r in range(rows):
        ax = fig.add_subplot(rows, cols, r * cols + 1)
        ax.imshow(camlib.plotting.to_display(images[r]))
        ax.contour(masks[r].numpy(), levels=[0.5], colors="white", linewidths=0.8)
        ax.set_axis_off()
        if r == 0:
            ax.set_title("image, mask", fontsize=9)
        for c, name in enumerate(METHODS):
            ax = fig.add_subplot(rows, cols, r * cols + c + 2)
            ax.imshow(camlib.plotting.overlay(images[r], maps[c][r], alpha=0.5))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig
