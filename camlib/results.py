"""Result types returned by every camlib method.

A CAM-family method returns a :class:`CamResult`; a pixel attribution returns an
:class:`Attribution`. Both hold detached tensors on the model's device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["CamResult", "Attribution"]


@dataclass
class CamResult:
    """Output of a CAM-family method.

    ``raw = sum_k weights[:, k, None, None] * activations[:, k]`` (before any ReLU) and
    ``map = relu(raw)``. ``gradients`` is ``None`` for CAM, which needs none.
    ``extras`` holds method-specific intermediate quantities (for teaching), e.g. the
    Grad-CAM++ ``alpha`` (N,K,h,w) or the layer / fc names used.
    """

    activations: Tensor  # (N, K, h, w)
    gradients: Tensor | None  # (N, K, h, w)
    weights: Tensor  # (N, K)
    raw: Tensor  # (N, h, w)
    map: Tensor  # (N, h, w)
    target: Tensor  # (N,) long
    score: Tensor  # (N,)
    method: str = ""
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. Grad-CAM++ "alpha", CAM "pool"


@dataclass
class Attribution:
    """Output of a pixel attribution: one value per input element.

    ``delta`` is the completeness error ``sum(values) - (F(x) - F(baseline))`` per sample
    (Integrated Gradients only, ``None`` otherwise).
    """

    values: Tensor  # same shape as the input
    target: Tensor  # (N,) long
    score: Tensor  # (N,)
    delta: Tensor | None = None  # (N,)
    method: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
