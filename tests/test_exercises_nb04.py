"""The notebook-04 checks accept the reference answers and reject typical mistakes with a hint."""

import pytest
import torch

from camlib.exercises import nb04
from camlib.exercises._check import ExerciseError


def good_weights(gradients):
    return gradients.mean(dim=(2, 3))


def good_map(weights, activations):
    return torch.relu((weights[:, :, None, None] * activations).sum(dim=1))


def good_softmax(cams, probs, target):
    mixture = (probs[:, :, None, None] * cams).sum(dim=1)
    return probs[:, target, None, None] * (cams[:, target] - mixture)


def test_reference_answers_pass(capsys):
    assert nb04.check_gradcam_weights(good_weights) is None
    assert nb04.check_gradcam_map(good_map) is None
    assert nb04.check_softmax_gradcam(good_softmax) is None
    assert capsys.readouterr().out.count("Correct:") == 3


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda g: g.sum(dim=(2, 3)), "does not sum"),
        (lambda g: g.mean(dim=1), "channel axis"),
        (lambda g: g.mean(dim=3), "only one spatial axis"),
        (lambda g: torch.relu(g).mean(dim=(2, 3)), "Grad-CAM+"),
    ],
)
def test_weights_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb04.check_gradcam_weights(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda w, a: (w[:, :, None, None] * a).sum(dim=1), "before the ReLU"),
        (lambda w, a: (torch.relu(w)[:, :, None, None] * a).sum(dim=1), "clipped the channel weights"),
        (lambda w, a: torch.relu(w[:, :, None, None] * a), "channel axis"),
    ],
)
def test_map_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb04.check_gradcam_map(wrong)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, p, t: good_softmax(c, p, t) / p[:, t, None, None], "missing the overall factor p_c"),
        (lambda c, p, t: c[:, t], "ignores the other classes"),
        (lambda c, p, t: p[:, t, None, None] * (c[:, t] - c.mean(dim=1)), "weighted by its probability"),
        (lambda c, p, t: torch.relu(good_softmax(c, p, t)), "before the ReLU"),
    ],
)
def test_softmax_rejects(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb04.check_softmax_gradcam(wrong)


def test_not_implemented_passes_through():
    def stub(gradients):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb04.check_gradcam_weights(stub)


def test_crash_is_reported():
    with pytest.raises(ExerciseError, match="raised IndexError"):
        nb04.check_gradcam_weights(lambda g: g[:, :, :, :, 0])
