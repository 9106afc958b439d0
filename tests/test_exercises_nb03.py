"""The checks of notebook 03's exercises accept right answers and reject typical mistakes with a hint."""

from __future__ import annotations

import pytest
import torch

import camlib
from camlib.exercises import nb03
from camlib.exercises._check import ExerciseError

RIGHT = {("triangle", "triangle"): 1, ("triangle", "cross"): -1, ("cross", "triangle"): -1, ("cross", "cross"): 1}


# ----------------------------------------------------------------------------- exercise 1: predicted signs


def test_the_distractor_image_has_the_documented_signs():
    means = nb03.object_means()
    assert {pair: (1 if value > 0 else -1) for pair, value in means.items()} == RIGHT


def test_signs_accept_the_right_prediction(capsys):
    nb03.check_predicted_signs(dict(RIGHT))
    assert "class-discriminative" in capsys.readouterr().out


@pytest.mark.parametrize("guess, message", [
    ({pair: 1 for pair in RIGHT}, "2 of 4 signs differ"),  # "every map is positive where there is an object"
    ({**RIGHT, ("cross", "triangle"): 1}, "1 of 4 signs differ"),
    ({("triangle", "triangle"): 1}, "exactly the four keys"),
    ({**RIGHT, ("cross", "cross"): 0.5}, r"\+1 or -1"),
])
def test_signs_reject_wrong_predictions_with_a_hint(guess, message):
    with pytest.raises(ExerciseError, match=message):
        nb03.check_predicted_signs(guess)


# ----------------------------------------------------------------------------- exercise 2: same logit, wrong place


def move_mass(M):
    bump = torch.zeros_like(M)
    bump[0, 0] = 100.0
    return M + bump - bump.mean()


def corner_swap(M):
    # a second answer: put the largest value in a far corner and compensate on the old peak
    out = M.clone()
    peak = divmod(int(M.argmax()), M.shape[-1])
    corner = (0, 0) if peak[0] + peak[1] > M.shape[0] else (M.shape[0] - 1, M.shape[1] - 1)
    lift = float(M.max() - M[corner]) + 1.0
    out[corner] += lift
    out[peak] -= lift
    return out


@pytest.mark.parametrize("answer", [move_mass, corner_swap])
def test_same_logit_map_accepts_counterexamples(answer, capsys):
    nb03.check_same_logit_map(answer)
    assert "Correct" in capsys.readouterr().out


def in_place(M):
    M[0, 0] += 100.0
    M -= 100.0 / M.numel()
    return M


@pytest.mark.parametrize("wrong, message", [
    (lambda M: M.clone(), "touches the object"),  # the CAM itself: peak on the object
    (lambda M: M + torch.eye(M.shape[0], dtype=M.dtype) * 100, "mean"),  # changes the mean
    (in_place, "changed the map"),
    (lambda M: M[:4], "shape"),
    (lambda M: M * float("nan"), "NaN"),
])
def test_same_logit_map_rejects_non_examples(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb03.check_same_logit_map(wrong)


def test_cells_touching_marks_every_cell_with_an_object_pixel():
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[7, 7] = True  # one pixel in cell (0, 0)
    mask[40, 9] = True  # one pixel in cell (5, 1)
    touching = nb03._cells_touching(mask, (8, 8))
    assert touching.sum() == 2 and touching[0, 0] and touching[5, 1]
    assert camlib.upsample(touching.double(), 64).shape == (64, 64)
