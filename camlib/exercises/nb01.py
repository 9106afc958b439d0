"""Checks for the exercises of notebook 01 (gradients of a linear regression).

Exercise 1 (find a counterexample), ``redundant(x)`` and a point ``x_star``: a function of two
features and a point at which *each* single-feature occlusion with baseline 0 changes nothing,
``f(x) - f(x with x_i = 0) = 0`` for i = 1, 2, although removing both does,
``f(x) - f(0) != 0``. (For a linear model this is impossible: its single drops add up to
``f(x) - f(0)``.) Any ``f`` with two redundant features works, e.g. ``max(x1, x2)`` at ``(1, 1)``.

Exercise 2 (predict), ``ig_of_triple_product(x, m)``: the closed form of the m-step right Riemann
sum of Integrated Gradients with baseline 0 for ``f(x) = x1 x2 x3``. Along the path ``a x`` the
gradient is ``a^2 (x2 x3, x1 x3, x1 x2)``, so
``IG_i = x1 x2 x3 * (1/m) sum_{k=1..m} (k/m)^2 = x1 x2 x3 (m + 1)(2m + 1) / (6 m^2)`` for every i.

Each check runs the learner's answer, compares it with what autograd or the model itself gives,
and explains what differs without printing the reference answer.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = ["check_redundancy_counterexample", "check_ig_of_triple_product", "right_riemann_ig"]

ScalarFunction = Callable[[Tensor], Tensor]


def _as_scalar(value: object, name: str) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    raise ExerciseError(f"{name}: f must return a number or a one-element tensor, got {type(value).__name__}.")


def check_redundancy_counterexample(f: ScalarFunction, x: Tensor) -> None:
    """Check that single-feature occlusions (baseline 0) of ``f`` at ``x`` are all 0 while ``f(x) != f(0)``."""
    name = "redundancy counterexample"
    if not isinstance(x, Tensor) or x.ndim != 1 or x.numel() < 2:
        raise ExerciseError(f"{name}: x must be a 1-D tensor with at least two features, e.g. torch.tensor([a, b]).")
    x = x.detach().to(torch.float64)
    zero = torch.zeros_like(x)
    try:
        full, empty = _as_scalar(f(x.clone()), name), _as_scalar(f(zero.clone()), name)
        drops = []
        for i in range(x.numel()):
            occluded = x.clone()
            occluded[i] = 0.0
            drops.append(full - _as_scalar(f(occluded), name))
    except NotImplementedError:
        raise
    except ExerciseError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}") from error
    total = full - empty
    if abs(total) < 1e-6:
        raise ExerciseError(
            f"{name}: f(x) - f(0) = {total:.3g}: removing every feature must change the output, otherwise there is "
            "nothing to explain.\nHint: choose x so that the output at x differs from the output at the baseline."
        )
    moved = [(i, d) for i, d in enumerate(drops) if abs(d) > 1e-9]
    if moved:
        listing = ", ".join(f"feature {i}: {d:.3g}" for i, d in moved)
        linear = abs(sum(drops) - total) < 1e-9
        raise ExerciseError(
            f"{name}: occluding one feature alone still changes the output ({listing}; f(x) - f(0) = {total:.3g})."
            + ("\nHint: your single drops add up to the total drop, as they do for every linear model. You need "
               "features that stand in for each other: as long as one of them is present, the output should not "
               "care whether the other one is." if linear else
               "\nHint: look for a function in which either feature alone already produces the full output.")
        )
    print(f"Correct: at x = {x.tolist()} every single occlusion drop is 0 while f(x) - f(0) = {total:.3g}: "
          "occlusion misses redundant features.")


def right_riemann_ig(f: ScalarFunction, x: Tensor, m: int) -> Tensor:
    """Integrated Gradients of ``f`` at ``x`` with baseline 0 by the m-step right Riemann sum (autograd)."""
    total = torch.zeros_like(x)
    for k in range(1, m + 1):
        point = ((k / m) * x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(point), point)
        total += grad
    return x * total / m


def _triple(x: Tensor) -> Tensor:
    return x[0] * x[1] * x[2]


def check_ig_of_triple_product(ig_of_triple_product: Callable[[Tensor, int], Tensor]) -> None:
    """Check the learner's closed form against the autograd Riemann sum for ``f = x1 x2 x3``, baseline 0."""
    name = "ig_of_triple_product"
    cases = [
        (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 1),
        (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 4),
        (torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64), 10),
        (torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64), 1000),
    ]
    hints = [
        (lambda got, exp, x, m: torch.allclose(got, torch.full_like(x, float(_triple(x)) / 3), rtol=1e-6),
         "you gave the exact integral (an equal third each). The exercise asks for the m-step right Riemann "
         "sum, which is complete only as m grows: evaluate the gradient at the points k/m, k = 1..m."),
        (lambda got, exp, x, m: torch.allclose(got, torch.full_like(x, float(_triple(x))) * (m + 1) / (2 * m),
                                               rtol=1e-6),
         "that is the formula of the two-factor product x1 x2 from the notebook. With three factors the "
         "gradient along the path a x grows like a^2, not like a: which sum of powers of k/m do you need?"),
        (lambda got, exp, x, m: torch.allclose(got.sum(), _triple(x), rtol=1e-6),
         "your attributions add up exactly to f(x) - f(0) for every m; the right Riemann sum does so only "
         "in the limit m -> infinity."),
        (lambda got, exp, x, m: True,
         "write the gradient of x1 x2 x3 at the point a x, multiply the i-th component by x_i and average over "
         "a = 1/m, 2/m, ..., 1; the sum of the squares 1 + 4 + ... + m^2 has a closed form."),
    ]
    compare_outputs(name, ig_of_triple_product, lambda x, m: right_riemann_ig(_triple, x, m), cases, hints,
                    rtol=1e-6, atol=1e-9)
    passed(name)
