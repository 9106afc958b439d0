"""Key figure of notebook 02: occlusion maps with three baselines next to the saliency map.

For the four one-class images of the thread (``camlib.data.thread()``: circle, square, triangle,
cross) and the course's GAP network, the figure shows the image with its object outlined, the
occlusion map ``O(i) = mean over windows P covering i of f(x) - f(x_{P <- b})`` (16 x 16 patch,
stride 8, the logit of the true class) for the baselines grey (0.5), black (0) and a blurred copy of
the image (:func:`camlib.metrics.blur`, sigma 5), and the saliency map ``max_channels |df/dx|``.
The three occlusion maps of a row share one symmetric colour scale (red = the logit drops when
hidden, blue = it rises), with a colourbar; the saliency map has its own.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = ["example_images", "occlusion_panels", "key_figure"]

PATCH = 16
STRIDE = 8
BLUR_SIGMA = 5.0


def example_images() -> tuple[Tensor, Tensor, Tensor]:
    """The thread's one-class images, circle, square, triangle and cross: ``(images, labels, masks)``."""
    from camlib.data import THREAD, thread

    shapes = thread()
    index = torch.tensor([THREAD[name] for name in ("circle", "square", "triangle", "cross")])
    return shapes.images[index], shapes.labels[index], shapes.masks[index]


def occlusion_panels(model: nn.Module, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """Per-pixel maps (N, H, W): occlusion with the grey, black and blurred baselines, and saliency."""
    import camlib
    from camlib.metrics import blur

    panels = {}
    for name, baseline in (("grey", 0.5), ("black", 0.0), ("blurred", blur(images, sigma=BLUR_SIGMA))):
        result = camlib.occlusion(model, images, target=labels, patch=PATCH, stride=STRIDE, baseline=baseline)
        panels[f"occlusion, {name}"] = result.values[:, 0]
    panels["saliency |df/dx|"] = camlib.saliency(model, images, target=labels).values.amax(dim=1)
    return panels


def key_figure() -> Figure:
    """Rows: the thread's circle, square, triangle, cross; columns: image, occlusion (grey, black, blurred), saliency."""
    from camlib.data import CLASSES
    from camlib.models import load_model
    from camlib.plotting import HEAT_CMAP, SIGNED_CMAP, draw_map

    model = load_model("gap")
    images, labels, masks = example_images()
    panels = occlusion_panels(model, images, labels)
    n = images.shape[0]
    fig = Figure(figsize=(2.0 * (len(panels) + 1) + 1.4, 2.0 * n + 0.5), dpi=100, layout="constrained")
    axes = fig.subplots(n, len(panels) + 1, squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i].permute(1, 2, 0).numpy())
        axes[i, 0].contour(masks[i].numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_title(CLASSES[int(labels[i])], fontsize=9)
        axes[i, 0].set_axis_off()
        limit = max(float(m[i].abs().max()) for k, m in panels.items() if k.startswith("occlusion")) or 1.0
        occluded = []
        for j, (name, maps) in enumerate(panels.items(), start=1):
            title = name if i == 0 else None
            if name.startswith("occlusion"):
                artist = draw_map(axes[i, j], maps[i], mask=masks[i], vmin=-limit, vmax=limit, cmap=SIGNED_CMAP,
                                  title=title)
                occluded.append(axes[i, j])
            else:
                heat = draw_map(axes[i, j], maps[i], mask=masks[i], vmin=0.0, vmax=float(maps[i].max()) or 1.0,
                                cmap=HEAT_CMAP, title=title)
        fig.colorbar(artist, ax=occluded, shrink=0.8, pad=0.01, label="logit drop")
        fig.colorbar(heat, ax=axes[i, -1], shrink=0.8, pad=0.01)
    fig.suptitle(f"Occlusion ({PATCH}x{PATCH} patch, stride {STRIDE}; red = the class logit drops when hidden, "
                 "blue = it rises) and saliency", fontsize=10)
    return fig
