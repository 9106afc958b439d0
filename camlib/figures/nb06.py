r"""Key figure of notebook 06: how the completeness error of Integrated Gradients falls with the
number of steps, for each quadrature rule of :mod:`camlib.quadrature`.

Completeness (Sundararajan et al., 2017, Prop. 1) says ``sum_i IG_i = F(x) - F(x')``. With a
quadrature rule ``(t_k, w_k)`` the computed sum is ``sum_k w_k phi(t_k)`` where
``phi(t) = grad F(x' + t (x - x')) . (x - x')`` is the derivative of ``F`` along the straight
path, so the completeness error is exactly the quadrature error of ``int_0^1 phi``.

Two panels:

* a smooth function (a small float64 tanh network on R^6), where the textbook orders show:
  Riemann sums ``O(1/m)``, midpoint and trapezoid ``O(1/m^2)``, Gauss-Legendre much faster;
* the course's trained GAP model on one held-out image (float32, black baseline, logit of the
  predicted class), a piecewise-linear network whose ``phi`` is piecewise constant.
"""

from __future__ import annotations

from typing import Callable

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, NullFormatter
from torch import Tensor

from ..quadrature import RULES, nodes_and_weights

__all__ = ["STEPS", "CNN_STEPS", "smooth_function", "path_derivative_study", "completeness_study", "key_figure"]

#: numbers of steps (gradient evaluations) compared for the smooth function and for the CNN
STEPS: tuple[int, ...] = (2, 4, 8, 16, 32)
CNN_STEPS: tuple[int, ...] = (2, 4, 8, 16, 32)


def smooth_function() -> tuple[Callable[[Tensor], Tensor], Tensor, Tensor]:
    """A fixed smooth test function ``F(p) = v . tanh(W p + b)`` on R^6, with ``x`` and baseline 0.

    ``F`` maps a batch ``(P, 6)`` to ``(P,)``; everything is float64 and deterministic.
    """
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    b = torch.randn(8, generator=gen, dtype=torch.float64) / 2
    v = torch.randn(8, generator=gen, dtype=torch.float64)
    x = torch.randn(6, generator=gen, dtype=torch.float64)

    def f(points: Tensor) -> Tensor:
        return torch.tanh(points @ w.T + b) @ v

    return f, x, torch.zeros(6, dtype=torch.float64)


def path_derivative_study(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    baseline: Tensor,
    steps: tuple[int, ...] = STEPS,
    rules: tuple[str, ...] = RULES,
) -> dict[str, dict[int, float]]:
    r"""Relative completeness error ``|sum_k w_k phi(t_k) - (F(x) - F(x'))| / |F(x) - F(x')|``.

    ``f`` maps a batch of points shaped like ``x`` with a leading axis ``(P, *x.shape)`` to
    scores ``(P,)``. Every node of every rule is evaluated once (rules share nodes: the Riemann
    sums and the midpoint rule lie on one grid), in a single batched forward and backward pass.
    Returns ``{rule: {steps: relative error}}``.
    """
    plan = {(r, m): nodes_and_weights(r, m, dtype=torch.float64) for r in rules for m in steps}
    unique = sorted({round(float(t), 15) for t, _ in plan.values() for t in t.tolist()})
    t_all = torch.tensor(unique, dtype=x.dtype)
    shape = (-1,) + (1,) * x.dim()
    points = (baseline + t_all.view(shape) * (x - baseline)).detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(f(points).sum(), points)
    phi = dict(zip(unique, (grads * (x - baseline)).flatten(1).sum(1).tolist()))
    with torch.no_grad():
        ends = f(torch.stack([x, baseline]))
    gap = float(ends[0] - ends[1])
    out: dict[str, dict[int, float]] = {r: {} for r in rules}
    for (r, m), (t, w) in plan.items():
        total = sum(wk * phi[round(tk, 15)] for tk, wk in zip(t.tolist(), w.tolist()))
        out[r][m] = abs(total - gap) / abs(gap)
    return out


def completeness_study(image_index: int = 0) -> dict[str, dict[str, dict[int, float]]]:
    """Both panels' measurements: ``{"smooth": {...}, "cnn": {...}}`` as in :func:`path_derivative_study`.

    The CNN is ``load_model("gap")`` in float32 (its completeness errors are far above float32
    rounding, about 1e-6 relative), the image ``test_set(200)[image_index]``, the
    baseline black (zeros) and the score the logit of the predicted class; ``steps`` are
    :data:`STEPS` for the smooth function and :data:`CNN_STEPS` (fewer, to stay fast) for the CNN.
    """
    from ..data import test_set
    from ..models import load_model

    f, x, base = smooth_function()
    smooth = path_derivative_study(f, x, base)

    model = load_model("gap")
    image = test_set(200).images[image_index]
    with torch.no_grad():
        target = int(model(image[None]).argmax())

    def cnn(points: Tensor) -> Tensor:
        return model(points)[:, target]

    cnn_errors = path_derivative_study(cnn, image, torch.zeros_like(image), steps=CNN_STEPS)
    return {"smooth": smooth, "cnn": cnn_errors}


_STYLE = {
    "riemann_left": ("tab:blue", "o"),
    "riemann_right": ("tab:orange", "s"),
    "midpoint": ("tab:green", "^"),
    "trapezoid": ("tab:red", "v"),
    "gauss_legendre": ("tab:purple", "D"),
}


def key_figure(study: dict | None = None) -> Figure:
    """Completeness error against the number of steps, one line per rule, smooth function and CNN.

    ``study`` is the output of :func:`completeness_study` (computed when omitted).
    """
    study = completeness_study() if study is None else study
    fig = Figure(figsize=(9.0, 3.6), dpi=100)
    titles = {
        "smooth": "smooth function (tanh network)",
        "cnn": "trained CNN (ReLU, max-pool)",
    }
    for i, key in enumerate(("smooth", "cnn")):
        ax = fig.add_subplot(1, 2, i + 1)
        for rule, errors in study[key].items():
            colour, marker = _STYLE.get(rule, ("black", "x"))
            m = sorted(errors)
            ax.loglog(m, [max(errors[s], 1e-17) for s in m], marker=marker, color=colour, label=rule)
        ax.set_xlabel("steps m (gradient evaluations)")
        ax.set_ylabel("relative completeness error")
        ax.set_title(titles[key], fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ticks = sorted(next(iter(study[key].values())))
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FixedFormatter([str(t) for t in ticks]))
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Integrated Gradients: |sum IG - (F(x) - F(x'))| / |F(x) - F(x')| by quadrature rule", fontsize=10)
    fig.tight_layout()
    return fig
