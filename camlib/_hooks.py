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

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["model_guard", "LayerCapture", "capture_layer"]


@contextmanager
def model_guard(model: nn.Module) -> Iterator[None]:
    """Run the body with ``model`` in eval mode; restore every module's ``training`` flag,
    every parameter's ``requires_grad`` and ``.grad`` afterwards, exceptions included.

    Explanations are computed in eval mode so that dropout is off and BatchNorm uses its
    running statistics (and does not update them): each sample is then explained
    independently of the rest of the batch.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in zip(params, flags, grads):
            if p.requires_grad != flag:
                p.requires_grad_(flag)
            if p.grad is not grad:
                p.grad = grad


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
                f"layer {self.name!r} outputs shape {tuple(a.shape)}; CAM methods need a 4-D "
                "(N, K, h, w) feature map. Choose a convolutional block, e.g. the last one before "
                "the pooling."
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
