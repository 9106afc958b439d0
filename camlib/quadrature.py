r"""Quadrature rules on [0, 1] for the Integrated Gradients path integral.

``integral_0^1 f(t) dt ~= sum_k w_k f(t_k)``. In every rule ``steps`` is the number of
nodes, i.e. the number of gradient evaluations, so that rules are compared at equal cost.

* ``riemann_left``:  ``t_k = k/m``,         ``k = 0..m-1``, ``w_k = 1/m``
* ``riemann_right``: ``t_k = k/m``,         ``k = 1..m`` (the IG paper's eq. 3), ``w_k = 1/m``
* ``midpoint``:      ``t_k = (k + 1/2)/m``, ``k = 0..m-1``, ``w_k = 1/m``
* ``trapezoid``:     ``t_k = k/(m-1)``,     ``k = 0..m-1``, ``w_k = 1/(m-1)``, halved at both ends
  (needs ``m >= 2``)
* ``gauss_legendre``: the ``m`` Gauss-Legendre nodes mapped from [-1, 1] to [0, 1], weights
  halved (exact for polynomials of degree ``2m - 1``; Captum's default)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["RULES", "nodes_and_weights"]

RULES = ("trapezoid", "riemann_left", "riemann_right", "midpoint", "gauss_legendre")


def nodes_and_weights(
    rule: str,
    steps: int,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Nodes ``t`` (steps,) in [0, 1] and weights ``w`` (steps,) with ``sum(w) = 1`` of ``rule``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an int; got {type(steps).__name__}.")
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    m = steps
    if rule == "riemann_left":
        t = np.arange(m) / m
        w = np.full(m, 1.0 / m)
    elif rule == "riemann_right":
        t = np.arange(1, m + 1) / m
        w = np.full(m, 1.0 / m)
    elif rule == "midpoint":
        t = (np.arange(m) + 0.5) / m
        w = np.full(m, 1.0 / m)
    elif rule == "trapezoid":
        if m < 2:
            raise ValueError("the trapezoid rule needs steps >= 2 (both end points).")
        t = np.arange(m) / (m - 1)
        w = np.full(m, 1.0 / (m - 1))
        w[0] *= 0.5
        w[-1] *= 0.5
    elif rule == "gauss_legendre":
        z, wz = np.polynomial.legendre.leggauss(m)
        t = (z + 1.0) / 2.0
        w = wz / 2.0
    else:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}.")
    return (
        torch.as_tensor(t, dtype=dtype, device=device),
        torch.as_tensor(w, dtype=dtype, device=device),
    )
