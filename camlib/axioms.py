"""The axioms of attribution as numbers: 0 means the axiom holds on this input.

* :func:`completeness` — Integrated Gradients' Completeness (Sundararajan et al. 2017, Prop. 1):
  attributions add up to ``F(x) - F(x')``.
* :func:`sensitivity_violation`, :func:`conservation_violation` — XGrad-CAM's two axioms
  (Fu et al., BMVC 2020) for any CAM-family result.
* :func:`implementation_invariance` — one method on two functionally equivalent networks
  (Sundararajan et al. 2017, §2.2) must give the same explanation.

Each returns a :class:`camlib.metrics.MetricResult` (per-sample ``values`` and ``mean``).
Every forward pass runs under ``torch.no_grad()`` and camlib's model guard (eval mode; modes,
``requires_grad``, ``.grad``, buffers and hooks left as they were). The score is the one the
result was computed with (its ``score_kind``) unless ``score=`` says otherwise.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._hooks import model_guard, outside_inference_mode
from ._targets import (
    baseline_like,
    check_count,
    check_input,
    check_model,
    check_score,
    find_layer,
    resolve_target,
    run_model,
    select_score,
)
from .metrics import MetricResult
from .results import Attribution, CamResult

__all__ = [
    "completeness",
    "sensitivity_violation",
    "conservation_violation",
    "implementation_invariance",
]


def _need(result: Any, kind: type, what: str) -> None:
    if not isinstance(result, kind):
        article = "an" if kind.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"{what} needs {article} {kind.__name__}, got {type(result).__name__}.")


def _matching(result: CamResult | Attribution, x: Tensor) -> Tensor:
    """The result's target, checked to have one entry per image of ``x``."""
    t = result.target
    if not isinstance(t, Tensor) or t.ndim != 1 or t.shape[0] != x.shape[0]:
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(
            f"the result explains a batch of target shape {got} but x has N = {x.shape[0]} images: "
            "pass the input the result was computed for."
        )
    return t.to(x.device)


def _score_of(result: CamResult | Attribution, score: str | None, model: nn.Module) -> str:
    return check_score(result.score_kind if score is None else score, model)


@outside_inference_mode
def completeness(
    model: nn.Module,
    x: Tensor,
    attribution: Attribution,
    baseline: Tensor | float | None = None,
    score: str | None = None,
) -> MetricResult:
    """Completeness error ``|sum_i values_i - (F(x) - F(x'))|`` per sample.

    ``F`` is the score of ``attribution.target`` in the attribution's own score space
    (``attribution.score_kind``, unless ``score`` says otherwise), recomputed here by two
    forward passes, independently of the method's own ``delta``. ``baseline`` ``x'`` defaults
    to zeros (the IG default, black for the course models); give the one the attribution used.
    ``extras["signed"]`` holds the signed error ``sum - (F(x) - F(x'))`` and ``extras["gap"]``
    the difference ``F(x) - F(x')``. Only path methods (IG) are complete; for saliency the
    number measures how far it is.
    """
    _need(attribution, Attribution, "completeness")
    model = check_model(model)
    score = _score_of(attribution, score, model)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        if attribution.values.shape != x.shape:
            raise ValueError(
                f"attribution values {tuple(attribution.values.shape)} do not match x {tuple(x.shape)}: "
                "pass the input the attribution was computed for."
            )
        tgt = _matching(attribution, x)
        base = baseline_like(baseline, x)
        fx = select_score(run_model(model, x), tgt, score, model)
        fb = select_score(run_model(model, base), tgt, score, model)
    total = attribution.values.detach().flatten(1).to(fx.dtype).sum(1)
    signed = total - (fx - fb)
    return MetricResult("completeness", signed.abs(), {"signed": signed, "gap": fx - fb})


