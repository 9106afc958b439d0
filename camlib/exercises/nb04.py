"""Exercise checks for notebook 04 (Grad-CAM and how it generalises CAM).

Each ``check_*`` runs the learner's function on several seeded inputs and raises
:class:`~camlib.exercises._check.ExerciseError` naming what differs and pointing at the idea that is
missing, without giving the answer. It prints one success line when every case agrees.

* :func:`check_bias_shift_factor`: the factor by which the softmax or log-softmax Grad-CAM map of
  class ``c`` is multiplied when the bias of class ``c`` is shifted (mean-GAP linear head).
* :func:`check_blind_score`: a counterexample, a score that depends on the activations but whose
  Grad-CAM weights (channel averages of its gradient) are all zero.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..weight_rules import grad_cam_weights
from ._check import ExerciseError, compare_outputs, passed

__all__ = ["check_bias_shift_factor", "check_blind_score"]


# --------------------------------------------------------------------------- bias shift


def _reference_factor(p_before: Tensor, p_after: Tensor, score: str) -> Tensor:
    # M_pc = (p_c / Z) sum_{j != c} p_j (CAM_c - CAM_j) and sum_{j != c} p_j = 1 - p_c: a shift of b_c
    # multiplies every p_j (j != c) by (1 - p'_c) / (1 - p_c), and the softmax map has one more factor p_c.
    if score == "softmax":
        return p_after * (1 - p_after) / (p_before * (1 - p_before))
    return (1 - p_after) / (1 - p_before)


def _cases_factor() -> list[tuple[Tensor, Tensor, str]]:
    gen = torch.Generator().manual_seed(404)
    cases = []
    for n, score in [(5, "softmax"), (5, "log_softmax"), (4, "softmax"), (4, "log_softmax")]:
        p = torch.rand(n, generator=gen, dtype=torch.float64) * 0.9 + 0.05
        delta = torch.randn(n, generator=gen, dtype=torch.float64) * 2.0
        odds = p / (1 - p) * torch.exp(delta)  # b_c + delta multiplies the odds p_c / (1 - p_c) by e^delta
        cases.append((p, odds / (1 + odds), score))
    return cases


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-6, atol=1e-10))


def check_bias_shift_factor(fn: Callable[[Tensor, Tensor, str], Tensor]) -> None:
    """Check ``fn(p_before, p_after, score) -> factor``, each of shape ``(N,)``.

    On a mean-GAP linear head, adding a constant to the bias ``b_c`` of the explained class moves its
    probability from ``p_before`` to ``p_after`` and multiplies the pre-ReLU Grad-CAM map of
    ``score`` (``"softmax"`` or ``"log_softmax"``) by one positive number per image, ``factor``.
    """
    name = "bias_shift_factor"

    def only_pc(got, expected, p, q, score):
        return score == "softmax" and _close(got, q / p)

    def unchanged(got, expected, p, q, score):
        return _close(got, torch.ones_like(expected))

    def inverted(got, expected, p, q, score):
        return _close(got, 1 / expected)

    def log_for_softmax(got, expected, p, q, score):
        return score == "softmax" and _close(got, _reference_factor(p, q, "log_softmax"))

    def softmax_for_log(got, expected, p, q, score):
        return score == "log_softmax" and _close(got, _reference_factor(p, q, "softmax"))

    hints = [
        (unchanged, "the map does change size: the probabilities in front of the CAM differences move "
                    "when b_c moves. Write the map in its second form, a sum over j != c."),
        (inverted, "your factor is upside down: it should be the map after the shift divided by the map "
                   "before."),
        (only_pc, "you have the change of the factor p_c in front, but the sum over j != c also changes: "
                  "what does sum_{j != c} p_j equal?"),
        (log_for_softmax, "this is right for the log-softmax map; the softmax map has one more factor in "
                          "front of the sum."),
        (softmax_for_log, "the log-softmax map has no factor p_c in front of the sum; only the sum over "
                          "j != c changes."),
    ]
    compare_outputs(name, fn, _reference_factor, _cases_factor(), hints, rtol=1e-6, atol=1e-10)
    return passed(name)


# --------------------------------------------------------------------------- a score Grad-CAM cannot see


def _blind_cases() -> list[Tensor]:
    gen = torch.Generator().manual_seed(44)
    return [torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 for shape in [(2, 3, 4, 4), (1, 2, 5, 3), (3, 4, 6, 6)]]


def check_blind_score(fn: Callable[[Tensor], Tensor]) -> None:
    """Check ``fn(activations) -> scores``: ``(N, K, h, w)`` non-negative activations to ``(N,)`` scores
    that depend on the activations (a non-zero gradient for every image) while every Grad-CAM weight,
    the average of the gradient over the positions of a channel, is zero, so the Grad-CAM map is zero.
    """
    name = "blind_score"
    for number, activations in enumerate(_blind_cases(), start=1):
        a = activations.clone().requires_grad_(True)
        try:
            scores = fn(a)
        except NotImplementedError:
            raise
        except Exception as error:
            raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error} on test case "
                                f"{number} (activations of shape {tuple(a.shape)}).") from error
        if not isinstance(scores, Tensor) or scores.shape != (a.shape[0],):
            shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ExerciseError(f"{name}: on test case {number} the activations have shape {tuple(a.shape)}, so "
                                f"the answer should be one score per image, shape ({a.shape[0]},); got {shape}.")
        if not scores.requires_grad:
            raise ExerciseError(f"{name}: on test case {number} your score does not depend on the activations "
                                "(it carries no gradient). A zero map is then the right answer; find a score "
                                "that does depend on them.")
        (gradients,) = torch.autograd.grad(scores.sum(), a, allow_unused=True)
        if gradients is None:
            gradients = torch.zeros_like(a)
        per_image = gradients.flatten(1).abs().amax(dim=1)
        if bool((per_image <= 1e-9).any()):
            n = int((per_image <= 1e-9).nonzero()[0])
            raise ExerciseError(f"{name}: on test case {number} the score of image {n} does not depend on the "
                                "activations (its gradient is zero everywhere), so its zero map would be right. "
                                "Find a score that depends on them.")
        weights = grad_cam_weights(a.detach(), gradients)
        worst = weights.abs().max()
        if float(worst) > 1e-9 * (1 + float(gradients.abs().max())):
            n, k = (int(i) for i in (weights.abs() == worst).nonzero()[0])
            raise ExerciseError(
                f"{name}: on test case {number} channel {k} of image {n} gets the Grad-CAM weight "
                f"{float(weights[n, k]):.4g}, not 0. The weight of a channel is the average of the gradient "
                "over its positions: make the sensitivities within each channel cancel, for any activations."
            )
    return passed(name)
