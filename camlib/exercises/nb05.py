"""Exercise checks for notebook 05 (Grad-CAM++ and Grad-CAM with positive gradients).

* :func:`check_discrimination_counterexample`: activations and the gradients of two classes for which
  Grad-CAM tells the classes apart (cosine of their maps below 0.3) while Grad-CAM+ does not (above 0.95).
* :func:`check_pp_counterexample`: a counterexample to "Grad-CAM++ is Grad-CAM+ up to a factor", i.e.
  activations ``A >= 0`` and gradients ``g`` of one image whose Grad-CAM++ map (eq. 19, alpha = 0 where
  g = 0, no epsilon) and Grad-CAM+ map point in clearly different directions (cosine below 0.9).

The check computes both maps itself and, when the example does not work, says which idea is missing
(non-negative activations, a positive gradient, products ``s_k g`` that differ between channels,
channels that light different positions) without writing an example.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..weight_rules import channel_weighted_sum, grad_cam_plus_weights, grad_cam_pp_weights, grad_cam_weights
from ._check import ExerciseError

__all__ = ["COSINE_BELOW", "GRAD_CAM_BELOW", "GRAD_CAM_PLUS_ABOVE", "pp_and_plus_maps", "check_pp_counterexample",
           "check_discrimination_counterexample"]

#: the cosine between the two maps that a counterexample must stay below
COSINE_BELOW = 0.9
#: class discrimination: the cosine of the two classes' Grad-CAM maps must be below this ...
GRAD_CAM_BELOW = 0.3
#: ... and that of their Grad-CAM+ maps above this
GRAD_CAM_PLUS_ABOVE = 0.95


def pp_and_plus_maps(activations: Tensor, gradients: Tensor) -> tuple[Tensor, Tensor]:
    """The Grad-CAM++ (eq. 19) and Grad-CAM+ maps ``(N, h, w)`` after their ReLU, from ``A`` and ``g``."""
    w_pp, _ = grad_cam_pp_weights(activations, gradients)
    w_plus = grad_cam_plus_weights(activations, gradients)
    return torch.relu(channel_weighted_sum(w_pp, activations)), torch.relu(channel_weighted_sum(w_plus, activations))


def _cosine(a: Tensor, b: Tensor) -> float:
    a, b = a.flatten(), b.flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def check_pp_counterexample(fn: Callable[[], tuple[Tensor, Tensor]]) -> None:
    """Check ``fn() -> (activations, gradients)``, two tensors of one shape ``(1, K, h, w)``, ``A >= 0``,
    for which the Grad-CAM++ and Grad-CAM+ maps have a cosine below :data:`COSINE_BELOW`."""
    name = "pp_counterexample"
    try:
        answer = fn()
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}.") from error
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2 and all(isinstance(t, Tensor) for t in answer)):
        raise ExerciseError(f"{name}: return two tensors, (activations, gradients); got {type(answer).__name__}.")
    a, g = (t.detach().to(torch.float64) for t in answer)
    if a.dim() != 4 or a.shape != g.shape or a.shape[0] != 1:
        raise ExerciseError(f"{name}: activations and gradients must both have shape (1, K, h, w); got "
                            f"{tuple(a.shape)} and {tuple(g.shape)}.")
    if not (torch.isfinite(a).all() and torch.isfinite(g).all()):
        raise ExerciseError(f"{name}: your tensors contain NaN or infinite values.")
    if bool((a < 0).any()):
        raise ExerciseError(f"{name}: some activations are negative. The layer is the output of a ReLU, so A >= 0; "
                            "the sandwich bound, and this exercise, assume it.")
    if not bool((g > 0).any()):
        raise ExerciseError(f"{name}: no gradient is positive, so both maps are zero and there is nothing to compare. "
                            "Only positive gradients contribute to either method.")
    pp, plus = pp_and_plus_maps(a, g)
    if float(pp.abs().max()) == 0.0 or float(plus.abs().max()) == 0.0:
        raise ExerciseError(f"{name}: one of the maps is zero everywhere: a channel with a positive gradient must "
                            "also have some activation.")
    cosine = _cosine(pp, plus)
    if cosine < COSINE_BELOW:
        print(f"Correct: {name}: a counterexample, the cosine between the Grad-CAM++ and the Grad-CAM+ maps is "
              f"{cosine:.3f} < {COSINE_BELOW}.")
        return None
    s = a.sum(dim=(2, 3))
    g_max = g.amax(dim=(2, 3)).clamp_min(0)
    active = (torch.relu(g).sum(dim=(2, 3)) > 0) & (s > 0)
    products = (s * g_max)[active]
    message = f"{name}: the two maps still agree (cosine {cosine:.4f}, it should be below {COSINE_BELOW})."
    if float(products.max()) < 0.5:
        hint = ("every product s_k g_max is below 0.5, so every alpha is close to 1/2 and Grad-CAM++ is Grad-CAM+ "
                "up to one factor (the sandwich bound). Some channel needs a large product.")
    elif float(products.max()) < 3 * float(products.min()):
        hint = ("the products s_k g_max are of the same size in every active channel, so the channels are shrunk "
                "by similar factors, and a common factor does not change the map's direction. Make them differ "
                "between channels.")
    else:
        hint = ("the channels are shrunk by different factors, but the map's direction does not move much: either "
                "one channel dominates both maps, or the channels light the same positions. Let channels with "
                "different products light different positions, with comparable Grad-CAM+ weights.")
    raise ExerciseError(f"{message}\nHint: {hint}")


def _tensors(name: str, answer, count: int) -> list[Tensor]:
    if not (isinstance(answer, (tuple, list)) and len(answer) == count and all(isinstance(t, Tensor) for t in answer)):
        raise ExerciseError(f"{name}: return {count} tensors; got {type(answer).__name__}.")
    tensors = [t.detach().to(torch.float64) for t in answer]
    if tensors[0].dim() != 4 or tensors[0].shape[0] != 1 or any(t.shape != tensors[0].shape for t in tensors):
        raise ExerciseError(f"{name}: every tensor must have one shape (1, K, h, w); got "
                            f"{[tuple(t.shape) for t in tensors]}.")
    if not all(torch.isfinite(t).all() for t in tensors):
        raise ExerciseError(f"{name}: your tensors contain NaN or infinite values.")
    if bool((tensors[0] < 0).any()):
        raise ExerciseError(f"{name}: some activations are negative. The layer is the output of a ReLU, so A >= 0.")
    return tensors


def check_discrimination_counterexample(fn: Callable[[], tuple[Tensor, Tensor, Tensor]]) -> None:
    """Check ``fn() -> (activations, gradients_true, gradients_wrong)``, three tensors of one shape
    ``(1, K, h, w)`` with ``A >= 0``: the Grad-CAM maps of the two classes must have a cosine below
    :data:`GRAD_CAM_BELOW` and their Grad-CAM+ maps a cosine above :data:`GRAD_CAM_PLUS_ABOVE`."""
    name = "discrimination_counterexample"
    try:
        answer = fn()
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}.") from error
    a, g_true, g_wrong = _tensors(name, answer, 3)

    def maps(g: Tensor) -> tuple[Tensor, Tensor]:
        grad_cam = torch.relu(channel_weighted_sum(grad_cam_weights(a, g), a))
        plus = torch.relu(channel_weighted_sum(grad_cam_plus_weights(a, g), a))
        return grad_cam, plus

    (gc_true, plus_true), (gc_wrong, plus_wrong) = maps(g_true), maps(g_wrong)
    empty = [label for label, m in (("Grad-CAM+ map of the true class", plus_true),
                                    ("Grad-CAM+ map of the wrong class", plus_wrong),
                                    ("Grad-CAM map of the true class", gc_true)) if float(m.max()) == 0.0]
    if empty:
        raise ExerciseError(f"{name}: the {empty[0]} is zero everywhere, so there is no shape to compare. Each of "
                            "these maps needs a channel with activation and a positive weight.")
    cos_gc = _cosine(gc_true, gc_wrong) if float(gc_wrong.max()) > 0 else 0.0
    cos_plus = _cosine(plus_true, plus_wrong)
    numbers = f"cosine of the Grad-CAM maps {cos_gc:.3f}, of the Grad-CAM+ maps {cos_plus:.3f}"
    if cos_gc >= GRAD_CAM_BELOW:
        raise ExerciseError(f"{name}: {numbers}; Grad-CAM must tell the classes apart (below {GRAD_CAM_BELOW}).\n"
                            "Hint: Grad-CAM keeps the sign of each channel's average gradient. Where the true class's "
                            "map is, the wrong class should have a negative average gradient.")
    if cos_plus <= GRAD_CAM_PLUS_ABOVE:
        raise ExerciseError(f"{name}: {numbers}; Grad-CAM+ must not tell them apart (above {GRAD_CAM_PLUS_ABOVE}).\n"
                            "Hint: Grad-CAM+ only sees the positive parts of the gradients. A channel whose gradient is "
                            "negative on average can still have some positive entries.")
    print(f"Correct: {name}: {numbers}.")
