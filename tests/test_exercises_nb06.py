"""The checks of notebook 06 accept the reference answers and reject typical mistakes with a hint."""

import pytest
import torch

from camlib.exercises import nb06
from camlib.exercises._check import ExerciseError


# ----------------------------------------------------------------------------- XGrad-CAM weights


def xgrad_solution(activations, gradients):
    total = activations.sum(dim=(2, 3))
    weighted = (activations * gradients).sum(dim=(2, 3))
    return torch.where(total > 0, weighted / total.clamp(min=1e-300), torch.zeros_like(total))


def test_xgrad_accepts_reference(capsys):
    assert nb06.check_xgrad_cam_weights(xgrad_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda a, g: g.mean(dim=(2, 3)), "Grad-CAM"),
        (lambda a, g: (a * g).sum(dim=(2, 3)), "divide it by the channel's activation sum"),
        (lambda a, g: (a * g).mean(dim=(2, 3)), "not Z"),
        (lambda a, g: (a * g).sum(dim=1) / a.sum(dim=1), "summed over the channel axis"),
        (lambda a, g: (a * g).sum(dim=(2, 3)) / a.sum(dim=(2, 3)), "0/0"),
    ],
    ids=["gradcam-mean", "no-denominator", "divide-by-Z", "channel-axis", "nan-dead-channel"],
)
def test_xgrad_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError) as info:
        nb06.check_xgrad_cam_weights(wrong)
    assert "Hint" in str(info.value)
    assert message in str(info.value)


def test_xgrad_message_does_not_reveal_solution():
    with pytest.raises(ExerciseError) as info:
        nb06.check_xgrad_cam_weights(lambda a, g: g.mean(dim=(2, 3)))
    assert "def " not in str(info.value)


def test_xgrad_not_implemented_propagates():
    def student(a, g):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb06.check_xgrad_cam_weights(student)


# ----------------------------------------------------------------------------- IG trapezoid rule


def _ig(grad_fn, x, baseline, alphas, weights):
    grads = torch.stack([grad_fn(baseline + a * (x - baseline)) for a in alphas])
    return (x - baseline) * (weights.view(-1, *[1] * x.dim()) * grads).sum(dim=0)


def ig_solution(grad_fn, x, baseline, steps):
    alphas = torch.linspace(0, 1, steps, dtype=x.dtype)
    weights = torch.full((steps,), 1 / (steps - 1), dtype=x.dtype)
    weights[0] = weights[-1] = 0.5 / (steps - 1)
    return _ig(grad_fn, x, baseline, alphas, weights)


def ig_right(grad_fn, x, baseline, steps):
    alphas = torch.arange(1, steps + 1, dtype=x.dtype) / steps
    return _ig(grad_fn, x, baseline, alphas, torch.full((steps,), 1 / steps, dtype=x.dtype))


def ig_unhalved(grad_fn, x, baseline, steps):
    alphas = torch.linspace(0, 1, steps, dtype=x.dtype)
    return _ig(grad_fn, x, baseline, alphas, torch.full((steps,), 1 / steps, dtype=x.dtype))


def ig_spacing_m(grad_fn, x, baseline, steps):
    alphas = torch.linspace(0, 1, steps, dtype=x.dtype)
    weights = torch.full((steps,), 1 / steps, dtype=x.dtype)
    weights[0] = weights[-1] = 0.5 / steps
    return _ig(grad_fn, x, baseline, alphas, weights)


def ig_no_difference(grad_fn, x, baseline, steps):
    return ig_solution(grad_fn, x, baseline, steps) / torch.where(x != baseline, x - baseline, torch.ones_like(x))


def test_ig_accepts_reference(capsys):
    assert nb06.check_ig_trapezoid(ig_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (ig_right, "right Riemann sum"),
        (ig_unhalved, "count half"),
        (ig_spacing_m, "not 1/m"),
        (ig_no_difference, "multiplied by (x - baseline)"),
        (lambda gf, x, b, m: (x - b) * gf(x), "end point only"),
    ],
    ids=["right-riemann", "ends-not-halved", "spacing-1/m", "no-difference", "gradient-times-input"],
)
def test_ig_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError) as info:
        nb06.check_ig_trapezoid(wrong)
    assert "Hint" in str(info.value)
    assert message in str(info.value)
