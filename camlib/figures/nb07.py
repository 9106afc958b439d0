"""Key figure of notebook 07: the methods beyond Grad-CAM on the course's triangle.

The thread's triangle (``camlib.data.thread()[THREAD_TRIANGLE]``), explained for its true class
by the ``gap`` model. Top row, pixel attributions (absolute values summed over the colour
channels): guided backpropagation, DeconvNet, Guided Grad-CAM, SmoothGrad of the gradient and
VarGrad. Bottom row, CAMs at the layer ``"features"`` (8 x 8), drawn over the image: Grad-CAM
(for reference), HiResCAM, LayerCAM, Ablation-CAM, Score-CAM and Eigen-CAM. Every panel has its
own colour scale (the methods have different units); the object is outlined in white. On this
GAP-linear head HiResCAM equals Grad-CAM exactly, and the other CAMs differ from it only in how
they weigh the same channels: the notebook shows why, and where they part.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

import camlib
from camlib.data import CLASSES, THREAD_TRIANGLE
from camlib.plotting import draw_map, to_display

__all__ = ["IMAGE_INDEX", "LAYER", "MODEL", "panels", "key_figure"]

#: Index of the image shown, in ``camlib.data.thread()``.
IMAGE_INDEX = THREAD_TRIANGLE
#: The layer of the CAM panels.
LAYER = "features"
#: The model explained (the notebook's).
MODEL = "gap"


def panels(index: int = IMAGE_INDEX) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, torch.Tensor]],
                                                list[tuple[str, torch.Tensor]]]:
    """``(image (3, H, W), mask (H, W), pixel panels, CAM panels)``; each panel is ``(title, map (h, w))``."""
    thread = camlib.data.thread()
    x, target = thread.images[index : index + 1], thread.labels[index : index + 1]
    model = camlib.models.load_model(MODEL)

    def pixel(res: camlib.Attribution) -> torch.Tensor:
        return res.values[0].abs().sum(dim=0)

    pixels = [
        ("guided backprop", pixel(camlib.guided_backprop(model, x, target=target))),
        ("DeconvNet", pixel(camlib.deconvnet(model, x, target=target))),
        ("Guided Grad-CAM", pixel(camlib.guided_grad_cam(model, x, LAYER, target=target))),
        ("SmoothGrad (15 %)", pixel(camlib.smooth_grad(model, x, camlib.saliency, target=target))),
        ("VarGrad (15 %)", pixel(camlib.smooth_grad(model, x, camlib.saliency, target=target, variant="vargrad"))),
    ]
    cams = [
        ("Grad-CAM", camlib.grad_cam(model, x, LAYER, target=target).map[0]),
        ("HiResCAM", camlib.hires_cam(model, x, LAYER, target=target).map[0]),
        ("LayerCAM", camlib.layer_cam(model, x, LAYER, target=target).map[0]),
        ("Ablation-CAM", camlib.ablation_cam(model, x, LAYER, target=target).map[0]),
        ("Score-CAM", camlib.score_cam(model, x, LAYER, target=target).map[0]),
        ("Eigen-CAM", camlib.eigen_cam(model, x, LAYER, target=target).map[0]),
    ]
    return thread.images[index], thread.masks[index], pixels, cams


def key_figure() -> Figure:
    """Two rows: the image and five pixel attributions; six CAMs over the image."""
    image, mask, pixels, cams = panels()
    label = CLASSES[int(camlib.data.thread().labels[IMAGE_INDEX])]
    cols = 6
    fig = Figure(figsize=(2.0 * cols, 4.6), dpi=100)
    axes = fig.subplots(2, cols)
    axes[0, 0].imshow(to_display(image))
    axes[0, 0].contour(mask.numpy(), levels=[0.5], colors="white", linewidths=0.8)
    axes[0, 0].set_title(f"input: {label}", fontsize=9)
    for ax, (title, m) in zip(axes[0, 1:], pixels):
        draw_map(ax, m, title=title)
    for ax, (title, m) in zip(axes[1], cams):
        draw_map(ax, m, image=image, mask=mask, title=f"{title} ({LAYER})")
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(f"Beyond Grad-CAM on the {MODEL} model: pixel attributions (top, |value| summed over colours) "
                 "and CAMs (bottom); each panel its own scale", fontsize=9)
    fig.tight_layout()
    return fig
