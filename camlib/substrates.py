r"""What replaces a removed pixel: the substrates of deletion and insertion.

Deletion removes the pixels a map ranks highest and watches the score fall; insertion puts them
back. What a removed pixel becomes decides what the measure can see (docs/math.md §10):

* ``"black"`` (or any number, e.g. ``0.5`` for grey; or a tensor broadcastable to the image): a
  constant. On the course's shapes a constant fill keeps the removed region's **outline**: a black
  silhouette of a square is still a square, and the model still sees it. Kept so that the
  course can show the failure.
* ``"blur"``: the same pixels of a Gaussian blur of the image (:func:`camlib.metrics.blur`,
  kernel 11, sigma 5, as in the RISE code).
* ``"mean"``: each channel of a removed pixel takes that channel's mean over the image,
  ``b_c = (1/HW) sum_p x_{c,p}`` (one colour per image).
* ``"road"``: the noisy linear imputation of ROAD (Rong et al., ICML 2022). Each removed value is
  the weighted mean of its eight neighbours inside the image, weight ``1/6`` for the four direct
  neighbours and ``1/12`` for the four diagonal ones, normalised by the weights of the neighbours
  that exist (at the border); removed neighbours are unknowns themselves, so the removed pixels
  of an image solve one sparse linear system per channel. Gaussian noise of standard deviation
  ``noise`` is then added to the imputed pixels. The default ``noise=0.0025`` in the [0, 1]
  image space is ROAD's 0.01 in the course models' normalised units (they divide by 0.25). When
  every pixel of an image is removed the system has no data; the fill is then the image's mean
  colour (plus the noise).

``"black"``, ``"blur"`` and ``"mean"`` are *fixed*: one substrate image per input, whatever is
removed (:func:`substrate_image`). ``"road"`` depends on the set of removed pixels, so it is
computed for each step of a curve (:func:`fill`), and so is a **function**
``substrate(x, removed) -> images`` of your own (only its values at removed pixels are used).

The linear system is symmetric positive definite whenever at least one pixel is known, and is
solved for the whole batch at once by conjugate gradients (float64 for float64 input, else
float32) until every image's residual norm is below ``tol``.
"""

from __future__ import annotations

import numbers
from typing import Callable, Union

import torch
from torch import Tensor

__all__ = [
    "SUBSTRATES",
    "FIXED",
    "ROAD_NOISE",
    "Substrate",
    "check_substrate",
    "is_fixed",
    "mean_colour",
    "substrate_image",
    "noisy_linear_imputation",
    "fill",
]

#: The named substrates.
SUBSTRATES: tuple[str, ...] = ("black", "grey", "blur", "mean", "road")
#: Named substrates that give one image per input, independent of the removed pixels.
FIXED: tuple[str, ...] = ("black", "grey", "blur", "mean")
#: Default standard deviation of ROAD's noise, in [0, 1] image units (0.01 in normalised units).
ROAD_NOISE: float = 0.0025

#: A substrate: a name from :data:`SUBSTRATES`, a number (a constant fill), a tensor, or a
#: function ``(x, removed) -> images``.
Substrate = Union[str, float, int, Tensor, Callable[[Tensor, Tensor], Tensor]]

_CONSTANTS = {"black": 0.0, "grey": 0.5}
# neighbour offsets (row, column) and their weights: 1/6 direct, 1/12 diagonal (they sum to 1)
_NEIGHBOURS = tuple(
    (dr, dc, 1.0 / 12.0 if dr and dc else 1.0 / 6.0)
    for dr in (-1, 0, 1)
    for dc in (-1, 0, 1)
    if dr or dc
)


def check_substrate(substrate: object) -> Substrate:
    """Return ``substrate`` if camlib knows it, else raise an error that lists the choices."""
    if isinstance(substrate, str):
        if substrate not in SUBSTRATES:
            raise ValueError(
                f"unknown substrate {substrate!r}; choose one of {SUBSTRATES}, a number (a constant "
                "fill such as 0.0 for black) or a tensor broadcastable to the images."
            )
        return substrate
    if isinstance(substrate, bool):
        raise TypeError("substrate must be a name, a number or a tensor, not a bool.")
    if isinstance(substrate, numbers.Real):
        return float(substrate)
    if isinstance(substrate, Tensor) or callable(substrate):
        return substrate
    raise TypeError(
        f"substrate must be one of {SUBSTRATES}, a number, a tensor or a function (x, removed) -> "
        f"images; got {type(substrate).__name__}."
    )


def is_fixed(substrate: Substrate) -> bool:
    """True when the substrate is one image per input whatever is removed (not ``"road"``, not a function)."""
    substrate = check_substrate(substrate)
    return isinstance(substrate, (Tensor, float)) or substrate in FIXED


def _check_images(x: object) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError("x must be a floating-point image batch (N, C, H, W).")
    return x


def mean_colour(x: Tensor) -> Tensor:
    """Each image's per-channel mean, broadcast to the image: ``b_{c,p} = (1/HW) sum_q x_{c,q}``."""
    x = _check_images(x)
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


def substrate_image(x: Tensor, substrate: Substrate) -> Tensor:
    """The substrate image of a fixed substrate, same shape as ``x`` (N, C, H, W).

    ``"black"`` -> 0, ``"grey"`` -> 0.5, a number -> that constant, a tensor -> broadcast,
    ``"blur"`` -> :func:`camlib.metrics.blur` of ``x``, ``"mean"`` -> :func:`mean_colour`.
    ``"road"`` has no such image (it depends on the removed pixels): use :func:`fill`.
    """
    x = _check_images(x)
    substrate = check_substrate(substrate)
    if isinstance(substrate, (Tensor, float)):  # checked like every baseline of camlib
        from ._targets import baseline_like

        return baseline_like(substrate, x, "substrate")
    if substrate in _CONSTANTS:
        return torch.full_like(x, _CONSTANTS[substrate])
    if substrate == "blur":
        from .metrics import blur

        return blur(x)
    if substrate == "mean":
        return mean_colour(x)
    if callable(substrate):
        raise ValueError(
            "a substrate function depends on which pixels are removed, so it has no single image; "
            "call camlib.substrates.fill(x, removed, substrate) instead."
        )
    raise ValueError(
        "the 'road' substrate depends on which pixels are removed, so it has no single image; "
        "call camlib.substrates.fill(x, removed, 'road') instead."
    )


