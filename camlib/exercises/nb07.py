"""Checks for the exercises of notebook 07 (beyond Grad-CAM).

* :func:`check_randomised_prediction` -- predict, then measure: the rank correlation between the
  guided-backpropagation maps of the trained ``gap`` model and of the same architecture with every
  layer re-initialised. The check says whether the prediction was close (within 0.2) and, when it
  was not, in which direction it missed and why, without printing the measured value.
* :func:`check_disagreement` -- design an input (model, images, layer) on which HiResCAM and
  Grad-CAM disagree: their pre-ReLU maps must differ by at least 10 % of their size.
* :func:`check_ablation_drops` -- the Ablation-CAM drops ``y_c - y_c,k`` of a mean-GAP linear
  head, derived in closed form from the fc weights and the activations (no forward pass), compared
  with camlib's ablation of a network built from the same numbers.
"""

from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import Tensor, nn

from ._check import ExerciseError, compare_outputs, passed

__all__ = ["RANDOMISED_IMAGES", "measured_randomised_correlation", "check_randomised_prediction",
           "check_disagreement", "check_ablation_drops"]

#: how many held-out images (the first ones of ``camlib.data.test_set()``) exercise 1 measures on
RANDOMISED_IMAGES = 8
_TOLERANCE = 0.2


# --------------------------------------------------------------------------- exercise 1


def measured_randomised_correlation(images: int = RANDOMISED_IMAGES, seed: int = 0) -> float:
    """Mean Spearman correlation between guided-backpropagation maps (summed over colours) of the
    trained ``gap`` model and of the model with every parameterised layer re-initialised,
    on the first ``images`` held-out images, explaining their true classes."""
    import camlib

    data = camlib.data.test_set()[:images]
    model = camlib.models.load_model("gap")
    result = camlib.metrics.randomization_test(
        camlib.guided_backprop, model, data.images, target=data.labels, seed=seed
    )
    return float(result.mean[-1])


def check_randomised_prediction(prediction: object) -> None:
    """Check a predicted rank correlation (a number in [-1, 1]) against the measured one."""
    name = "randomised_prediction"
    if isinstance(prediction, bool) or not isinstance(prediction, numbers.Real):
        raise ExerciseError(
            f"{name}: write your prediction as a number between -1 and 1 (for example 0.5); got "
            f"{type(prediction).__name__}."
        )
    value = float(prediction)
    if not -1.0 <= value <= 1.0:
        raise ExerciseError(f"{name}: a rank correlation lies between -1 and 1; got {value}.")
    measured = measured_randomised_correlation()
    if value < measured - _TOLERANCE:
        raise ExerciseError(
            f"{name}: your prediction is too low by more than {_TOLERANCE}.\nHint: guided "
            "backpropagation passes back only positive signals, and only through units that were "
            "active in the forward pass. At the first layer that is a non-negative combination of "
            "filters placed where the image itself has edges, whatever the weights above. What "
            "does that leave of the image in the map, even for random weights?"
        )
    if value > measured + _TOLERANCE:
        raise ExerciseError(
            f"{name}: your prediction is too high by more than {_TOLERANCE}.\nHint: here every "
            "layer is re-initialised, the first convolution included, so the filters that "
            "reconstruct the image are random too. The randomisation test of this notebook kept the "
            "first layers trained; which part of the map survives when they are random?"
        )
    print(f"Correct: you predicted {value:.2f}; measured {measured:.2f} (guided backpropagation, "
          f"trained vs fully randomised gap model, {RANDOMISED_IMAGES} images).")
    return None


# --------------------------------------------------------------------------- exercise 2


