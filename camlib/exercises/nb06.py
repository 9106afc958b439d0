"""Checks for the exercises of notebook 06 (axioms: XGrad-CAM and Integrated Gradients).

* :func:`check_completeness_hides_errors`: a counterexample, a function whose Integrated Gradients with
  4 midpoint nodes add up to ``F(x) - F(x')`` (relative completeness error below 0.1 %) while the single
  attributions are off by more than 5 % (relative L1 error against a converged reference).
* :func:`check_converged_steps`: a procedure that chooses the number of steps of IG by doubling it until
  the attributions themselves, not only their sum, stop changing.

The checks compute IG themselves (``camlib.quadrature`` nodes and weights, one batched autograd call)
and, when an answer is not right yet, say which idea is missing without writing the answer.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..quadrature import nodes_and_weights
from ._check import ExerciseError, passed

__all__ = ["STEPS", "COMPLETENESS_BELOW", "PER_FEATURE_ABOVE", "path_ig", "check_completeness_hides_errors",
           "check_converged_steps"]

#: the midpoint rule with this many nodes is the approximation of the counterexample
STEPS = 4
#: its relative completeness error must be below this ...
COMPLETENESS_BELOW = 1e-3
#: ... and its relative per-feature (L1) error above this
PER_FEATURE_ABOVE = 0.05
_REFERENCE_STEPS = 4096


def path_ig(f: Callable[[Tensor], Tensor], x: Tensor, baseline: Tensor, rule: str, steps: int) -> Tensor:
    """IG of a batched scalar function ``f`` ``(P, d) -> (P,)`` at ``x`` from ``baseline`` (1-D tensors)."""
    t, w = nodes_and_weights(rule, steps, dtype=x.dtype)
    points = (baseline + t[:, None] * (x - baseline)).detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(f(points).sum(), points)
    return (x - baseline) * (w[:, None] * grads).sum(dim=0)


def check_completeness_hides_errors(fn: Callable[[], tuple]) -> None:
    """Check ``fn() -> (f, x, baseline)``: ``f`` maps a batch of points ``(P, d)`` to ``(P,)`` (any
    differentiable PyTorch expression), ``x`` and ``baseline`` are float64 tensors of shape ``(d,)``.

    With :data:`STEPS` midpoint nodes, IG must have a relative completeness error below
    :data:`COMPLETENESS_BELOW` and a relative per-feature error above :data:`PER_FEATURE_ABOVE`
    (``sum_i |IG_i - IG*_i| / sum_i |IG*_i|``, ``IG*`` with 4096 midpoint nodes).
    """
    name = "completeness_hides_errors"
    try:
        answer = fn()
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}.") from error
    if not (isinstance(answer, (tuple, list)) and len(answer) == 3 and callable(answer[0])):
        raise ExerciseError(f"{name}: return three things, (f, x, baseline), with f a function.")
    f, x, baseline = answer
    if not (isinstance(x, Tensor) and isinstance(baseline, Tensor) and x.dim() == 1 and x.shape == baseline.shape
            and x.numel() >= 2):
        raise ExerciseError(f"{name}: x and baseline must be 1-D tensors of one shape (d,), with d >= 2 features.")
    x, baseline = x.detach().double(), baseline.detach().double()
    try:
        with torch.enable_grad():
            ends = f(torch.stack([x, baseline]))
            approx = path_ig(f, x, baseline, "midpoint", STEPS)
            reference = path_ig(f, x, baseline, "midpoint", _REFERENCE_STEPS)
    except Exception as error:
        raise ExerciseError(f"{name}: evaluating IG of your f failed with {type(error).__name__}: {error}. f must map "
                            "a batch of points (P, d) to one score per point (P,), differentiably.") from error
    if not isinstance(ends, Tensor) or ends.shape != (2,):
        raise ExerciseError(f"{name}: f must return one score per point: for 2 points it returned "
                            f"{tuple(ends.shape) if isinstance(ends, Tensor) else type(ends).__name__}.")
    gap = float(ends[0] - ends[1])
    if abs(gap) < 1e-9:
        raise ExerciseError(f"{name}: F(x) - F(baseline) = {gap:.3g}: there is nothing to attribute, and a relative "
                            "completeness error is not defined. Choose x and the baseline so that F changes.")
    completeness = abs(float(approx.sum()) - gap) / abs(gap)
    per_feature = float((approx - reference).abs().sum() / reference.abs().sum().clamp_min(1e-300))
    numbers = f"completeness error {completeness:.2%}, per-feature error {per_feature:.1%}"
    if completeness >= COMPLETENESS_BELOW:
        raise ExerciseError(f"{name}: with {STEPS} midpoint nodes your example has a {numbers}; the completeness "
                            f"error must be below {COMPLETENESS_BELOW:.1%}.\nHint: the sum of the attributions must "
                            "come out right although the single attributions do not: the errors of different features "
                            "have to cancel in the sum.")
    if per_feature <= PER_FEATURE_ABOVE:
        raise ExerciseError(f"{name}: with {STEPS} midpoint nodes your example has a {numbers}; the per-feature "
                            f"error must be above {PER_FEATURE_ABOVE:.0%}.\nHint: 4 nodes must be too few for each "
                            "feature: its derivative along the path has to vary a lot between the nodes.")
    print(f"Correct: {name}: with {STEPS} midpoint nodes, {numbers}.")


# --------------------------------------------------------------------------- choosing the number of steps


def _reference_steps(ig_at: Callable[[int], Tensor], tol: float, max_steps: int = 1024):
    m = 2
    while 2 * m <= max_steps:
        small, large = ig_at(m), ig_at(2 * m)
        if float((large - small).abs().sum()) <= tol * float(large.abs().sum()):
            return 2 * m
        m *= 2
    return None


def _synthetic_cases() -> list[tuple[str, Callable[[int], Tensor], float, int]]:
    base = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    return [
        ("attributions that settle like 1/m", lambda m: base + torch.tensor([3.0, 1.0, -2.0], dtype=torch.float64) / m, 0.05, 1024),
        ("attributions whose sum is exact at every m", lambda m: torch.tensor([1.0 + 2.0 / m, -1.0 - 2.0 / m], dtype=torch.float64), 0.02, 1024),
        ("attributions that settle slowly (cap 64)", lambda m: base * (1.0 + 10.0 / m), 0.01, 64),
        ("attributions exact from the start", lambda m: base.clone(), 0.01, 1024),
    ]


def check_converged_steps(fn: Callable[..., object]) -> None:
    """Check ``fn(ig_at, tol, max_steps=1024) -> steps or None``.

    ``ig_at(m)`` returns the attributions with ``m`` nodes. For ``m = 2, 4, 8, ...`` compare ``ig_at(m)`` with
    ``ig_at(2m)``; at the first ``m`` where ``sum |ig_at(2m) - ig_at(m)| <= tol * sum |ig_at(2m)|`` return
    ``2m``; return ``None`` if that never happens with ``2m <= max_steps``. Then the check runs your
    procedure on the ``gap`` model and the thread's triangle, and reports what it chose.
    """
    name = "converged_steps"
    for label, ig_at, tol, max_steps in _synthetic_cases():
        calls: list[int] = []

        def counted(m: int, _f=ig_at) -> Tensor:
            calls.append(int(m))
            return _f(int(m))

        try:
            got = fn(counted, tol, max_steps=max_steps)
        except NotImplementedError:
            raise
        except Exception as error:
            raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error} on the case "
                                f"'{label}'.") from error
        expected = _reference_steps(ig_at, tol, max_steps)
        if got == expected:
            continue
        message = f"{name}: on the case '{label}' (tol = {tol}, max_steps = {max_steps}) you returned {got!r}."
        if expected is not None and got == expected // 2:
            hint = "you returned the smaller number of steps of the pair you compared: which of the two is more accurate?"
        elif expected is not None and got is not None and isinstance(got, int) and got < expected:
            hint = ("you stopped too early: the attributions still change by more than tol when m doubles there. "
                    "Compare them feature by feature (the L1 norm of their difference), not only through their sum, "
                    "relative to the L1 norm of the attributions at 2m.")
        elif expected is None:
            hint = ("the attributions never settle within max_steps in this case: say so (return None) instead of "
                    "returning a number of steps that was never checked.")
        elif got is None:
            hint = "the attributions do settle in this case, within max_steps: keep doubling until they do."
        else:
            hint = ("you went on too long: stop at the first m, starting from m = 2, where the attributions at m and 2m "
                    "agree within tol. Compare them feature by feature (the L1 norm of their difference), relative to "
                    "the L1 norm of the attributions at 2m, not through their sums.")
        raise ExerciseError(f"{message}\nHint: {hint}")
    passed(name)
    from ..data import THREAD, thread
    from ..models import load_model
    from ..pixel import integrated_gradients

    model, shapes = load_model("gap"), thread()
    x, t = shapes.images[THREAD["triangle"]:THREAD["triangle"] + 1], int(shapes.labels[THREAD["triangle"]])
    cache: dict[int, object] = {}

    def ig_cnn(m: int) -> Tensor:
        if m not in cache:
            cache[m] = integrated_gradients(model, x, target=t, steps=int(m), rule="midpoint", batch_size=256)
        return cache[m].values.double()

    chosen = fn(ig_cnn, 0.05, max_steps=64)
    if chosen is None or chosen not in cache:
        print("On the triangle (gap model, midpoint rule, tol = 5 %) your procedure found no m up to 64.")
        return None
    attr = cache[chosen]
    gap = float(attr.values.double().sum() - attr.delta.double().sum())
    print(f"On the triangle (gap model, midpoint rule, tol = 5 %) your procedure chooses m = {chosen}; "
          f"its completeness error there is {abs(float(attr.delta)) / abs(gap):.2%}.")
    return None
