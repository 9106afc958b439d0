r"""The channel-weight rules of the CAM family, each a pure function of the activations and gradients.

A CAM-family method captures the activations ``A`` (N, K, h, w) of one layer and the gradients
``g = dy/dA`` (N, K, h, w) of the explained score ``y``, turns them into weights by its rule, and
returns ``raw = channel_weighted_sum(weights, A)``. The rules live here, once: the methods of
:mod:`camlib.cam_family`, the reference answers of the exercises and the explorers all call them.
Notation of docs/math.md §1: ``Z = h w``, ``s_k = sum_ij A^k_ij``.

* :func:`grad_cam_weights`       ``w_k = (1/Z) sum_ij g^k_ij``                         (Selvaraju et al., 2017)
* :func:`grad_cam_plus_weights`  ``w_k = (1/Z) sum_ij ReLU(g^k_ij)``                   (Lerma & Lucas, 2022)
* :func:`grad_cam_pp_weights`    ``alpha^k_ij = 1 / (2 + s_k g^k_ij)`` where ``g != 0`` (else 0),
  ``w_k = sum_ij alpha^k_ij ReLU(g^k_ij)``                                         (Chattopadhay et al., 2018, eq. 19)
* :func:`xgrad_cam_weights`      ``w_k = sum_ij (A^k_ij / s_k) g^k_ij`` (0 where ``s_k = 0``)  (Fu et al., 2020)
* :func:`counterfactual_weights` ``w_k = -(1/Z) sum_ij g^k_ij``                        (Selvaraju et al., 2017, §5)
* :func:`hires_cam_weights`      ``W^k_ij = g^k_ij``, element-wise (N, K, h, w)         (Draelos & Carin, 2020)
* :func:`layer_cam_weights`      ``W^k_ij = ReLU(g^k_ij)``, element-wise (N, K, h, w)   (Jiang et al., 2021)
* :func:`channel_weighted_sum`   ``raw = sum_k w_k A^k`` for channel weights (N, K), or
  ``raw = sum_k W^k * A^k`` (element-wise) for weights (N, K, h, w).

No rule adds an epsilon: divisions are masked where the denominator is 0, so nothing rescales
the weights. Every function takes finite tensors of one floating dtype (NaN or infinity raises a
ValueError) and returns that dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "grad_cam_weights",
    "grad_cam_plus_weights",
    "grad_cam_pp_weights",
    "xgrad_cam_weights",
    "counterfactual_weights",
    "hires_cam_weights",
    "layer_cam_weights",
    "channel_weighted_sum",
]

_VARIANTS = ("paper", "official")


def _check_maps(activations: object, gradients: object) -> None:
    for name, t in (("activations", activations), ("gradients", gradients)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (N, K, h, w); got {type(t).__name__}.")
        if t.ndim != 4:
            raise ValueError(f"{name} must be 4-D (N, K, h, w); got shape {tuple(t.shape)}.")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got {t.dtype}.")
    if activations.shape != gradients.shape:
        raise ValueError(
            f"activations {tuple(activations.shape)} and gradients {tuple(gradients.shape)} must have "
            "the same shape: the gradient of the score with respect to each activation."
        )
    if activations.dtype != gradients.dtype:
        raise TypeError(
            f"activations ({activations.dtype}) and gradients ({gradients.dtype}) must have the same "
            "dtype; convert one, e.g. gradients.to(activations.dtype)."
        )
    _check_finite(activations=activations, gradients=gradients)


def _check_finite(**tensors: Tensor) -> None:
    """Refuse NaN or infinite values: a rule applied to them gives NaN weights, never an answer."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(
                f"{name} contain NaN or infinite values; the weights and the map would be NaN. "
                "Find where they came from (camlib's methods refuse non-finite inputs and outputs)."
            )


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den != 0``, else 0 (masked before dividing: no inf * 0)."""
    ok = den != 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def grad_cam_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""Grad-CAM: ``w_k = (1/Z) sum_ij g^k_ij``, the spatial mean of the gradients; (N, K).

    The activations are not used (they are an argument so that every rule has the same call).
    """
    _check_maps(activations, gradients)
    return gradients.mean(dim=(2, 3))