def check_disagreement(make: Callable[[], tuple[nn.Module, Tensor, str]]) -> None:
    """Check ``make() -> (model, x, layer)``: HiResCAM and Grad-CAM of the predicted class at
    ``layer`` must differ on at least one image by 10 % of the larger map's size (pre-ReLU)."""
    import camlib

    name = "disagreement"
    try:
        built = make()
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(f"{name}: your function raised {type(error).__name__}: {error}") from error
    if not isinstance(built, tuple) or len(built) != 3:
        raise ExerciseError(f"{name}: return a tuple (model, x, layer); got {type(built).__name__}.")
    model, x, layer = built
    try:
        hires = camlib.hires_cam(model, x, layer)
        grad = camlib.grad_cam(model, x, layer, target=hires.target)
    except (TypeError, ValueError) as error:
        raise ExerciseError(f"{name}: camlib could not explain your example: {error}") from error
    size = torch.maximum(hires.raw.flatten(1).abs().amax(dim=1), grad.raw.flatten(1).abs().amax(dim=1))
    if bool((size == 0).all()):
        raise ExerciseError(
            f"{name}: both maps are zero everywhere.\nHint: choose a layer whose activations are "
            "not all zero and on which the explained score depends."
        )
    gap = (hires.raw - grad.raw).flatten(1).abs().amax(dim=1) / size.clamp_min(torch.finfo(size.dtype).tiny)
    if float(gap.max()) < 0.1:
        spread = grad.gradients.flatten(2).std(dim=2).max()
        hint = (
            "the gradient is the same at every position of each channel, and then HiResCAM and "
            "Grad-CAM coincide exactly: global average pooling followed by one linear layer is such "
            "a head. Give the model a head that weighs positions differently."
            if float(spread) <= 1e-6 * float(grad.gradients.abs().max().clamp_min(1e-30))
            else "the gradient varies over positions, but not enough where the activations are. "
            "Make the score depend on some positions and not on others."
        )
        raise ExerciseError(
            f"{name}: the two maps differ by at most {float(gap.max()):.1%} of their size.\nHint: {hint}"
        )
    print(f"Correct: HiResCAM and Grad-CAM differ by up to {float(gap.max()):.0%} of the map's size "
          "on your example.")
    return None


# --------------------------------------------------------------------------- exercise 3


class _Given(nn.Module):
    def __init__(self, activations: Tensor) -> None:
        super().__init__()
        self.register_buffer("activations", activations)

    def forward(self, x: Tensor) -> Tensor:
        return self.activations + 0.0 * x.sum()


class _GapLinear(nn.Module):
    """A network whose layer ``features`` outputs fixed activations, then mean GAP, then fc."""

    def __init__(self, weight: Tensor, bias: Tensor, activations: Tensor) -> None:
        super().__init__()
        self.features = _Given(activations)
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _measured_drops(weight: Tensor, bias: Tensor, activations: Tensor, target: Tensor) -> Tensor:
    import camlib

    model = _GapLinear(weight, bias, activations).eval()
    dummy = torch.zeros(activations.shape[0], 1, 1, 1, dtype=activations.dtype)
    return camlib.ablation_cam(model, dummy, "features", target=target).extras["drops"]


def _ablation_cases() -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(7)
    cases = []
    for n, c, k, h, w in [(1, 3, 4, 3, 3), (2, 4, 6, 4, 5), (3, 5, 3, 2, 6)]:
        weight = torch.randn(c, k, generator=gen, dtype=torch.float64)
        bias = torch.randn(c, generator=gen, dtype=torch.float64)
        activations = torch.relu(torch.randn(n, k, h, w, generator=gen, dtype=torch.float64))
        target = torch.randint(0, c, (n,), generator=gen)
        cases.append((weight, bias, activations, target))
    return cases


def check_ablation_drops(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(fc_weight (C, K), fc_bias (C,), activations (N, K, h, w), target (N,)) -> drops (N, K)``:
    the score drop ``y_c - y_c,k`` when channel ``k`` is set to 0, for a mean-GAP linear head."""
    name = "ablation_drops"

    def close(a: Tensor, b: Tensor) -> bool:
        return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-6, atol=1e-9))

    def summed(got, exp, w, b, a, t):
        return close(got, exp * a.shape[2] * a.shape[3])

    def with_bias(got, exp, w, b, a, t):
        return close(got, exp + b[t][:, None]) or close(got, exp - b[t][:, None])

    def swapped(got, exp, w, b, a, t):
        return close(got, -exp)

    def divided(got, exp, w, b, a, t):
        y = exp.sum(dim=1) + b[t]
        return close(got, exp / y[:, None]) or close(got, exp / y.abs()[:, None])

    def all_classes(got, exp, w, b, a, t):
        return got.ndim == 3 or got.shape == (a.shape[0], w.shape[0])

    hints = [
        (summed, "your drops are Z = h*w times too large: the head pools with a mean, so channel k "
                 "enters the logit as W_ck times its spatial mean."),
        (with_bias, "the bias does not depend on any channel: zeroing channel k leaves it in place, "
                    "so it cancels in y_c - y_c,k."),
        (swapped, "you have y_c,k - y_c; the drop is the score before minus the score after zeroing."),
        (divided, "these are Ablation-CAM's weights (divided by the score); the exercise asks for the "
                  "drops themselves."),
        (all_classes, "keep only the target class of each image: index the weight rows with target."),
    ]
    compare_outputs(name, fn, _measured_drops, _ablation_cases(), hints, rtol=1e-6, atol=1e-9)
    passed(name)
    return None
