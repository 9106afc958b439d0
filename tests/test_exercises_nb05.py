"""The notebook-05 checks accept the reference answers and reject typical mistakes with a hint."""

import pytest
import torch

from camlib.exercises import nb05
from camlib.exercises._check import ExerciseError


def good_alpha(g, a):
    s = a.sum(dim=(2, 3), keepdim=True)
    alpha = 1.0 / (2.0 + s * g)
    return torch.where(g != 0, alpha, torch.zeros_like(alpha))


def good_pp_weights(g, a):
    return (good_alpha(g, a) * torch.relu(g)).sum(dim=(2, 3))


def good_plus_weights(g):
    return torch.relu(g).mean(dim=(2, 3))


def test_reference_answers_pass(capsys):
    assert nb05.check_gradcampp_alpha(good_alpha) is None
    assert nb05.check_gradcampp_weights(good_pp_weights) is None
    assert nb05.check_gradcam_plus_weights(good_plus_weights) is None
    assert capsys.readouterr().out.count("Correct:") == 3


def mixed_alpha(g, a):
    third = (a * g**3).sum(dim=(2, 3), keepdim=True)
    return torch.nan_to_num(g**2 / (2 * g**2 + third))


def eps_alpha(g, a):
    s = a.sum(dim=(2, 3), keepdim=True)
    return g**2 / (2 * g**2 + s * g**3 + 1e-6)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g, a: g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3), "NaN"),
        (mixed_alpha, "mixed indices"),
        (eps_alpha, "epsilon"),
        (lambda g, a: torch.where(g != 0, 1 / (2 + a.mean(dim=(2, 3), keepdim=True) * g), 0 * g), "SUM"),
        (lambda g, a: 1 / (2 + a.sum(dim=(2, 3), keepdim=True) * g), "where g = 0"),
    ],
)
def test_alpha_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb05.check_gradcampp_alpha(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g, a: (good_alpha(g, a) * g).sum(dim=(2, 3)), "signed gradient"),
        (lambda g, a: torch.relu((good_alpha(g, a) * g).sum(dim=(2, 3))), "inside the sum"),
        (lambda g, a: (good_alpha(g, a) * torch.relu(g)).mean(dim=(2, 3)), "too small"),
        (lambda g, a: (mixed_alpha(g, a) * torch.relu(g)).sum(dim=(2, 3)), "mixed-index"),
        (lambda g, a: (good_alpha(g, a) * (g > 0)).sum(dim=(2, 3)), "forgot to multiply"),
    ],
)
def test_pp_weights_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb05.check_gradcampp_weights(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g: torch.relu(g.mean(dim=(2, 3))), "clipped the averaged gradient"),
        (lambda g: g.mean(dim=(2, 3)), "plain Grad-CAM weights"),
        (lambda g: torch.relu(g).sum(dim=(2, 3)), "too large"),
        (lambda g: g.abs().mean(dim=(2, 3)), r"\|g\|"),
    ],
)
def test_plus_weights_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb05.check_gradcam_plus_weights(wrong)


def test_not_implemented_passes_through():
    def stub(g, a):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb05.check_gradcampp_alpha(stub)
