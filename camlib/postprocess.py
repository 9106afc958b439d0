"""Explicit post-processing for display: upsampling and normalisation.

No camlib method calls these for you; compare methods on their raw outputs and use these
only to draw them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["upsample", "normalize"]

_MODES = ("bilinear", "bicubic", "nearest", "area")


def upsample(map: Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize maps to ``size`` = (H, W) (an int means square).

    ``(N, h, w) -> (N, H, W)``, ``(h, w) -> (H, W)``, ``(N, C, h, w) -> (N, C, H, W)``.
    ``bilinear`` / ``bicubic`` use ``align_corners=False`` (pixel centres aligned, as in
    pytorch-grad-cam and OpenCV's ``resize``).
    """
    if not isinstance(map, Tensor):
        raise TypeError(f"map must be a torch.Tensor; got {type(map).__name__}.")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}.")
    if isinstance(size, int):
        size = (size, size)
    size = (int(size[0]), int(size[1]))
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

    A constant map (``max = min``) or an all-zero map returns zeros, never NaN. A (h, w)
    tensor is one map; otherwise the first dimension is the batch and each sample is scaled
    over all its other dimensions.
    """
    if not isinstance(map, Tensor):
        raise TypeError(f"map must be a torch.Tensor; got {type(map).__name__}.")
    if kind not in ("minmax", "max"):
        raise ValueError(f"kind must be 'minmax' or 'max'; got {kind!r}.")
    if map.ndim < 2:
        raise ValueError(f"map must have at least 2 dimensions (h, w); got {tuple(map.shape)}.")
    single = map.ndim == 2
    m = map[None] if single else map
    if not m.is_floating_point():
        m = m.float()
    flat = m.reshape(m.shape[0], -1)
    shape = (m.shape[0],) + (1,) * (m.ndim - 1)
    if kind == "minmax":
        lo = flat.min(dim=1).values.view(shape)
        span = flat.max(dim=1).values.view(shape) - lo
        shifted = m - lo
    else:
        span = flat.abs().max(dim=1).values.view(shape)
        shifted = m
    ok = span > 0
    out = torch.where(ok, shifted / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(m))
    return out[0] if single else out
