r"""The CAM family on one core: channel weights times activations.

Every method below captures the activations ``A`` (N, K, h, w) of one layer and, except
CAM, the gradients ``g = dy/dA`` of the explained score ``y``. It then computes one channel
weight per feature map, ``w`` (N, K), by its own rule, and returns

    raw = sum_k w_k A^k          (before any ReLU: :func:`channel_weighted_sum`)
    map = ReLU(raw)

The rules (notation of docs/math.md §1, ``Z = h*w``, ``s_k = sum_ij A^k_ij``); each gradient
rule is a pure function of ``(A, g)`` in :mod:`camlib.weight_rules`, which the methods call:

* CAM (Zhou et al., 2016): ``w_k = W^c_k``, the fc weights of a GAP -> linear head, bias
  ignored. camlib uses the fc weights as they are, so with a **mean**-GAP head
  ``grad_cam.raw = cam.raw / Z`` and with a **sum**-GAP head the two are equal.
* Grad-CAM (Selvaraju et al., 2017): ``w_k = (1/Z) sum_ij g^k_ij`` (spatial mean).
* Grad-CAM+ (Lerma & Lucas, 2022): ``w_k = (1/Z) sum_ij ReLU(g^k_ij)`` (spatial mean of the
  positive gradients, so that it equals Grad-CAM when all gradients are positive).
* Grad-CAM++ (Chattopadhay et al., 2018, eq. 19, exponential head ``S = exp(Y)``):
  ``alpha_ij = 1 / (2 + s_k g_ij)`` where ``g_ij != 0``, else 0; ``w_k = sum_ij alpha_ij ReLU(g_ij)``.
* XGrad-CAM (Fu et al., 2020): ``w_k = sum_ij (A^k_ij / s_k) g^k_ij`` (0 where ``s_k = 0``).
* Counterfactual Grad-CAM: ``w_k = -(Grad-CAM w_k)``, so ``map = ReLU(-raw_Grad-CAM)``.
* HiResCAM (Draelos & Carin, 2020) and LayerCAM (Jiang et al., 2021) weigh each activation, not
  each channel: element-wise weights ``W = g`` and ``W = ReLU(g)`` (N, K, h, w), so
  ``raw = sum_k W^k * A^k``.

No method normalises or upsamples: see :mod:`camlib.postprocess`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ._hooks import capture_layer, model_guard, outside_inference_mode
from ._targets import (
    LOW_PRECISION,
    check_input,
    check_model,
    check_score,
    find_layer,
    refuse_underflow,
    resolve_target,
    run_model,
    score_gradient,
    select_score,
)
from .results import CamResult
from .weight_rules import (
    channel_weighted_sum,
    counterfactual_weights,
    grad_cam_plus_weights,
    grad_cam_pp_weights,
    grad_cam_weights,
    hires_cam_weights,
    layer_cam_weights,
    xgrad_cam_weights,
)

__all__ = [
    "channel_weighted_sum",
    "cam",
    "grad_cam",
    "grad_cam_plus",
    "grad_cam_pp",
    "xgrad_cam",
    "counterfactual",
    "hires_cam",
    "layer_cam",
]


# --------------------------------------------------------------------------- capture


def _capture(
    model: nn.Module, x: Tensor, layer: object, target: object, score: str
) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """One forward and one backward: ``(A, g, target, y, layer_name)``, all detached.

    ``g = d(sum_n y_n)/dA``; samples do not interact in eval mode, so row ``n`` of ``g``
    is ``dy_n/dA_n``. A layer whose output the score does not depend on raises.
    """
    model = check_model(model)
    check_score(score, model)
    name, module = find_layer(model, layer)
    with model_guard(model), torch.enable_grad():
        x = check_input(x, model).detach()
        with capture_layer(module, name) as cap:
            out = run_model(model, x)
        a = cap.single()
        t = resolve_target(target, out, model)
        y = select_score(out, t, score, model)
        g = refuse_underflow(score_gradient(y, a, f"layer {name!r}"), f"the gradient at layer {name!r}")
    return a.detach(), g.detach(), t, y.detach(), name


def _result(
    weights: Tensor,
    a: Tensor,
    g: Tensor | None,
    t: Tensor,
    y: Tensor,
    method: str,
    layer: str,
    score: str,
    **extras: object,
) -> CamResult:
    raw = channel_weighted_sum(weights, a)
    if raw.dtype in LOW_PRECISION:
        refuse_underflow(raw, "the map", channel_weighted_sum(weights.float(), a.float()))
    return CamResult(
        activations=a,
        gradients=g,
        weights=weights,
        raw=raw,
        map=torch.relu(raw),
        target=t,
        score=y,
        method=method,
        layer=layer,
        score_kind=score,
        extras=dict(extras),
    )


#: the methods defined for the logit only: they accept ``score="logit"`` and raise otherwise
LOGIT_ONLY = ("cam", "grad_cam_pp")


def _logit_only(method: str, score: str) -> None:
    if score != "logit":
        raise ValueError(
            f"{method} is defined for the logit only (score='logit'); got score={score!r}. "
            "Use camlib.grad_cam(model, x, layer, score=...) to explain a softmax or log-softmax score."
        )


# --------------------------------------------------------------------------- gradient methods


@outside_inference_mode
def grad_cam(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""Grad-CAM: ``w_k = (1/Z) sum_ij dy/dA^k_ij``, ``raw = sum_k w_k A^k``, ``map = ReLU(raw)``.

    ``y`` is the logit of the target class unless ``score`` says ``"softmax"`` or
    ``"log_softmax"``. ``layer`` is a submodule or its dotted name; ``A`` is that module's
    own output (see :mod:`camlib._hooks` for in-place operations that follow it).
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    return _result(grad_cam_weights(a, g), a, g, t, y, "grad_cam", name, score)


@outside_inference_mode
def grad_cam_plus(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""Grad-CAM+ (Lerma & Lucas, 2022): ``w_k = (1/Z) sum_ij ReLU(dy/dA^k_ij)``.

    The spatial **mean** of the positive gradients, like Grad-CAM's mean; the sum
    ``W^+_k = Z w_k`` used in the Grad-CAM++ sandwich bound is ``weights * Z``.
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    return _result(grad_cam_plus_weights(a, g), a, g, t, y, "grad_cam_plus", name, score)


@outside_inference_mode
def grad_cam_pp(
    model: nn.Module,
    x: Tensor,
    layer: object,
    *,
    target: object = None,
    score: str = "logit",
    variant: str = "paper",
) -> CamResult:
    r"""Grad-CAM++ with the exponential head, eq. 19 of Chattopadhay et al. (2018).

    With ``g = dY^c/dA`` (gradient of the **logit**) and ``s_k = sum_ab A^k_ab``:

    ``alpha_ij = g^2 / (2 g^2 + s_k g^3) = 1 / (2 + s_k g_ij)`` where ``g_ij != 0``; ``alpha = 0``
    where ``g_ij = 0`` (and where ``2 + s_k g_ij = 0``, possible only for signed activations).
    No epsilon is added, so nothing rescales the weights.

    ``w_k = sum_ij alpha_ij ReLU(g_ij)``. The paper differentiates ``S = exp(Y)``, which would
    multiply every weight by the same positive constant ``exp(Y^c)`` (it cancels inside
    ``alpha``); camlib leaves that global factor out, so ``weights`` use ``g`` of the logit.

    ``variant="official"`` adds the authors' code's per-channel normalisation:
    ``alpha <- alpha / sum_ij alpha_ij [g_ij > 0]`` (a zero sum is replaced by 1), making
    ``w_k`` an alpha-weighted *mean* of the positive gradients. The alphas used are in
    ``extras["alpha"]`` and the variant in ``extras["variant"]``. Grad-CAM++ is defined for the
    logit only: any other ``score`` raises a ValueError.
    """
    _logit_only("grad_cam_pp", score)
    if variant not in ("paper", "official"):
        raise ValueError(f"variant must be 'paper' or 'official'; got {variant!r}.")
    a, g, t, y, name = _capture(model, x, layer, target, score)
    w, alpha = grad_cam_pp_weights(a, g, variant=variant)
    return _result(w, a, g, t, y, "grad_cam_pp", name, score, alpha=alpha, variant=variant)


@outside_inference_mode
def xgrad_cam(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""XGrad-CAM (Fu et al., 2020): ``w_k = sum_ij (A^k_ij / s_k) dy/dA^k_ij``, ``s_k = sum_ab A^k_ab``.

    An activation-weighted average of the gradient. Channels with ``s_k = 0`` get ``w_k = 0``
    (no epsilon). Meant for post-ReLU layers (``A >= 0``); for signed activations ``s_k`` can
    be close to 0 and the weights large, so a UserWarning is emitted.
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    if bool((a < 0).any()):
        warnings.warn(
            f"layer {name!r} has negative activations; XGrad-CAM divides by sum_ij A^k_ij, which "
            "can be near 0 for signed maps. Prefer a post-ReLU layer.",
            UserWarning,
            stacklevel=3,
        )
    return _result(xgrad_cam_weights(a, g), a, g, t, y, "xgrad_cam", name, score)


@outside_inference_mode
def counterfactual(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""Counterfactual Grad-CAM: ``w_k = -(1/Z) sum_ij dy/dA^k_ij``, so ``map = ReLU(-raw_Grad-CAM)``.

    Highlights the regions whose removal would make the model *more* confident in the target.
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    return _result(counterfactual_weights(a, g), a, g, t, y, "counterfactual", name, score)


@outside_inference_mode
def hires_cam(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""HiResCAM (Draelos & Carin, 2020): ``raw = sum_k g^k * A^k``, ``map = ReLU(raw)``.

    Element-wise weights ``W = g = dy/dA`` (``weights`` is (N, K, h, w)): the gradient is not
    averaged. Equal to Grad-CAM on a mean-GAP linear head; on an affine head (flatten, then one
    linear layer) ``raw_ij`` is exactly the drop of ``y`` when position ``(i, j)`` is zeroed, and
    ``sum_ij raw = y - b_c``. pytorch-grad-cam's ``HiResCAM`` returns ``minmax(ReLU(raw))``
    resized; the authors' code returns ``raw``.
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    return _result(hires_cam_weights(a, g), a, g, t, y, "hires_cam", name, score)


@outside_inference_mode
def layer_cam(
    model: nn.Module, x: Tensor, layer: object, *, target: object = None, score: str = "logit"
) -> CamResult:
    r"""LayerCAM (Jiang et al., 2021): ``raw = sum_k ReLU(g^k) * A^k``, ``map = ReLU(raw)``.

    Element-wise weights ``W = ReLU(g)``: each position keeps its own positive gradient, which
    gives edge-like maps at early layers where Grad-CAM's averaged gradients cancel. On a mean-GAP
    linear head it equals Grad-CAM+. One layer per call (the paper fuses several; combine
    ``camlib.upsample``'d maps yourself). pytorch-grad-cam's ``LayerCAM`` returns
    ``minmax(ReLU(raw))`` resized.
    """
    a, g, t, y, name = _capture(model, x, layer, target, score)
    return _result(layer_cam_weights(a, g), a, g, t, y, "layer_cam", name, score)


# --------------------------------------------------------------------------- CAM


def _module_order(model: nn.Module, x: Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Modules in the order they finish during one forward pass, with their output shapes."""
    names = {id(m): n for n, m in model.named_modules()}
    order: list[tuple[str, nn.Module, tuple[int, ...]]] = []

    def hook(mod: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, Tensor):
            order.append((names[id(mod)], mod, tuple(output.shape)))

    handles = []
    try:
        for _, m in model.named_modules():
            handles.append(m.register_forward_hook(hook))
        run_model(model, x)
    finally:
        for h in handles:
            h.remove()
    return order


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


def _conv_layer(order: list[tuple[str, nn.Module, tuple[int, ...]]], before: int) -> str | None:
    """The last module that finishes before position ``before`` with a spatial (h*w > 1) 4-D
    output and a convolution inside it: the last convolutional block (``"layer4"`` in a
    ResNet, ``"features"`` in VGG and the course models)."""
    found = [n for n, m, s in order[:before] if n and len(s) == 4 and s[2] * s[3] > 1 and _has_conv(m)]
    return found[-1] if found else None


def _use_grad_cam(layer: str | None) -> str:
    where = f"layer={layer!r}" if layer else "layer=<the last convolutional block>"
    return f"use camlib.grad_cam(model, x, {where}) instead, which generalises CAM to any head."


@outside_inference_mode
def cam(
    model: nn.Module,
    x: Tensor,
    layer: object = None,
    *,
    target: object = None,
    score: str = "logit",
    fc: object = None,
) -> CamResult:
    r"""CAM (Zhou et al., 2016): ``raw = sum_k W^c_k A^k`` with ``W`` the weights of the final fc.

    Needs a GAP -> linear head: the fc input must equal the spatial mean (or sum) of ``A``
    and the fc output must be the model output; camlib checks both numerically and raises
    a ValueError suggesting :func:`grad_cam` (at a convolutional layer) otherwise. The fc bias
    is ignored (it does not vary over space) and no ``1/Z`` is applied: for a mean-GAP head
    ``mean_ij(raw) + b_c = Y^c`` and ``grad_cam(...).raw = cam(...).raw / Z``; for a sum-GAP
    head ``sum_ij(raw) + b_c = Y^c``. ``extras["pool"]`` says which ("mean" or "sum").

    ``layer`` defaults to the last convolutional block whose output is a spatial (h*w > 1)
    4-D map before the fc runs (``"features"`` for the course models, ``"layer4"`` for a
    ResNet); ``fc`` defaults to the last ``nn.Linear`` that runs. ``gradients`` is ``None``.
    CAM is defined for the logit only: any other ``score`` raises a ValueError.
    """
    _logit_only("cam", score)
    model = check_model(model)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        order = _module_order(model, x) if layer is None or fc is None else None
        if fc is None:
            linears = [i for i, (_, m, _s) in enumerate(order) if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(
                    "CAM needs a GAP -> linear head but the model runs no nn.Linear; "
                    + _use_grad_cam(_conv_layer(order, len(order)))
                )
            fc_pos = linears[-1]
            fc = order[fc_pos][0]
        elif order is not None:
            fc_name, _ = find_layer(model, fc, "fc")
            runs = [i for i, (n, _m, _s) in enumerate(order) if n == fc_name]
            if not runs:
                raise ValueError(f"fc={fc_name!r} did not run in the forward pass; pass the "
                                 "final nn.Linear of the model.")
            fc_pos = runs[-1]
        if layer is None:
            layer = _conv_layer(order, fc_pos)
            if layer is None:
                raise ValueError(
                    "could not find a convolutional layer with a spatial output before the fc layer; "
                    "pass layer= (the last convolutional block)."
                )
        layer_name, layer_mod = find_layer(model, layer)
        fc_name, fc_mod = find_layer(model, fc, "fc")
        if not isinstance(fc_mod, nn.Linear):
            raise TypeError(f"fc={fc_name!r} must be an nn.Linear; got {type(fc_mod).__name__}.")
        fc_in: list[Tensor] = []
        fc_out: list[Tensor] = []

        def fc_hook(mod: nn.Module, inputs: tuple, output: Tensor) -> None:
            fc_in.append(inputs[0].detach().clone())
            fc_out.append(output.detach().clone())

        handle = fc_mod.register_forward_hook(fc_hook)
        try:
            with capture_layer(layer_mod, layer_name) as cap:
                out = run_model(model, x)
        finally:
            handle.remove()
        a = cap.single()
        t = resolve_target(target, out, model)
        pool = _gap_kind(a, fc_in, fc_out, out)
        if pool is None:
            if not _has_conv(layer_mod):
                order = order if order is not None else _module_order(model, x)
                suggestion = _conv_layer(order, len(order))
            else:
                suggestion = layer_name
            raise ValueError(
                f"CAM needs the model to end with global average pooling of {layer_name!r} followed "
                f"by the linear layer {fc_name!r}; this model does not, so " + _use_grad_cam(suggestion)
            )
        w = fc_mod.weight.detach()[t].to(a.dtype)
        bias = (
            fc_mod.bias.detach()[t].to(a.dtype)
            if fc_mod.bias is not None
            else torch.zeros_like(t, dtype=a.dtype)
        )
        y = out.gather(1, t.view(-1, 1)).squeeze(1)
    return _result(w, a.detach(), None, t, y.detach(), "cam", layer_name, score, fc=fc_name, pool=pool, bias=bias)


def _gap_kind(a: Tensor, fc_in: list[Tensor], fc_out: list[Tensor], out: Tensor) -> str | None:
    """"mean" or "sum" if the fc is a GAP -> linear head on ``a`` that ends the model, else None."""
    if len(fc_in) != 1:
        return None
    feat = fc_in[0].reshape(fc_in[0].shape[0], -1)
    if feat.shape != a.shape[:2] or fc_out[0].shape != out.shape:
        return None
    # Numerical check, relative to the size of the values (float32 sums carry rounding).
    rel = 1e-9 if a.dtype == torch.float64 else 1e-4
    if (fc_out[0] - out).abs().max() > rel * (1.0 + float(out.abs().max())):
        return None
    for kind, pooled in (("mean", a.mean(dim=(2, 3))), ("sum", a.sum(dim=(2, 3)))):
        if (feat - pooled).abs().max() <= rel * (1.0 + float(pooled.abs().max())):
            return kind
    return None
