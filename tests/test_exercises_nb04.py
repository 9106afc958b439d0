"""The notebook-04 checks accept right answers and reject typical mistakes with a hint that does not
give the answer away; the factor they expect is the one measured on a real bias shift."""

import copy

import pytest
import torch

import camlib
from camlib.exercises import nb04
from camlib.exercises._check import ExerciseError


def good_factor(p_before, p_after, score):
    if score == "softmax":
        return p_after * (1 - p_after) / (p_before * (1 - p_before))
    return (1 - p_after) / (1 - p_before)


def good_blind(a):
    return a[:, 0, 0, 0] - a[:, 0, 0, 1]


def test_right_answers_pass(capsys):
    assert nb04.check_bias_shift_factor(good_factor) is None
    assert nb04.check_blind_score(good_blind) is None
    # another counterexample: every channel compares its first and last column
    assert nb04.check_blind_score(lambda a: 3.0 * (a[..., 0] - a[..., -1]).sum(dim=(1, 2))) is None
    assert capsys.readouterr().out.count("Correct:") == 3


def test_the_expected_factor_is_what_a_bias_shift_does_to_camlib_maps():
    model = copy.deepcopy(camlib.models.load_model("gap")).double()
    shapes = camlib.data.test_set()[:16]
    x, t = shapes.images.double(), shapes.labels
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.fc.bias[t[0]] += -3.0
    keep = t == t[0]
    p = torch.softmax(model(x[keep]), dim=1).detach()[:, t[0]]
    q = torch.softmax(shifted(x[keep]), dim=1).detach()[:, t[0]]
    for score in ("softmax", "log_softmax"):
        before = camlib.grad_cam(model, x[keep], "features", target=t[keep], score=score).raw
        after = camlib.grad_cam(shifted, x[keep], "features", target=t[keep], score=score).raw
        factor = good_factor(p, q, score)
        assert torch.allclose(after, factor[:, None, None] * before, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda p, q, s: torch.ones_like(p), "does change size"),
        (lambda p, q, s: 1 / good_factor(p, q, s), "upside down"),
        (lambda p, q, s: q / p if s == "softmax" else good_factor(p, q, s), "sum over j != c also changes"),
        (lambda p, q, s: good_factor(p, q, "log_softmax"), "one more factor"),
        (lambda p, q, s: good_factor(p, q, "softmax"), "no factor p_c"),
    ],
)
def test_bias_shift_rejects_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message) as error:
        nb04.check_bias_shift_factor(wrong)
    assert "(1 - p" not in str(error.value)  # the hint does not write the answer


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda a: a.sum(dim=(1, 2, 3)), "Grad-CAM weight"),
        (lambda a: a[:, 0, 0, 0] ** 2 - a[:, 0, 0, 1] ** 2, "Grad-CAM weight"),
        (lambda a: torch.zeros(a.shape[0], dtype=a.dtype), "does not depend"),
        (lambda a: 0.0 * a.sum(dim=(1, 2, 3)), "does not depend"),
        (lambda a: a[:, 0, 0] - a[:, 0, 1], "one score per image"),
        (lambda a: a[:1, 0, 0, 0] - a[:1, 0, 0, 1], "one score per image"),
    ],
)
def test_blind_score_rejects_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb04.check_blind_score(wrong)


def test_not_implemented_passes_through():
    def stub(*args):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb04.check_bias_shift_factor(stub)
    with pytest.raises(NotImplementedError):
        nb04.check_blind_score(stub)


def test_crash_is_reported():
    with pytest.raises(ExerciseError, match="raised IndexError"):
        nb04.check_blind_score(lambda a: a[:, :, :, :, 0])
    with pytest.raises(ExerciseError, match="raised"):
        nb04.check_bias_shift_factor(lambda p, q, s: p[5, 5])
