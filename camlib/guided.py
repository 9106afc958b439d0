r"""Guided backpropagation, DeconvNet and Guided Grad-CAM: a different backward rule at each ReLU.

The three pixel attributions below differ from the gradient only at the rectifiers. With the
forward input ``z`` of a ReLU and the signal ``R`` arriving from above in the backward pass:

* gradient:                  ``R * 1[z > 0]``
* DeconvNet (Zeiler & Fergus, 2014):             ``ReLU(R)``            (ignores ``z``)
* guided backpropagation (Springenberg et al., 2014): ``ReLU(R) * 1[z > 0]``

Every other layer (convolutions, linear layers, pooling, batch normalisation, tanh, sigmoid,
softmax) passes the ordinary gradient; max-pooling "switches" are exactly autograd's routing.
For one hidden layer ``F(x) = v . ReLU(W x)`` this gives ``W^T (v * 1[Wx > 0])``,
``W^T ReLU(v)`` and ``W^T (ReLU(v) * 1[Wx > 0])``; with no ReLU at all the three coincide.

Guided Grad-CAM (Selvaraju et al., 2017, section 3) multiplies guided backpropagation by the
Grad-CAM map upsampled to the input: ``GBP * U(ReLU(sum_k alpha_k A^k))``, broadcast over the
input channels.

Which activations get the rule
------------------------------
The rule is installed, for the duration of one call, on every ``nn.ReLU`` module, and on
``nn.LeakyReLU`` / ``nn.PReLU`` with slope ``a`` on the negative side (``f'(z) = a`` for
``z <= 0``), which camlib treats with the natural extension (our choice; the papers use ReLU
only): guided ``ReLU(R) * f'(z)``, DeconvNet ``f(R)`` (the same activation applied to the
backward signal). Both reduce to the rules above for ``a = 0``.

A forward pre-hook keeps the module's input ``z`` (cloned when the module is in-place, so the
in-place op cannot overwrite it), and a forward hook replaces the module's output by
``f(z)`` computed by an autograd function whose backward is the chosen rule. The rule therefore
acts on the activation's own path only (another consumer of ``z`` receives its ordinary
gradient, unlike Captum, whose hook sits on ``z`` itself), a module called several times gets
the rule at every call, and the hooks are removed when the call ends, exceptions included.

Functional ReLUs: why the autograd graph is checked
---------------------------------------------------
A ReLU written as ``torch.nn.functional.relu(x)``, ``torch.relu``, ``x.relu()`` or
``x.clamp(min=0)`` inside ``forward`` is not a module, so no hook can reach it; Captum and
pytorch-grad-cam then silently return a plain gradient at those units. camlib instead inspects
the autograd graph of the hooked forward pass: the replaced modules' own ReLU nodes are
disconnected from the output, so any rectifier node still reachable from it (``ReluBackward``,
``ThresholdBackward``, ``ClampBackward``, functional leaky ReLU / PReLU) was applied outside a
module, and the call raises a ValueError that says how to fix the model. The graph sees every
such op however it was spelled (Python or C++, in-place or not) and only those that reach the
score; a ``__torch_function__`` mode would see Python-level calls only and would also count
ReLUs whose result is never used. Activations for which guided backpropagation has no rule
(GELU, SiLU, ELU, Mish, Softplus, Hardswish, ReLU6/Hardtanh) raise a ValueError too. Not
recognised: a rectifier spelled as arithmetic (``x * (x > 0)``, ``torch.where``,
``torch.maximum(x, 0)``) or hidden in a custom autograd function.

Deliberate differences from the peers (each checked by a test)
--------------------------------------------------------------
* Captum ``GuidedBackprop`` / ``Deconvolution`` hook only ``nn.ReLU`` and apply the ReLU to the
  *total* gradient of ``z``: the same numbers as camlib unless ``z`` has another consumer.
* Captum ``GuidedGradCam`` upsamples with ``"nearest"`` by default; camlib uses bilinear
  (``align_corners=False``), as the paper does; pass ``mode="nearest"`` to match Captum.
* pytorch-grad-cam's ``GuidedBackpropReLUModel`` explains batch item 0 only (HWC numpy) and
  replaces the model's ReLU modules, restoring fresh non-in-place ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._hooks import model_guard, outside_inference_mode
from ._targets import (
    check_input,
    check_model,
    check_score,
    refuse_underflow,
    resolve_target,
    run_model,
    score_gradient,
    select_score,
)
from .cam_family import grad_cam
from .postprocess import upsample
from .results import Attribution

__all__ = ["guided_backprop", "deconvnet", "guided_grad_cam"]

#: the backward rules at a rectifier ("gradient" reproduces autograd; used by the tests)
RULES = ("gradient", "guided", "deconvnet")

#: module types that receive the rule
GATES = (nn.ReLU, nn.LeakyReLU, nn.PReLU)

# autograd node name -> readable name, for rectifiers applied outside a module
_FUNCTIONAL_GATES = {
    "ReluBackward0": "relu (torch.nn.functional.relu, torch.relu or Tensor.relu)",
    "ThresholdBackward0": "threshold (torch.nn.functional.threshold)",
    "ClampMinBackward0": "clamp_min",
    "ClampBackward1": "clamp",
    "LeakyReluBackward0": "leaky_relu (torch.nn.functional.leaky_relu)",
    "PreluKernelBackward0": "prelu (torch.nn.functional.prelu)",
}
# activations with no guided-backpropagation rule
_NO_RULE = {
    "HardtanhBackward0": "ReLU6/Hardtanh",
    "GeluBackward0": "GELU",
    "SiluBackward0": "SiLU",
    "EluBackward0": "ELU/SELU",
    "CeluBackward0": "CELU",
    "MishBackward0": "Mish",
    "SoftplusBackward0": "Softplus",
    "HardswishBackward0": "Hardswish",
    "RreluWithNoiseBackward0": "RReLU",
}


class _Gate(torch.autograd.Function):
    """``f(z) = z`` for ``z > 0`` else ``slope * z`` (slope 0: ReLU), with the backward ``rule``."""

    @staticmethod
    def forward(ctx, z: Tensor, slope: Tensor | None, rule: str) -> Tensor:  # type: ignore[override]
        pos = z > 0
        out = z.clamp_min(0) if slope is None else torch.where(pos, z, slope * z)
        ctx.save_for_backward(pos)
        ctx.slope = slope
        ctx.rule = rule
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, r: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (pos,) = ctx.saved_tensors
        slope = ctx.slope
        if ctx.rule == "deconvnet":  # f applied to the backward signal
            gate = r > 0
            signal = r
        else:
            gate = pos
            signal = r.clamp_min(0) if ctx.rule == "guided" else r
        if slope is None:
            out = torch.where(gate, signal, torch.zeros_like(signal))
        else:
            out = torch.where(gate, signal, slope * signal)
        return out, None, None


def _slope(module: nn.Module, z: Tensor) -> Tensor | None:
    if isinstance(module, nn.ReLU):
        return None
    if isinstance(module, nn.LeakyReLU):
        return torch.tensor(float(module.negative_slope), dtype=z.dtype, device=z.device)
    weight = module.weight.detach().to(dtype=z.dtype, device=z.device)  # nn.PReLU
    if weight.numel() == 1 or z.ndim < 2:
        return weight.reshape(())
    return weight.reshape((1, -1) + (1,) * (z.ndim - 2))


@contextmanager
def _gate_rule(gates: list[nn.Module], rule: str, calls: list[int]) -> Iterator[None]:
    """Replace the output of every module in ``gates`` by ``_Gate(z)`` for the body only."""
    pending: dict[int, list[Tensor]] = {}

    def pre(module: nn.Module, inputs: tuple) -> tuple | None:
        z = inputs[0]
        pending.setdefault(id(module), []).append(z)
        if getattr(module, "inplace", False) and isinstance(z, Tensor):
            return (z.clone(), *inputs[1:])  # the in-place op must not overwrite z
        return None

    def post(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        z = pending[id(module)].pop()
        calls[0] += 1
        return _Gate.apply(z, _slope(module, z), rule)

    handles = []
    try:
        for module in gates:
            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _unreached_gates(out: Tensor) -> tuple[Counter, Counter]:
    """Rectifiers still reachable from ``out`` in the autograd graph, and rule-less activations."""
    functional: Counter = Counter()
    no_rule: Counter = Counter()
    seen: dict[int, object] = {}  # id -> node: holding each node keeps its id from being reused
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        name = type(node).__name__
        if name in _FUNCTIONAL_GATES:
            functional[_FUNCTIONAL_GATES[name]] += 1
        elif name in _NO_RULE:
            no_rule[_NO_RULE[name]] += 1
        stack.extend(nxt for nxt, _ in node.next_functions)
    return functional, no_rule


def _describe(counts: Counter) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))


def _modified_gradient(
    model: nn.Module, x: Tensor, target: object, score: str, rule: str, method: str
) -> Attribution:
    """The gradient of the explained score with respect to ``x`` under the backward ``rule``."""
    model = check_model(model)
    check_score(score, model)
    gates = [m for m in model.modules() if isinstance(m, GATES)]
    calls = [0]
    with model_guard(model), torch.enable_grad():
        x = check_input(x, model).detach()
        reference = None
        if any(getattr(m, "inplace", False) for m in gates):
            with torch.no_grad():
                reference = run_model(model, x)
        xi = x.clone().requires_grad_(True)
        with _gate_rule(gates, rule, calls):
            out = run_model(model, xi)
        if out.grad_fn is None:
            raise ValueError(
                f"{method}: the model output does not depend on x through autograd (a detach, "
                "torch.no_grad inside forward, or a constant output), so there is nothing to "
                "backpropagate."
            )
        functional, no_rule = _unreached_gates(out)
        if functional:
            raise ValueError(
                f"{method}: the model applies a rectifier outside an nn.ReLU / nn.LeakyReLU / "
                f"nn.PReLU module ({_describe(functional)}). No hook can reach such a call, so "
                f"those units would pass the plain gradient and the map would be a mixture passed "
                "off as " + method + ". Replace each call by a module: self.act = nn.ReLU() in "
                "__init__ and x = self.act(x) in forward (camlib.saliency gives the plain gradient)."
            )
        if no_rule:
            raise ValueError(
                f"{method} is defined for ReLU gates (camlib extends it to LeakyReLU and PReLU); this "
                f"model also uses {_describe(no_rule)}, which have no {method} rule. Use "
                "camlib.saliency, camlib.integrated_gradients or camlib.smooth_grad for this model."
            )
        if reference is not None and not torch.allclose(out.detach(), reference, rtol=1e-5, atol=1e-6):
            raise ValueError(
                f"{method}: with the rule installed the model's output changed. Its forward reuses a "
                "tensor that an in-place ReLU (nn.ReLU(inplace=True)) overwrites, and camlib keeps "
                "the ReLU's input intact. Use nn.ReLU(inplace=False) in that place."
            )
        t = resolve_target(target, out, model)
        y = select_score(out, t, score, model)
        g = refuse_underflow(score_gradient(y, xi, "the input x"), f"the {method} gradient")
    return Attribution(
        values=g.detach(),
        target=t,
        score=y.detach(),
        method=method,
        score_kind=score,
        extras={"modified_calls": calls[0]},
    )


@outside_inference_mode
def guided_backprop(
    model: nn.Module, x: Tensor, *, target: object = None, score: str = "logit"
) -> Attribution:
    r"""Guided backpropagation (Springenberg et al., 2014): the input gradient of the score with
    ``R -> ReLU(R) * 1[z > 0]`` at every ReLU.

    ``values`` has the shape of ``x`` and is signed (negative values come only from the layers
    below the first ReLU). ``extras["modified_calls"]`` counts the activation calls that used
    the rule. Raises a ValueError for a model whose rectifiers are not all modules (see the
    module docstring). Meant for ReLU networks; for LeakyReLU / PReLU see the module docstring.
    """
    return _modified_gradient(model, x, target, score, "guided", "guided_backprop")


@outside_inference_mode
def deconvnet(
    model: nn.Module, x: Tensor, *, target: object = None, score: str = "logit"
) -> Attribution:
    r"""DeconvNet (Zeiler & Fergus, 2014) as a backward rule: ``R -> ReLU(R)`` at every ReLU,
    whatever the forward input ``z`` was; every other layer is transposed as in the gradient.

    Same conventions and checks as :func:`guided_backprop`.
    """
    return _modified_gradient(model, x, target, score, "deconvnet", "deconvnet")


@outside_inference_mode
def guided_grad_cam(
    model: nn.Module,
    x: Tensor,
    layer: object,
    *,
    target: object = None,
    score: str = "logit",
    mode: str = "bilinear",
) -> Attribution:
    r"""Guided Grad-CAM: ``values = GBP(x) * U(ReLU(sum_k alpha_k A^k))``, ``alpha_k`` = Grad-CAM weights.

    ``U`` upsamples the Grad-CAM map of ``layer`` to the input size (``mode``: ``"bilinear"``,
    the paper's choice, or ``"nearest"``, Captum's default; see :func:`camlib.upsample`); the map
    multiplies every input channel. No normalisation. Both halves are returned:
    ``extras["guided_backprop"]`` (the GBP values), ``extras["grad_cam"]`` (the
    :class:`~camlib.results.CamResult`) and ``extras["upsampled_cam"]`` ((N, H, W)). The target is
    resolved once (argmax if ``None``) and used by both halves.
    """
    cam = grad_cam(model, x, layer, target=target, score=score)
    gbp = guided_backprop(model, x, target=cam.target, score=score)
    up = upsample(cam.map, tuple(x.shape[-2:]), mode=mode).to(gbp.values.dtype)
    values = gbp.values * up[:, None]
    return Attribution(
        values=values,
        target=cam.target,
        score=cam.score,
        method="guided_grad_cam",
        score_kind=score,
        extras={"guided_backprop": gbp.values, "grad_cam": cam, "upsampled_cam": up, "mode": mode},
    )
