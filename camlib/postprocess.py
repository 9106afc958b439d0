"""Explicit post-processing for display: upsampling and normalisation.

No camlib method calls these for you; compare methods on their raw outputs and use these
only to draw them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._targets import as_pair

__all__ = ["upsample", "normalize"]

_MODES = ("bilinear", "bicubic", "nearest", "area")


def _check_map(map: object) -> None:
    if not isinstance(map, Tensor):
        raise TypeError(f"map must be a torch.Tensor; got {type(map).__name__}.")
    if map.ndim < 2:
        raise ValueError(f"map must have at least 2 dimensions (h, w); got shape {tuple(map.shape)}.")
    if map.numel() == 0:
        raise ValueError(f"map is empty (shape {tuple(map.shape)}); pass at least one map with h, w >= 1.")
    if (map.is_floating_point() or map.is_complex()) and not bool(torch.isfinite(map).all()):
        raise ValueError(
            "map contains NaN or infinite values; camlib maps from finite inputs are finite, so "
            "find where the non-finite values came from (or clean them with torch.nan_to_num)."
        )


def upsample(map: Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize maps to ``size`` = (H, W) (an int means square).

    ``(N, h, w) -> (N, H, W)``, ``(h, w) -> (H, W)``, ``(N, C, h, w) -> (N, C, H, W)``.
    ``size`` is an int or a pair of positive ints. An empty or non-finite map raises.
    ``bilinear`` / ``bicubic`` use ``align_corners=False`` (pixel centres aligned, as in
    pytorch-grad-cam and OpenCV's ``resize``).
    """
    _check_map(map)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}.")
    size = as_pair(size, "size")
    if map.ndim == 2:
        x = map[None, None]
    elif map.ndim == 3:
        x = map[:, None]
    elif map.ndim == 4:
        x = map
    else:
        raise ValueError(f"map must be (h, w), (N, h, w) or (N, C, h, w); got {tuple(map.shape)}.")
    if not x.is_floating_point():
        x = x.float()
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    y = F.interpolate(x, size=size, mode=mode, **kwargs)
    if map.ndim == 2:
        return y[0, 0]
    if map.ndim == 3:
        return y[:, 0]
    return y


def normalize(map: Tensor, kind: str = "minmax") -> Tensor:
    """Scale each map separately.

    * ``"minmax"``: ``(m - min m) / (max m - min m)``, into [0, 1];
    * ``"max"``: ``m / max |m|``, into [-1, 1] (for a non-negative map: ``m / max m``).

    A constant map (``max = min``) or an all-zero map returns zeros, never NaN; an empty or
    non-finite map raises (a NaN is never turned into zeros). A (h, w)
    tensor is one map; otherwise the first dimension is the batch and each sample is scaled
    over all its other dimensions.
    """
    _check_map(map)
    if kind not in ("minmax", "max"):
        raise ValueError(f"kind must be 'minmax' or 'max'; got {kind!r}.")
    single = map.ndim == 2
    m = map[None] if single else map
    if not m.is_floating_point():
        m = m.float()
    shape = (m.shape[0],) + (1,) * (m.ndim - 1)
    # divide by max |m| first: values in [-1, 1], so max - min cannot overflow
    peak = m.reshape(m.shape[0], -1).abs().max(dim=1).values.view(shape)
    m = _safe_ratio(m, peak)
    if kind == "minmax":
        flat = m.reshape(m.shape[0], -1)
        lo = flat.min(dim=1).values.view(shape)
        m = _safe_ratio(m - lo, flat.max(dim=1).values.view(shape) - lo)
    return m[0] if single else m


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0 (masked before dividing)."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))
