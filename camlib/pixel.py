r"""Pixel attributions: one value per input element, same shape as ``x`` (N, C, H, W).

* Saliency (Simonyan et al., 2014): ``dF/dx`` (absolute value by default).
* Gradient x input: ``x * dF/dx``.
* Integrated Gradients (Sundararajan et al., 2017):
  ``IG_i = (x_i - x'_i) * integral_0^1 dF(x' + t (x - x'))/dx_i dt``, the integral by the
  quadrature rule of :mod:`camlib.quadrature`; all path points of all samples are batched.
  ``delta = sum_i IG_i - (F(x) - F(x'))`` is the completeness error per sample.
* Occlusion (Zeiler & Fergus, 2014): slide a ``patch`` window with ``stride``, replace it by
  ``baseline`` and record the drop ``F(x) - F(x with the window replaced)``. **Convention:**
  the attribution of a pixel is the mean drop over all windows that cover it (as Captum);
  windows start at 0 and continue by ``stride`` until the image is covered, so the last
  window of a row/column may be cut off by the border and every pixel is covered (a pixel
  covered by no window would get 0). A window covers all channels, so the value is the same
  across ``C``. The per-window drops are in ``extras["windows"]`` (N, n_rows, n_cols).

``F`` is the target's logit unless ``score`` says ``"softmax"`` or ``"log_softmax"``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._hooks import model_guard, outside_inference_mode
from ._targets import (
    as_pair,
    baseline_like,
    check_count,
    check_input,
    check_model,
    check_score,
    refuse_underflow,
    resolve_target,
    run_model,
    score_gradient,
    select_score,
)
from .quadrature import nodes_and_weights
from .results import Attribution

__all__ = ["saliency", "gradient_x_input", "integrated_gradients", "occlusion"]


def _scores(
    model: nn.Module, x: Tensor, target: object, score: str
) -> tuple[Tensor, Tensor]:
    out = run_model(model, x)
    t = resolve_target(target, out, model)
    return select_score(out, t, score, model), t


def _input_gradient(
    model: nn.Module, x: Tensor, target: object, score: str
) -> tuple[Tensor, Tensor, Tensor]:
    """``(dF/dx, target, F(x))`` for a placed input, inside an enable_grad region."""
    xi = x.detach().requires_grad_(True)
    y, t = _scores(model, xi, target, score)
    g = score_gradient(y, xi, "the input x")
    return g.detach(), t, y.detach()


def _prepare(model: nn.Module, score: str) -> nn.Module:
    model = check_model(model)
    check_score(score, model)
    return model


@outside_inference_mode
def saliency(
    model: nn.Module, x: Tensor, *, target: object = None, score: str = "logit", absolute: bool = True
) -> Attribution:
    r"""Vanilla gradient: ``values = |dF/dx|`` (or ``dF/dx`` with ``absolute=False``), per channel."""
    model = _prepare(model, score)
    with model_guard(model), torch.enable_grad():
        x = check_input(x, model)
        g, t, y = _input_gradient(model, x, target, score)
        refuse_underflow(g, "the gradient of the score with respect to x")
    return Attribution(
        values=g.abs() if absolute else g, target=t, score=y, method="saliency", score_kind=score
    )


@outside_inference_mode
def gradient_x_input(
    model: nn.Module, x: Tensor, *, target: object = None, score: str = "logit"
) -> Attribution:
    r"""Gradient times input: ``values = x * dF/dx`` (the first-order Taylor term against a zero baseline)."""
    model = _prepare(model, score)
    with model_guard(model), torch.enable_grad():
        x = check_input(x, model)
        g, t, y = _input_gradient(model, x, target, score)
        refuse_underflow(g, "the gradient of the score with respect to x")
    return Attribution(
        values=x.detach() * g, target=t, score=y, method="gradient_x_input", score_kind=score
    )


@outside_inference_mode
def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    *,
    target: object = None,
    score: str = "logit",
    baseline: object = None,
    steps: int = 64,
    rule: str = "trapezoid",
    batch_size: int = 64,
) -> Attribution:
    r"""Integrated Gradients: ``IG = (x - x') * sum_k w_k dF(x' + t_k (x - x'))/dx``.

    ``baseline`` ``x'``: ``None`` (zeros), a float, or a tensor broadcastable to ``x``.
    ``(t_k, w_k)`` are the ``steps`` nodes and weights of the quadrature ``rule``
    (:func:`camlib.quadrature.nodes_and_weights`; one of :data:`camlib.quadrature.RULES`).
    The ``N * steps`` path points are evaluated ``batch_size`` at a time. The target is
    resolved at ``x`` (argmax of ``F(x)`` if ``None``) and kept along the path.
    ``delta = sum(IG) - (F(x) - F(x'))`` per sample; ``extras`` records the rule.
    """
    model = _prepare(model, score)
    batch_size = check_count(batch_size, "batch_size")
    steps = check_count(steps, "steps")
    with model_guard(model), torch.enable_grad():
        x = check_input(x, model).detach()
        base = baseline_like(baseline, x)
        n = x.shape[0]
        t_nodes, w_nodes = nodes_and_weights(rule, steps, dtype=x.dtype, device=x.device)
        m = t_nodes.shape[0]
        with torch.no_grad():
            out = run_model(model, torch.cat([x, base]))
            t = resolve_target(target, out[:n], model)
            fx = select_score(out[:n], t, score, model)
            fb = select_score(out[n:], t, score, model)
        diff = x - base
        total = torch.zeros_like(x)
        rows_n = torch.arange(n, device=x.device).repeat_interleave(m)
        rows_k = torch.arange(m, device=x.device).repeat(n)
        for start in range(0, n * m, batch_size):
            idx_n = rows_n[start : start + batch_size]
            idx_k = rows_k[start : start + batch_size]
            shape = (-1, 1, 1, 1)
            pts = base[idx_n] + t_nodes[idx_k].view(shape) * diff[idx_n]
            g, _, _ = _input_gradient(model, pts, t[idx_n], score)
            total.index_add_(0, idx_n, g * w_nodes[idx_k].view(shape))
        refuse_underflow(total, "the gradient summed along the path")
        values = diff * total
        delta = values.sum(dim=(1, 2, 3)) - (fx - fb)
    return Attribution(
        values=values,
        target=t,
        score=fx,
        delta=delta,
        method="integrated_gradients",
        score_kind=score,
        extras={"rule": rule, "steps": m, "baseline_score": fb},
    )


def _window_starts(size: int, patch: int, stride: int) -> list[int]:
    """Starts 0, stride, 2*stride, ... until the windows cover ``size`` (last may be cut off)."""
    count = math.ceil((size - patch) / stride) + 1
    return [k * stride for k in range(count)]


@outside_inference_mode
def occlusion(
    model: nn.Module,
    x: Tensor,
    *,
    target: object = None,
    score: str = "logit",
    patch: int | tuple[int, int] = 8,
    stride: int | tuple[int, int] = 4,
    baseline: float | Tensor = 0.0,
    batch_size: int = 64,
) -> Attribution:
    r"""Occlusion: pixel value = mean over covering windows ``P`` of ``F(x) - F(x_{P <- b})``.

    ``patch`` and ``stride`` are ints or (rows, cols). ``baseline`` ``b`` is a float (0.0 is the
    dataset mean for normalised inputs, i.e. "grey") or a tensor image broadcastable to ``x``.
    All ``N * windows`` occluded images are evaluated ``batch_size`` at a time. The drops per
    window are in ``extras["windows"]`` (N, n_rows, n_cols) with the window starts in
    ``extras["rows"]`` / ``extras["cols"]``.
    """
    model = _prepare(model, score)
    batch_size = check_count(batch_size, "batch_size")
    ph, pw = as_pair(patch, "patch")
    sh, sw = as_pair(stride, "stride")
    if sh > ph or sw > pw:
        raise ValueError(
            f"stride {(sh, sw)} is larger than patch {(ph, pw)}: the windows would skip pixels, which "
            "would get no value. Use a stride no larger than the patch (every pixel must be covered)."
        )
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        n, c, h, w = x.shape
        if ph > h or pw > w:
            raise ValueError(
                f"patch {(ph, pw)} is larger than the image {(h, w)}; use a patch no larger than the image."
            )
        rows = _window_starts(h, ph, sh)
        cols = _window_starts(w, pw, sw)
        nwin = len(rows) * len(cols)
        base = baseline_like(baseline, x)
        f0, t = _scores(model, x, target, score)
        r0 = torch.tensor(rows, device=x.device).repeat_interleave(len(cols))
        c0 = torch.tensor(cols, device=x.device).repeat(len(rows))
        ar_h = torch.arange(h, device=x.device)
        ar_w = torch.arange(w, device=x.device)
        drops = torch.empty(n * nwin, dtype=f0.dtype, device=x.device)
        rows_n = torch.arange(n, device=x.device).repeat_interleave(nwin)
        rows_w = torch.arange(nwin, device=x.device).repeat(n)
        for start in range(0, n * nwin, batch_size):
            idx_n = rows_n[start : start + batch_size]
            idx_w = rows_w[start : start + batch_size]
            top, left = r0[idx_w].view(-1, 1, 1), c0[idx_w].view(-1, 1, 1)
            in_rows = (ar_h.view(1, -1, 1) >= top) & (ar_h.view(1, -1, 1) < top + ph)
            in_cols = (ar_w.view(1, 1, -1) >= left) & (ar_w.view(1, 1, -1) < left + pw)
            mask = (in_rows & in_cols)[:, None]
            occluded = torch.where(mask, base[idx_n], x[idx_n])
            f, _ = _scores(model, occluded, t[idx_n], score)
            drops[start : start + batch_size] = f0[idx_n] - f
        drops = drops.view(n, nwin)
        total = torch.zeros(n, h, w, dtype=drops.dtype, device=x.device)
        count = torch.zeros(h, w, dtype=drops.dtype, device=x.device)
        for k in range(nwin):
            r, q = rows[k // len(cols)], cols[k % len(cols)]
            total[:, r : r + ph, q : q + pw] += drops[:, k].view(-1, 1, 1)
            count[r : r + ph, q : q + pw] += 1
        per_pixel = total / count  # every pixel is covered: stride <= patch
        values = per_pixel[:, None].expand(n, c, h, w).clone()
    return Attribution(
        values=values,
        target=t,
        score=f0,
        delta=None,
        method="occlusion",
        score_kind=score,
        extras={
            "windows": drops.view(n, len(rows), len(cols)),
            "rows": rows,
            "cols": cols,
            "patch": (ph, pw),
            "stride": (sh, sw),
        },
    )