def _channel_zeroed_scores(
    model: nn.Module, x: Tensor, layer: nn.Module, target: Tensor, score: str, batch_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Score with the layer intact (N,), with each channel zeroed (N, K), and the activations.

    Runs inside the caller's model guard, under ``torch.no_grad()``.
    """
    state: dict[str, Any] = {"keep": None, "acts": []}

    def hook(_m: nn.Module, _inp: Any, out: Any) -> Any:
        if not isinstance(out, Tensor) or out.dim() < 2:
            raise ValueError("the layer's output must be a tensor (N, K, ...) to zero one channel.")
        if state["keep"] is None:
            state["acts"].append(out.detach())
            return None
        keep = state["keep"]
        return out * keep.view(*keep.shape, *([1] * (out.dim() - 2))).to(out.dtype)

    handle = layer.register_forward_hook(hook)
    try:
        s = select_score(run_model(model, x, batch_size), target, score, model)
        if not state["acts"]:
            raise ValueError("the layer did not run during the forward pass; pass a layer the model uses.")
        acts = torch.cat(state["acts"])
        if acts.shape[0] != x.shape[0]:
            raise ValueError("the layer ran more than once per forward pass; pass a layer that runs once.")
        n, k = acts.shape[:2]
        pairs = torch.cartesian_prod(torch.arange(n), torch.arange(k))  # (n*k, 2)
        zeroed = torch.empty(n * k, dtype=s.dtype, device=s.device)
        for j in range(0, n * k, batch_size):
            chunk = pairs[j : j + batch_size]
            keep = torch.ones(len(chunk), k, device=x.device)
            keep[torch.arange(len(chunk)), chunk[:, 1]] = 0.0
            state["keep"] = keep
            rows = chunk[:, 0].to(x.device)
            zeroed[j : j + len(chunk)] = select_score(run_model(model, x[rows]), target[rows], score, model)
        state["keep"] = None
    finally:
        handle.remove()
    return s, zeroed.view(n, k), acts


@outside_inference_mode
def sensitivity_violation(
    model: nn.Module,
    x: Tensor,
    layer: nn.Module | str,
    result: CamResult,
    score: str | None = None,
    batch_size: int = 64,
) -> MetricResult:
    """XGrad-CAM Sensitivity violation (Fu et al. 2020): ``sum_k |S(A) - S(A_{k->0}) - w_k sum_xy A^k|``.

    ``S`` is the target's score (the result's ``score_kind`` unless ``score`` says otherwise) of
    the model, ``A`` the output of ``layer`` on ``x``, ``A_{k->0}`` the same with channel ``k`` set
    to zero (a forward hook replaces the layer's output), ``w`` = ``result.weights``. The axiom
    asks that removing a channel lowers the score by exactly that channel's share of the map.
    Exact (0) for Grad-CAM and XGrad-CAM on a GAP -> linear head (docs/math.md (8.5)), first order only
    in deeper heads. The value is scale dependent: CAM's weights (``w_k``, not ``w_k / Z``)
    violate it on a mean-GAP head. Cost: ``1 + K`` forward passes per image.
    ``extras["per_channel"]``: (N, K) signed terms; ``extras["score"]``: ``S(A)`` (N,).
    """
    _need(result, CamResult, "sensitivity_violation")
    model = check_model(model)
    score = _score_of(result, score, model)
    batch_size = check_count(batch_size, "batch_size")
    _, module = find_layer(model, layer)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        tgt = _matching(result, x)
        s, zeroed, acts = _channel_zeroed_scores(model, x, module, tgt, score, batch_size)
    if acts.shape != result.activations.shape:
        raise ValueError(
            f"layer output {tuple(acts.shape)} differs from result.activations "
            f"{tuple(result.activations.shape)}: pass the layer the result was computed at."
        )
    share = result.weights.to(s.dtype) * acts.flatten(2).sum(-1).to(s.dtype)
    per_channel = (s[:, None] - zeroed) - share
    return MetricResult("sensitivity_violation", per_channel.abs().sum(1), {"per_channel": per_channel, "score": s})


@outside_inference_mode
def conservation_violation(
    model: nn.Module, x: Tensor, result: CamResult, score: str | None = None
) -> MetricResult:
    """XGrad-CAM Conservation violation (Fu et al. 2020): ``|S(x) - sum_xy raw(x, y)|``.

    ``S`` is the target's score (the result's ``score_kind`` unless ``score`` says otherwise),
    recomputed by one forward pass, and ``raw = sum_k w_k A^k`` the pre-ReLU map of ``result``.
    Exact (0) for XGrad-CAM on a bias-free piecewise-linear head (docs/math.md (8.3)), and for CAM on
    a bias-free **sum**-GAP head (the CAM paper's notation; 1f). With a bias ``b_c`` the residual
    of Grad-CAM on a mean-GAP head is ``|b_c|`` (1d), and CAM on a mean-GAP head is ``Z`` times
    too large. ``extras["signed"]``: ``S - sum raw``; ``extras["score"]``: ``S`` (N,).
    """
    _need(result, CamResult, "conservation_violation")
    model = check_model(model)
    score = _score_of(result, score, model)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        tgt = _matching(result, x)
        s = select_score(run_model(model, x), tgt, score, model)
    signed = s - result.raw.detach().flatten(1).sum(1).to(s.dtype)
    return MetricResult("conservation_violation", signed.abs(), {"signed": signed, "score": s})


def _explanation_tensor(result: Any) -> Tensor:
    if isinstance(result, CamResult):
        return result.raw.detach()
    if isinstance(result, Attribution):
        return result.values.detach()
    raise TypeError(f"method returned {type(result).__name__}; expected a CamResult or an Attribution.")


@outside_inference_mode
def implementation_invariance(
    explainer: Callable[..., Any],
    model_a: nn.Module,
    model_b: nn.Module,
    x: Tensor,
    target: Any = None,
    layer: Any = None,
    **explainer_kwargs: Any,
) -> MetricResult:
    """Implementation Invariance gap: ``max |E_a - E_b|`` per sample.

    ``E_a = explainer(model_a, x, ...)`` and ``E_b = explainer(model_b, x, ...)`` for two networks
    that compute the same function; ``E`` is the pre-ReLU ``raw`` map of a CamResult or the full
    ``values`` of an Attribution (never a normalised image). ``layer`` is a dotted name valid in
    both models or a pair ``(layer_a, layer_b)``; other keyword arguments go to both calls. The
    target is fixed to ``model_a``'s (argmax if ``None``). ``extras``: ``"output_gap"``
    (``max |model_a(x) - model_b(x)|`` per sample: check it is ~0, i.e. the networks are
    equivalent) and ``"relative"`` (the gap divided by ``max |E_a|``; 0 when both are 0).
    Gradients and IG are implementation invariant; methods that read internal layers need
    not be.
    """
    if not callable(explainer):
        raise TypeError(
            f"explainer must be a camlib method, passed as the function itself (e.g. camlib.saliency); "
            f"got {type(explainer).__name__}."
        )
    model_a, model_b = check_model(model_a), check_model(model_b)
    if isinstance(layer, (tuple, list)):
        if len(layer) != 2:
            raise ValueError("layer must be one name for both models or a pair (layer_a, layer_b).")
        layer_a, layer_b = layer
    else:
        layer_a = layer_b = layer
    if isinstance(layer_a, nn.Module) and layer_a is layer_b:
        raise ValueError("one module cannot be a layer of both models: pass its dotted name or a pair.")
    with model_guard(model_a), model_guard(model_b), torch.no_grad():
        out_a = run_model(model_a, check_input(x, model_a))
        out_b = run_model(model_b, check_input(x, model_b)).to(out_a)
    if out_a.shape != out_b.shape:
        raise ValueError(f"the models' outputs differ in shape: {tuple(out_a.shape)} vs {tuple(out_b.shape)}.")
    tgt = resolve_target(target, out_a, model_a)
    kw_a = dict(explainer_kwargs, **({"layer": layer_a} if layer_a is not None else {}))
    kw_b = dict(explainer_kwargs, **({"layer": layer_b} if layer_b is not None else {}))
    e_a = _explanation_tensor(explainer(model_a, x, target=tgt, **kw_a))
    e_b = _explanation_tensor(explainer(model_b, x, target=tgt, **kw_b))
    if e_a.shape != e_b.shape:
        raise ValueError(f"the two explanations differ in shape: {tuple(e_a.shape)} vs {tuple(e_b.shape)}.")
    gap = (e_a - e_b).abs().flatten(1).max(1).values
    scale = e_a.abs().flatten(1).max(1).values
    rel = torch.where(scale > 0, gap / scale.clamp_min(torch.finfo(scale.dtype).tiny), torch.zeros_like(gap))
    output_gap = (out_a - out_b).abs().flatten(1).max(1).values
    return MetricResult("implementation_invariance", gap, {"relative": rel, "output_gap": output_gap, "target": tgt})