def grad_cam_plus_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""Grad-CAM+ (Lerma & Lucas, 2022): ``w_k = (1/Z) sum_ij ReLU(g^k_ij)``; (N, K).

    The spatial **mean** of the positive gradients, like Grad-CAM's mean, so that it equals
    Grad-CAM when every gradient is positive; the sum ``W^+_k = Z w_k`` of the Grad-CAM++
    sandwich bound is ``weights * Z``.
    """
    _check_maps(activations, gradients)
    return torch.relu(gradients).mean(dim=(2, 3))


def grad_cam_pp_weights(
    activations: Tensor, gradients: Tensor, *, variant: str = "paper"
) -> tuple[Tensor, Tensor]:
    r"""Grad-CAM++ with the exponential head (eq. 19): ``(weights (N, K), alpha (N, K, h, w))``.

    ``alpha^k_ij = g^2 / (2 g^2 + s_k g^3) = 1 / (2 + s_k g^k_ij)`` where ``g^k_ij != 0``, and 0
    where ``g^k_ij = 0`` or ``2 + s_k g^k_ij = 0`` (possible only for signed activations), with
    ``s_k = sum_ab A^k_ab`` and ``g`` the gradient of the **logit**; ``w_k = sum_ij alpha^k_ij
    ReLU(g^k_ij)``. The paper differentiates ``S = exp(Y)``, which multiplies every weight by the
    same positive ``exp(Y^c)`` (it cancels inside alpha); that global factor is left out.

    ``variant="official"`` adds the authors' code's per-channel normalisation
    ``alpha <- alpha / sum_ij alpha_ij [g_ij > 0]`` (a zero sum is replaced by 1), which makes
    ``w_k`` an alpha-weighted mean of the positive gradients.
    """
    _check_maps(activations, gradients)
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be 'paper' or 'official'; got {variant!r}.")
    s = activations.sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(gradients != 0, _safe_div(torch.ones_like(gradients), 2.0 + s * gradients), torch.zeros_like(gradients))
    positive = torch.relu(gradients)
    if variant == "official":
        norm = (alpha * (positive > 0).to(alpha.dtype)).sum(dim=(2, 3), keepdim=True)
        alpha = alpha / torch.where(norm == 0, torch.ones_like(norm), norm)
    return (alpha * positive).sum(dim=(2, 3)), alpha


def xgrad_cam_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""XGrad-CAM (Fu et al., 2020): ``w_k = sum_ij (A^k_ij / s_k) g^k_ij``, ``s_k = sum_ab A^k_ab``; (N, K).

    An activation-weighted average of the gradient; a channel with ``s_k = 0`` gets ``w_k = 0``
    (no epsilon). Meant for post-ReLU layers (``A >= 0``), where ``s_k = 0`` means a dead channel.
    """
    _check_maps(activations, gradients)
    return _safe_div((activations * gradients).sum(dim=(2, 3)), activations.sum(dim=(2, 3)))


def counterfactual_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""Counterfactual Grad-CAM: ``w_k = -(1/Z) sum_ij g^k_ij`` (Grad-CAM's weights negated); (N, K).

    ``ReLU(sum_k w_k A^k)`` then keeps the regions whose removal would *raise* the score.
    """
    return -grad_cam_weights(activations, gradients)


def hires_cam_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""HiResCAM (Draelos & Carin, 2020): element-wise weights ``W^k_ij = g^k_ij``; (N, K, h, w).

    The gradient is not averaged over positions, so ``raw = sum_k g^k * A^k`` keeps each
    position's own sensitivity. It equals Grad-CAM's map exactly when every ``g^k`` is constant
    over positions (a mean-GAP linear head); on an affine head ``raw_ij`` is the drop of the score
    when position ``(i, j)`` is zeroed in every channel.
    """
    _check_maps(activations, gradients)
    return gradients.clone()


def layer_cam_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    r"""LayerCAM (Jiang et al., 2021): element-wise weights ``W^k_ij = ReLU(g^k_ij)``; (N, K, h, w).

    HiResCAM with the negative gradients dropped, position by position: for ``A >= 0`` the map is
    HiResCAM's plus ``sum_k ReLU(-g^k) * A^k >= 0``; on a mean-GAP linear head it is Grad-CAM+.
    """
    _check_maps(activations, gradients)
    return torch.relu(gradients)


def channel_weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    r"""The shared core: ``raw[n] = sum_k weights[n, k] * activations[n, k]`` -> (N, h, w), no ReLU.

    ``weights`` are channel weights (N, K), one number per map, or element-wise weights
    (N, K, h, w), one number per activation (``raw = sum_k W^k * A^k``, as HiResCAM and
    LayerCAM use). ``activations`` are (N, K, h, w); both must have the same floating dtype and
    finite values (NaN or infinity raises a ValueError).
    """
    if not isinstance(weights, Tensor) or not isinstance(activations, Tensor):
        raise TypeError("weights and activations must be torch tensors.")
    if weights.dtype != activations.dtype:
        raise TypeError(
            f"weights ({weights.dtype}) and activations ({activations.dtype}) must have the same dtype; "
            "convert one, e.g. weights.to(activations.dtype)."
        )
    if activations.ndim == 4 and weights.ndim in (2, 4) and weights.shape[:2] == activations.shape[:2]:
        _check_finite(weights=weights, activations=activations)
    if activations.ndim == 4 and weights.ndim == 2 and weights.shape == activations.shape[:2]:
        return torch.einsum("nk,nkhw->nhw", weights, activations)
    if activations.ndim == 4 and weights.shape == activations.shape:
        return (weights * activations).sum(dim=1)
    raise ValueError(
        f"weights must be (N, K) or (N, K, h, w) and activations (N, K, h, w) with the same N, K "
        f"(and h, w); got {tuple(weights.shape)} and {tuple(activations.shape)}."
    )
