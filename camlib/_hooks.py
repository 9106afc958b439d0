"""Per-call capture of one layer's output, and a guard that leaves the model as it was (private).

Which tensor is explained
-------------------------
The forward hook keeps the layer's own output ``A`` and hands a *clone* of it to the rest of
the network. An in-place operation that follows the layer (``nn.ReLU(inplace=True)`` right
after a convolution, as in torchvision's ResNet) therefore modifies the clone, never ``A``.
Both the activations and the gradients camlib reports refer to the same tensor: the output
of the hooked module itself, as the module returned it (for a conv followed by an in-place
ReLU, that is the pre-ReLU conv output). The clone is an identity in autograd, so
``dY/dA`` is exactly the gradient of the score with respect to that output.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import Tensor, nn

from ._targets import check_input, check_model, find_layer, run_model, unwrap_compiled

__all__ = [
    "model_guard",
    "outside_inference_mode",
    "LayerCapture",
    "capture_layer",
    "predict",
    "predict_with_layer",
]

F = TypeVar("F", bound=Callable)


def outside_inference_mode(fn: F) -> F:
    """Run ``fn`` with inference mode off (gradients off until it enables them), so that a call
    made inside ``torch.inference_mode()`` builds its autograd graph and returns normal tensors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not torch.is_inference_mode_enabled():
            return fn(*args, **kwargs)
        with torch.inference_mode(False), torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _compiled_children(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """``(parent, name, compiled child)`` for every ``torch.compile``'d submodule."""
    found = []
    for parent in model.modules():
        for name, child in parent._modules.items():
            if isinstance(getattr(child, "_orig_mod", None), nn.Module):
                found.append((parent, name, child))
    return found


@contextmanager
def model_guard(model: nn.Module) -> Iterator[None]:
    """Run the body on ``model`` in eval mode, eagerly, outside inference mode; leave it as it was.

    Restored afterwards, exceptions included: every module's ``training`` flag, every
    parameter's ``requires_grad`` and ``.grad``, and every buffer (a buffer the body changed in
    place, detected by its version counter, gets its old values back; a buffer the body
    replaced gets its old tensor back). Explanations are computed in eval mode so that dropout
    is off and BatchNorm uses its running statistics: each sample is then explained
    independently of the rest of the batch.

    ``model`` is the module itself (see ``_targets.check_model``, which unwraps a compiled
    model); ``torch.compile``'d submodules are swapped for their original modules during the
    body, so that hooks see eager gradients. Inside ``torch.inference_mode()`` the body runs
    with inference mode off (and gradients off unless the body enables them), so that camlib
    can build an autograd graph and returns normal tensors.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    buffers = [
        (module, name, buf, buf._version, buf.detach().clone())
        for module in model.modules()
        for name, buf in module._buffers.items()
        if buf is not None
    ]
    compiled = _compiled_children(model)
    grad_enabled = torch.is_grad_enabled()
    try:
        with torch.inference_mode(False), torch.set_grad_enabled(grad_enabled):
            for parent, name, child in compiled:
                parent._modules[name] = unwrap_compiled(child)
            model.eval()
            yield
    finally:
        for parent, name, child in reversed(compiled):
            parent._modules[name] = child
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in zip(params, flags, grads):
            if p.requires_grad != flag:
                p.requires_grad_(flag)
            if p.grad is not grad:
                p.grad = grad
        with torch.no_grad():
            for module, name, buf, version, saved in buffers:
                if module._buffers.get(name) is not buf:
                    module._buffers[name] = buf
                if buf._version != version:
                    buf.copy_(saved)


class LayerCapture:
    """Forward hook state: the outputs the hooked module produced during one forward pass."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outputs: list[Tensor] = []

    def hook(self, module: nn.Module, inputs: tuple, output: object) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(
                f"layer {self.name!r} returns {type(output).__name__}, not a tensor; hook a module "
                "whose output is the (N, K, h, w) feature map."
            )
        if torch.is_grad_enabled() and not output.requires_grad:
            # Frozen early layers: make the map a leaf we can differentiate with respect to.
            output = output.detach().requires_grad_(True)
        self.outputs.append(output)
        # Downstream (possibly in-place) operations act on the clone, never on A.
        return output.clone()

    def single(self) -> Tensor:
        """The one (N, K, h, w) output of the layer; clear error if it ran 0 or >1 times."""
        if not self.outputs:
            raise ValueError(
                f"layer {self.name!r} did not run during the forward pass; choose a module that the "
                "model's forward actually calls."
            )
        if len(self.outputs) > 1:
            raise ValueError(
                f"layer {self.name!r} ran {len(self.outputs)} times in one forward pass (a shared "
                "module); choose a module that runs exactly once."
            )
        a = self.outputs[0]
        if a.ndim != 4:
            raise ValueError(
                f"layer {self.name!r} outputs shape {tuple(a.shape)}, not a 4-D (N, K, h, w) feature "
                "map. Choose a convolutional block, e.g. the last one before the pooling."
            )
        return a


@contextmanager
def capture_layer(module: nn.Module, name: str) -> Iterator[LayerCapture]:
    """Register the capture hook on ``module`` for the body only; always removed."""
    cap = LayerCapture(name)
    handle = module.register_forward_hook(cap.hook)
    try:
        yield cap
    finally:
        handle.remove()


def predict(model: nn.Module, x: Tensor, batch_size: int | None = None) -> Tensor:
    """``model(x)`` for the course layer (widgets, figures): checked, under :func:`model_guard`
    and ``torch.no_grad()``, so that it is the eval-mode output the methods explain."""
    model = check_model(model)
    with model_guard(model), torch.no_grad():
        return run_model(model, check_input(x, model), batch_size)


def predict_with_layer(model: nn.Module, x: Tensor, layer: object) -> tuple[Tensor, Tensor]:
    """``(model(x), A)`` with ``A`` the (N, K, h, w) output of ``layer``, as :func:`predict` runs it."""
    model = check_model(model)
    name, module = find_layer(model, layer)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        with capture_layer(module, name) as cap:
            out = run_model(model, x)
        return out, cap.single()
