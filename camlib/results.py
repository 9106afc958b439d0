"""Result types returned by every camlib method.

A CAM-family method returns a :class:`CamResult`; a pixel attribution returns an
:class:`Attribution`. Both hold detached tensors on the model's device, the name of the
method (``method``), the explained class per sample (``target``), the explained score per
sample (``score``) and the space that score lives in (``score_kind``: ``"logit"``,
``"softmax"`` or ``"log_softmax"``). ``extras`` holds only method-specific intermediate
quantities; a key means the same thing in every result that has it.
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
    ``map = relu(raw)``. ``gradients`` is ``None`` for CAM, which needs none. ``layer`` is the
    dotted name of the explained layer. ``extras`` holds method-specific quantities (for
    teaching): ``"alpha"`` and ``"variant"`` for Grad-CAM++, ``"fc"``, ``"pool"`` and
    ``"bias"`` for CAM.
    """

    activations: Tensor  # (N, K, h, w)
    gradients: Tensor | None  # (N, K, h, w)
    weights: Tensor  # (N, K)
    raw: Tensor  # (N, h, w)
    map: Tensor  # (N, h, w)
    target: Tensor  # (N,) long
    score: Tensor  # (N,)
    method: str = ""
    layer: str = ""
    score_kind: str = "logit"
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attribution:
    """Output of a pixel attribution: one value per input element.

    ``delta`` is the completeness error ``sum(values) - (F(x) - F(baseline))`` per sample
    (Integrated Gradients only, ``None`` otherwise). ``extras``: ``"rule"``, ``"steps"`` and
    ``"baseline_score"`` for Integrated Gradients; ``"windows"``, ``"rows"``, ``"cols"``,
    ``"patch"`` and ``"stride"`` for occlusion.
    """

    values: Tensor  # same shape as the input
    target: Tensor  # (N,) long
    score: Tensor  # (N,)
    delta: Tensor | None = None  # (N,)
    method: str = ""
    score_kind: str = "logit"
    extras: dict[str, Any] = field(default_factory=dict)
