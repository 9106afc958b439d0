r"""Figures of notebook 06: the axioms of XGrad-CAM and of Integrated Gradients, on the thread images.

* :func:`key_figure`: on the thread's triangle, Grad-CAM and XGrad-CAM of the ``fc`` model on one scale
  (only XGrad-CAM's map adds up to the score minus the bias term), and Integrated Gradients of the
  ``gap`` model with 8 midpoint steps, a converged reference (256 steps) and their difference, on one
  signed scale: a completeness error of about 2 % hides a per-pixel error of about 8 %.
* :func:`saturation_figure`: ``f(x) = 1 - ReLU(1 - x)`` from 0 to 2, its derivative along the path and
  its gradient at 2 (zero), against IG (the area, 1).
* :func:`thread_figure`: Grad-CAM and XGrad-CAM (``fc``) and IG (``gap``) on the four one-object images.
* :func:`quadrature_figure`: the completeness error against the number of steps, per quadrature rule.

Completeness (Sundararajan et al., 2017, Prop. 1) says ``sum_i IG_i = F(x) - F(x')``. With a
quadrature rule ``(t_k, w_k)`` the computed sum is ``sum_k w_k phi(t_k)`` where
``phi(t) = grad F(x' + t (x - x')) . (x - x')`` is the derivative of ``F`` along the straight
path, so the completeness error is exactly the quadrature error of ``int_0^1 phi``. The quadrature
study compares the rules on a smooth function (a small float64 tanh network on R^6), where the
textbook orders show (Riemann sums ``O(1/m)``, midpoint and trapezoid ``O(1/m^2)``, Gauss-Legendre much
faster), and on the course's trained GAP model, a piecewise-linear network whose ``phi`` is piecewise
constant.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, NullFormatter
from torch import Tensor

from .._hooks import model_guard
from ..quadrature import RULES, nodes_and_weights

__all__ = ["STEPS", "CNN_STEPS", "REFERENCE_STEPS", "smooth_function", "path_derivative_study", "completeness_study",
           "ig_study", "key_figure", "saturation_figure", "thread_figure", "quadrature_figure"]

#: steps of the reference Integrated Gradients (midpoint rule) that per-pixel errors are measured against
REFERENCE_STEPS: int = 256

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


def completeness_study(image_index: int = 2) -> dict[str, dict[str, dict[int, float]]]:
    """Both panels' measurements: ``{"smooth": {...}, "cnn": {...}}`` as in :func:`path_derivative_study`.

    The CNN is ``load_model("gap")`` in float32 (its completeness errors are far above float32
    rounding, about 1e-6 relative), the image ``thread()[image_index]`` (default: the triangle), the
    baseline black (zeros) and the score the logit of the predicted class; ``steps`` are
    :data:`STEPS` for the smooth function and :data:`CNN_STEPS` (fewer, to stay fast) for the CNN.
    """
    from ..data import thread
    from ..models import load_model

    f, x, base = smooth_function()
    smooth = path_derivative_study(f, x, base)

    model = load_model("gap")
    image = thread().images[image_index]
    with model_guard(model), torch.no_grad():
        target = int(model(image[None]).argmax())

    def cnn(points: Tensor) -> Tensor:
        return model(points)[:, target]

    with model_guard(model):
        cnn_errors = path_derivative_study(cnn, image, torch.zeros_like(image), steps=CNN_STEPS)
    return {"smooth": smooth, "cnn": cnn_errors}


_STYLE = {
    "riemann_left": ("tab:blue", "o"),
    "riemann_right": ("tab:orange", "s"),
    "midpoint": ("tab:green", "^"),
    "trapezoid": ("tab:red", "v"),
    "gauss_legendre": ("tab:purple", "D"),
}


def quadrature_figure(study: dict | None = None) -> Figure:
    """Completeness error against the number of steps, one line per rule, smooth function and CNN.

    ``study`` is the output of :func:`completeness_study` (computed when omitted).
    """
    study = completeness_study() if study is None else study
    fig = Figure(figsize=(9.0, 3.6), dpi=100, layout="constrained")
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
    return fig


# ----------------------------------------------------------------------------- IG and XGrad-CAM maps


@lru_cache(maxsize=8)
def ig_study(index: int, steps: int = 8, rule: str = "midpoint") -> dict[str, Tensor | float]:
    """IG of the ``gap`` model on ``thread()[index]`` (black baseline, true class) with ``steps`` nodes of
    ``rule`` (``camlib.integrated_gradients``), and a reference: the trapezoid rule on the
    ``REFERENCE_STEPS + 1`` nodes ``k / REFERENCE_STEPS``.

    Returns the attributions ``values`` and ``reference`` ``(3, H, W)``, the relative completeness error
    ``completeness = |delta| / |F(x) - F(x')|`` and the relative per-pixel error
    ``per_pixel = sum |values - reference| / sum |reference|``, and the same two numbers for the trapezoid
    rule on every other node of the reference (``half_*``: how far the reference is from converged).
    Cached: the notebook and its figures share one computation.
    """
    from ..data import thread
    from ..models import load_model
    from ..pixel import integrated_gradients

    model = load_model("gap")
    shapes = thread()
    x, t = shapes.images[index : index + 1], int(shapes.labels[index])
    approx = integrated_gradients(model, x, target=t, steps=steps, rule=rule, batch_size=256)
    nodes = torch.linspace(0.0, 1.0, REFERENCE_STEPS + 1, dtype=x.dtype)
    with model_guard(model):
        points = (nodes.view(-1, 1, 1, 1) * x).requires_grad_(True)      # the path from the black baseline
        (grads,) = torch.autograd.grad(model(points)[:, t].sum(), points)
        with torch.no_grad():
            ends = model(torch.cat([x, torch.zeros_like(x)]))[:, t]
    score_gap = float(ends[0] - ends[1])

    def trapezoid(g: Tensor) -> Tensor:
        w = torch.full((g.shape[0],), 1.0 / (g.shape[0] - 1), dtype=g.dtype)
        w[0] = w[-1] = 0.5 / (g.shape[0] - 1)
        return x[0] * (w.view(-1, 1, 1, 1) * g).sum(dim=0)

    reference, half = trapezoid(grads), trapezoid(grads[::2])

    def errors(values: Tensor) -> tuple[float, float]:
        values, ref = values.double(), reference.double()
        return (abs(float(values.sum()) - score_gap) / abs(score_gap),
                float((values - ref).abs().sum() / ref.abs().sum()))

    completeness, per_pixel = errors(approx.values[0])
    half_completeness, half_per_pixel = errors(half)
    return {"values": approx.values[0], "reference": reference, "completeness": completeness, "per_pixel": per_pixel,
            "reference_completeness": errors(reference)[0], "half_completeness": half_completeness,
            "half_per_pixel": half_per_pixel, "score_gap": score_gap}


def _robust(maps: list[Tensor]) -> float:
    """The 99.5th percentile of ``|value|`` over ``maps``: a symmetric colour limit that a few extreme
    pixels (IG concentrates on object edges) cannot set alone."""
    values = torch.cat([m.detach().double().abs().flatten() for m in maps])
    return float(torch.quantile(values, 0.995)) or 1.0


def _colourbar(fig, artist, axes, label: str) -> None:
    bar = fig.colorbar(artist, ax=axes, shrink=0.8, fraction=0.05, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def key_figure() -> Figure:
    """Grad-CAM vs XGrad-CAM (fc, one scale) and IG at 8 steps vs the reference (gap, one signed scale)."""
    from ..cam_family import grad_cam, xgrad_cam
    from ..data import CLASSES, THREAD, thread
    from ..models import load_model
    from ..plotting import SIGNED_CMAP, draw_map, map_scale, to_display

    index = THREAD["triangle"]
    shapes = thread()[index : index + 1]
    image, mask, label = shapes.images[0], shapes.masks[0], int(shapes.labels[0])
    fc = load_model("fc")
    fig = Figure(figsize=(12.5, 5.6), dpi=100, layout="constrained")
    top, bottom = fig.subfigures(2, 1)

    axes = top.subplots(1, 4)
    axes[0].imshow(to_display(image))
    axes[0].set_title(f"held-out image ({CLASSES[label]})", fontsize=9)
    axes[0].set_axis_off()
    results = {"Grad-CAM": grad_cam(fc, shapes.images, "features", target=label),
               "XGrad-CAM": xgrad_cam(fc, shapes.images, "features", target=label)}
    first = results["Grad-CAM"]
    euler = float((first.activations * first.gradients).sum())       # S - bias term (Euler's identity)
    vmin, vmax, cmap = map_scale([r.map[0] for r in results.values()], signed=False)
    for ax, (name, res) in zip(axes[1:3], results.items()):
        artist = draw_map(ax, res.map[0], image=image, mask=mask, vmin=vmin, vmax=vmax, cmap=cmap,
                          title=f"{name} (fc)\nraw map sums to {float(res.raw.sum()):.2f}")
    _colourbar(top, artist, list(axes[1:3]), "logit per position (one scale)")
    axes[3].set_axis_off()
    axes[3].text(0.0, 0.5, f"fc model, class {CLASSES[label]}:\nscore S = {float(first.score[0]):.2f}\n"
                 f"S - bias term = {euler:.2f}\n\nConservation asks the map\nto add up to the score: only\n"
                 "XGrad-CAM's does (up to\nthe bias term).", fontsize=9, va="center", transform=axes[3].transAxes)

    study = ig_study(index)
    axes = bottom.subplots(1, 4)
    axes[0].imshow(to_display(image))
    axes[0].set_title("gap model, black baseline", fontsize=9)
    axes[0].set_axis_off()
    pair = [(f"IG, 8 midpoint steps\ncompleteness error {study['completeness']:.1%}", study["values"].sum(0)),
            (f"IG, {REFERENCE_STEPS} steps (reference)", study["reference"].sum(0))]
    top_value = _robust([m for _, m in pair])
    for ax, (title, m) in zip(axes[1:3], pair):
        artist = draw_map(ax, m, vmin=-top_value, vmax=top_value, cmap=SIGNED_CMAP, title=title)
        ax.contour(mask.double().numpy(), levels=[0.5], colors="black", linewidths=0.5)
    _colourbar(bottom, artist, list(axes[1:3]), "IG per pixel, summed over colours\n(one scale, clipped at the\n"
               "99.5th percentile of |IG|)")
    difference = (study["values"] - study["reference"]).sum(0)
    d = _robust([difference])
    artist = draw_map(axes[3], difference, vmin=-d, vmax=d, cmap=SIGNED_CMAP,
                      title=f"difference (8 - {REFERENCE_STEPS} steps)\nper-pixel error {study['per_pixel']:.1%}")
    axes[3].contour(mask.double().numpy(), levels=[0.5], colors="black", linewidths=0.5)
    _colourbar(bottom, artist, axes[3], "own scale")
    fig.suptitle("Axioms on numbers: conservation at a layer (top), completeness of Integrated Gradients and "
                 "what it does not guarantee (bottom)", fontsize=10)
    return fig


def saturation_figure(steps: int = 8) -> Figure:
    """``f(x) = 1 - ReLU(1 - x)`` on the path from 0 to 2 and its derivative; the gradient at 2 and IG."""
    t = torch.linspace(0.0, 2.0, 401, dtype=torch.float64)
    f = 1 - torch.relu(1 - t)
    fig = Figure(figsize=(8.4, 2.8), dpi=100, layout="constrained")
    ax0, ax1 = fig.subplots(1, 2)
    ax0.plot(t, f, color="C0")
    ax0.plot([2.0], [1.0], "o", color="C3")
    ax0.annotate("x = 2: gradient 0", (2.0, 1.0), (1.05, 0.55), fontsize=8, arrowprops={"arrowstyle": "->"})
    ax0.set(xlabel="x", ylabel="f(x)", title=r"$f(x) = 1 - \mathrm{ReLU}(1 - x)$: f(2) - f(0) = 1")
    derivative = (t < 1).double()
    ax1.fill_between(t, derivative, step="post", alpha=0.3, color="C2", label="area = IG = 1")
    ax1.plot(t, derivative, color="C2", drawstyle="steps-post", label="f'(x) along the path")
    nodes, weights = nodes_and_weights("midpoint", steps)
    ax1.plot(2 * nodes, (2 * nodes < 1).double(), "o", color="k", ms=3, label=f"{steps} midpoint nodes")
    ax1.set(xlabel="x on the path from the baseline 0 to 2", ylabel="f'(x)", ylim=(-0.1, 1.3),
            title="IG = (2 - 0) x mean of f' along the path")
    ax1.legend(fontsize=7, loc="upper right")
    for ax in (ax0, ax1):
        ax.title.set_fontsize(9)
    return fig


def thread_figure(steps: int = 32) -> Figure:
    """The four one-object thread images: Grad-CAM and XGrad-CAM of the ``fc`` model (one scale) and IG of
    the ``gap`` model (``steps`` midpoint nodes, black baseline, summed over colours; one signed scale)."""
    from ..cam_family import grad_cam, xgrad_cam
    from ..data import CLASSES, THREAD, thread
    from ..models import load_model
    from ..pixel import integrated_gradients
    from ..plotting import SIGNED_CMAP, draw_map, map_scale, to_display

    order = [THREAD[name] for name in ("circle", "square", "triangle", "cross")]
    shapes = thread()[order[0] : order[-1] + 1]
    x, t = shapes.images, shapes.labels
    fc, gap = load_model("fc"), load_model("gap")
    rows = {"Grad-CAM (fc)": grad_cam(fc, x, "features", target=t).map,
            "XGrad-CAM (fc)": xgrad_cam(fc, x, "features", target=t).map}
    ig = integrated_gradients(gap, x, target=t, steps=steps, rule="midpoint", batch_size=256).values.sum(dim=1)
    n = len(order)
    fig = Figure(figsize=(2.3 * n + 1.2, 9.0), dpi=80, layout="constrained")
    first, middle, last = fig.subfigures(3, 1, height_ratios=[1, 2, 1])
    for ax, k in zip(first.subplots(1, n), range(n)):
        ax.imshow(to_display(x[k]))
        ax.set_title(CLASSES[int(t[k])], fontsize=9)
        ax.set_axis_off()
    axes = middle.subplots(2, n)
    vmin, vmax, cmap = map_scale([m for maps in rows.values() for m in maps], signed=False)
    for r, (name, maps) in enumerate(rows.items()):
        for k in range(n):
            artist = draw_map(axes[r, k], maps[k], image=x[k], mask=shapes.masks[k], vmin=vmin, vmax=vmax, cmap=cmap,
                              title=name)
    _colourbar(middle, artist, list(axes.ravel()), "logit per position (one scale)")
    axes = last.subplots(1, n)
    top_value = _robust(list(ig))
    for k in range(n):
        artist = draw_map(axes[k], ig[k], vmin=-top_value, vmax=top_value, cmap=SIGNED_CMAP,
                          title=f"IG (gap), {steps} steps")
        axes[k].contour(shapes.masks[k].double().numpy(), levels=[0.5], colors="black", linewidths=0.5)
    _colourbar(last, artist, list(axes), "IG per pixel, summed over colours\n(one scale, clipped at the\n"
               "99.5th percentile of |IG|)")
    return fig
