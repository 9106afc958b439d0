"""Key figure of notebook 02: occlusion maps with three baselines next to the saliency map.

For the first correctly classified held-out image of each class (``camlib.data.test_set``) and
the course's GAP network, the figure shows the image with its object outlined, the occlusion
map ``O(i) = mean over windows P covering i of f(x) - f(x_{P <- b})`` (16 x 16 patch, stride 8,
the logit of the true class) for the baselines grey (0.5), black (0) and a blurred copy of the
image (:func:`camlib.metrics.blur`, sigma 5), and the saliency map ``max_channels |df/dx|``.
Each occlusion row shares one symmetric colour scale, red = the logit drops when hidden.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = ["example_images", "occlusion_panels", "key_figure"]

PATCH = 16
STRIDE = 8
BLUR_SIGMA = 5.0


def example_images(model: nn.Module, n: int = 100) -> tuple[Tensor, Tensor, Tensor]:
    """The first correctly classified test image of each class: ``(images, labels, masks)``.

    Falls back to the first image of the class when none is classified correctly.
    """
    from camlib.data import CLASSES, test_set

    data = test_set(n)
    with torch.no_grad():
        pred = model(data.images).argmax(1)
    chosen = []
    for k in range(len(CLASSES)):
        of_class = (data.labels == k).nonzero().flatten()
        right = of_class[pred[of_class] == k]
        chosen.append(int(right[0]) if len(right) else int(of_class[0]))
    index = torch.tensor(chosen)
    return data.images[index], data.labels[index], data.masks[index]


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
    """Rows: one test image per class; columns: image, occlusion (grey, black, blurred), saliency."""
    from camlib.data import CLASSES
    from camlib.models import load_model

    model = load_model("gap")
    images, labels, masks = example_images(model)
    panels = occlusion_panels(model, images, labels)
    n = images.shape[0]
    fig = Figure(figsize=(1.9 * (len(panels) + 1), 1.9 * n + 0.4), dpi=100)
    axes = fig.subplots(n, len(panels) + 1, squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i].permute(1, 2, 0).numpy())
        axes[i, 0].contour(masks[i].numpy(), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_title(CLASSES[int(labels[i])], fontsize=9)
        limit = max(float(m[i].abs().max()) for k, m in panels.items() if k.startswith("occlusion")) or 1.0
        for j, (name, maps) in enumerate(panels.items(), start=1):
            m = maps[i].numpy()
            if name.startswith("occlusion"):
                axes[i, j].imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit)
            else:
                axes[i, j].imshow(m, cmap="magma")
            axes[i, j].contour(masks[i].numpy(), levels=[0.5], colors="black" if j < len(panels) else "white",
                               linewidths=0.6)
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(f"Occlusion ({PATCH}x{PATCH} patch, stride {STRIDE}; red = the class logit drops when hidden) and saliency",
                 fontsize=10)
    fig.tight_layout()
    return fig