def _neighbour_sum(u: Tensor) -> Tensor:
    """``sum_q w_q u_{p+q}`` over the eight neighbours inside the image (zero outside)."""
    h, w = u.shape[-2:]
    padded = torch.nn.functional.pad(u, (1, 1, 1, 1))
    out = torch.zeros_like(u)
    for dr, dc, weight in _NEIGHBOURS:
        out.add_(padded[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w], alpha=weight)
    return out


def _check_removed(removed: object, x: Tensor) -> Tensor:
    if not isinstance(removed, Tensor):
        raise TypeError("removed must be a bool tensor (N, H, W): True where a pixel is removed.")
    if removed.ndim == 2:
        removed = removed[None].expand(x.shape[0], -1, -1)
    if removed.ndim == 4 and removed.shape[1] == 1:
        removed = removed[:, 0]
    if removed.ndim != 3 or removed.shape[0] != x.shape[0] or removed.shape[1:] != x.shape[2:]:
        raise ValueError(
            f"removed must be (N, H, W) = ({x.shape[0]}, {x.shape[2]}, {x.shape[3]}), one mask per "
            f"image; got {tuple(removed.shape)}."
        )
    return removed.to(device=x.device, dtype=torch.bool)


def noisy_linear_imputation(
    x: Tensor,
    removed: Tensor,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    tol: float = 1e-5,
    max_iter: int = 4000,
) -> Tensor:
    r"""ROAD's noisy linear imputation (Rong et al., 2022): ``x`` with the ``removed`` pixels filled.

    For a removed pixel ``p`` with in-image neighbours ``N(p)`` and weights ``w_q`` (1/6 direct,
    1/12 diagonal) the imputed value solves ``(sum_{q in N(p)} w_q) u_p = sum_{q in N(p)} w_q u_q``
    in every channel, where ``u_q = x_q`` for a kept neighbour and an unknown for a removed one.
    Gaussian noise ``N(0, noise^2)`` from a generator seeded with ``seed`` is added to the imputed
    values; kept pixels are returned unchanged. With ``noise=0`` a constant image, and an image
    affine in row and column, are reproduced exactly at removed pixels whose neighbours all lie
    inside the image (docs/math.md 10.18). An image with every pixel removed gets its mean colour.
    """
    x = _check_images(x)
    removed = _check_removed(removed, x)
    if float(noise) < 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise}.")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    xs = x.detach().to(dtype)
    r = removed[:, None].to(dtype)
    known = xs * (1.0 - r)
    degree = _neighbour_sum(torch.ones(1, 1, *x.shape[2:], dtype=dtype, device=x.device))
    rhs = _neighbour_sum(known) * r

    def operator(u: Tensor) -> Tensor:
        return (degree * u - _neighbour_sum(u)) * r

    u = torch.zeros_like(xs)
    residual = rhs.clone()
    direction = residual.clone()
    rs = residual.flatten(1).square().sum(1)
    tiny = torch.finfo(dtype).tiny
    for _ in range(int(max_iter)):
        if float(rs.max().sqrt()) < tol:
            break
        a_dir = operator(direction)
        step = rs / (direction * a_dir).flatten(1).sum(1).clamp_min(tiny)
        u.add_(step[:, None, None, None] * direction)
        residual.sub_(step[:, None, None, None] * a_dir)
        rs_new = residual.flatten(1).square().sum(1)
        direction = residual + (rs_new / rs.clamp_min(tiny))[:, None, None, None] * direction
        rs = rs_new
    everything = removed.flatten(1).all(1)
    if bool(everything.any()):
        u[everything] = xs[everything].mean(dim=(2, 3), keepdim=True).expand_as(xs[everything])
    if float(noise) > 0:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        u = u + float(noise) * torch.randn(u.shape, generator=gen, dtype=dtype).to(u.device)
    return (known + u * r).to(x.dtype)


def fill(x: Tensor, removed: Tensor, substrate: Substrate, seed: int = 0) -> Tensor:
    """``x`` with the ``removed`` pixels (N, H, W, all channels) replaced by the substrate.

    Fixed substrates: ``where(removed, substrate_image(x, substrate), x)``; ``"road"``:
    :func:`noisy_linear_imputation` with noise seeded by ``seed``; a function ``f``:
    ``where(removed, f(x, removed), x)`` (kept pixels always stay as they were).
    """
    x = _check_images(x)
    removed = _check_removed(removed, x)
    substrate = check_substrate(substrate)
    if isinstance(substrate, str) and substrate == "road":
        return noisy_linear_imputation(x, removed, seed=seed)
    if callable(substrate) and not isinstance(substrate, Tensor):
        out = substrate(x, removed)
        if not isinstance(out, Tensor) or out.shape != x.shape:
            raise ValueError(
                f"a substrate function must return images of the input's shape {tuple(x.shape)}; got "
                f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}."
            )
        if not bool(torch.isfinite(out).all()):
            raise ValueError("the substrate function returned NaN or infinite values.")
        return torch.where(removed[:, None], out.to(x.dtype), x)
    return torch.where(removed[:, None], substrate_image(x, substrate), x)
