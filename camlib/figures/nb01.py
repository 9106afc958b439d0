"""Key figure of notebook 01: a change of units changes the gradient, not the attributions.

A linear model of delivery time, ``minutes = w0 + w1 * distance + w2 * parcels``, is fitted by
least squares to generated data, once with the distance in kilometres and once in metres.
For one delivery the figure shows, per feature and per unit system, four numbers computed
with camlib on the fitted ``nn.Linear`` model: the gradient ``w_i``, gradient x input
``w_i x_i``, the occlusion drop ``w_i (x_i - 0)`` and Integrated Gradients ``w_i (x_i - 0)``.
"""

from __future__ import annotations

import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor, nn

__all__ = ["delivery_data", "fit_least_squares", "linear_model", "key_figure"]

TRUE_WEIGHTS = (5.0, 3.0, 1.5)  # minutes, minutes per km, minutes per parcel
NOISE_MINUTES = 2.0


def delivery_data(n: int = 200, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Generated deliveries: ``X`` (n, 2) float64 = (distance in km, parcels), ``y`` (n,) minutes.

    ``y = 5 + 3 * distance + 1.5 * parcels + noise`` with distance ~ U(0.5, 10) km,
    parcels uniform on {1, ..., 20} and noise ~ N(0, 2^2) minutes.
    """
    if n < 3:
        raise ValueError(f"n must be at least 3 to fit three coefficients, got n={n}.")
    g = torch.Generator().manual_seed(seed)
    distance = 0.5 + 9.5 * torch.rand(n, generator=g, dtype=torch.float64)
    parcels = torch.randint(1, 21, (n,), generator=g).to(torch.float64)
    noise = NOISE_MINUTES * torch.randn(n, generator=g, dtype=torch.float64)
    w0, w1, w2 = TRUE_WEIGHTS
    y = w0 + w1 * distance + w2 * parcels + noise
    return torch.stack([distance, parcels], dim=1), y


def fit_least_squares(X: Tensor, y: Tensor) -> Tensor:
    """Ordinary least squares with an intercept: returns ``(w0, w1, ..., wd)`` minimising
    ``sum_n (y_n - w0 - sum_i w_i X_ni)^2``."""
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"expected X of shape (n, d) and y of shape (n,), got {tuple(X.shape)} and {tuple(y.shape)}.")
    design = torch.cat([torch.ones(X.shape[0], 1, dtype=X.dtype), X], dim=1)
    return torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1)


def linear_model(coefficients: Tensor) -> nn.Module:
    """An image-shaped linear model: input (N, 1, 1, d) -> flatten -> ``nn.Linear(d, 1)``, float64,
    with bias ``coefficients[0]`` and weights ``coefficients[1:]`` (one output = class 0)."""
    d = coefficients.numel() - 1
    layer = nn.Linear(d, 1).to(torch.float64)
    with torch.no_grad():
        layer.bias.copy_(coefficients[:1])
        layer.weight.copy_(coefficients[1:].unsqueeze(0))
    return nn.Sequential(nn.Flatten(), layer).eval()


def _four_numbers(coefficients: Tensor, x: Tensor) -> dict[str, Tensor]:
    import camlib

    model = linear_model(coefficients)
    point = x.reshape(1, 1, 1, -1)
    zeros = torch.zeros_like(point)
    return {
        "gradient": camlib.saliency(model, point, target=0, absolute=False).values.flatten(),
        "gradient x input": camlib.gradient_x_input(model, point, target=0).values.flatten(),
        "occlusion (b = 0)": camlib.occlusion(model, point, target=0, patch=1, stride=1, baseline=0.0).values.flatten(),
        "IG (x' = 0)": camlib.integrated_gradients(model, point, target=0, baseline=zeros, steps=8).values.flatten(),
    }


def key_figure() -> Figure:
    """Bars of gradient, gradient x input, occlusion and IG for one delivery, km versus metres."""
    X_km, y = delivery_data()
    metres = torch.tensor([1000.0, 1.0], dtype=torch.float64)
    X_m = X_km * metres
    coef_km = fit_least_squares(X_km, y)
    coef_m = fit_least_squares(X_m, y)
    delivery_km = torch.tensor([4.0, 12.0], dtype=torch.float64)
    numbers = {
        "distance in km": _four_numbers(coef_km, delivery_km),
        "distance in m": _four_numbers(coef_m, delivery_km * metres),
    }
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), dpi=100, sharey=True)
    colours = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
    for ax, (title, values) in zip(axes, numbers.items()):
        width = 0.2
        for j, ((label, v), colour) in enumerate(zip(values.items(), colours)):
            positions = torch.arange(2) + (j - 1.5) * width
            bars = ax.bar(positions.numpy(), v.numpy(), width, label=label, color=colour)
            ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
        ax.set_xticks([0, 1], ["distance", "parcels"])
        ax.set_title(f"Fitted with the {title}")
        ax.axhline(0, color="black", linewidth=0.6)
    axes[0].set_ylabel("minutes per unit  /  minutes")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle("Changing the distance's unit shrinks its gradient 1000-fold; the attributions do not move", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    return fig
