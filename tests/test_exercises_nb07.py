"""The notebook-07 checks accept the reference answers and reject typical mistakes with a hint
that does not give the answer away."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import camlib
from camlib.exercises import nb07
from camlib.exercises._check import ExerciseError


# --------------------------------------------------------------------------- exercise 1


@pytest.fixture(scope="module")
def measured():
    return nb07.measured_randomised_correlation()


def test_prediction_close_to_the_measurement_passes(measured, capsys):
    assert -1.0 <= measured <= 1.0
    assert nb07.check_randomised_prediction(measured + 0.15) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("offset, message", [(-0.5, "too low"), (0.5, "too high")])
def test_prediction_far_off_gets_a_direction_not_the_value(measured, offset, message):
    prediction = max(-1.0, min(1.0, measured + offset))
    if abs(prediction - measured) <= 0.2:
        pytest.skip("the measurement lies too close to the end of [-1, 1] for this direction")
    with pytest.raises(ExerciseError, match=message) as info:
        nb07.check_randomised_prediction(prediction)
    assert "Hint" in str(info.value)
    assert f"{measured:.2f}" not in str(info.value)


@pytest.mark.parametrize("bad", ["0.3", None, True, 1.5])
def test_prediction_must_be_a_correlation(bad):
    with pytest.raises(ExerciseError, match="between -1 and 1|-1 and 1"):
        nb07.check_randomised_prediction(bad)


# --------------------------------------------------------------------------- exercise 2


class LeftHalfHead(nn.Module):
    """The gap model's features, then a flatten-linear head that reads only the left half."""

    def __init__(self):
        super().__init__()
        gap = camlib.models.load_model("gap")
        self.norm, self.features = gap.norm, gap.features
        half = torch.zeros(8, 8)
        half[:, :4] = 1.0
        weight = gap.fc.weight.detach()[:, :, None, None] / 64 * half
        self.fc = nn.Linear(64 * 64, 4)
        with torch.no_grad():
            self.fc.weight.copy_(weight.flatten(1))
            self.fc.bias.copy_(gap.fc.bias.detach())

    def forward(self, x):
        return self.fc(self.features(self.norm(x)).flatten(1))


def good_disagreement():
    return LeftHalfHead().eval(), camlib.data.test_set().images[:4], "features"


def test_disagreement_accepts_a_position_dependent_head(capsys):
    assert nb07.check_disagreement(good_disagreement) is None
    assert "Correct" in capsys.readouterr().out


def test_disagreement_rejects_a_gap_head_with_the_reason():
    def gap_head():
        return camlib.models.load_model("gap"), camlib.data.test_set().images[:4], "features"

    with pytest.raises(ExerciseError, match="global average pooling") as info:
        nb07.check_disagreement(gap_head)
    assert "Hint" in str(info.value)


def test_disagreement_reports_bad_returns():
    with pytest.raises(ExerciseError, match="tuple"):
        nb07.check_disagreement(lambda: "model")
    with pytest.raises(ExerciseError, match="could not explain"):
        nb07.check_disagreement(lambda: (camlib.models.load_model("gap"), camlib.data.test_set().images[:2], "nope"))

    def student():
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        nb07.check_disagreement(student)


# --------------------------------------------------------------------------- exercise 3


def good_drops(weight, bias, activations, target):
    return weight[target] * activations.mean(dim=(2, 3))


def test_ablation_drops_accepts_the_closed_form(capsys):
    assert nb07.check_ablation_drops(good_drops) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda w, b, a, t: w[t] * a.sum(dim=(2, 3)), "Z = h\\*w times too large"),
        (lambda w, b, a, t: good_drops(w, b, a, t) + b[t][:, None], "bias"),
        (lambda w, b, a, t: -good_drops(w, b, a, t), "before minus the score after"),
        (lambda w, b, a, t: good_drops(w, b, a, t) / (good_drops(w, b, a, t).sum(1) + b[t])[:, None],
         "Ablation-CAM's weights"),
        (lambda w, b, a, t: torch.einsum("ck,nk->nc", w, a.mean(dim=(2, 3))), "index the weight rows"),
    ],
    ids=["sum-pool", "bias", "sign", "divided", "all-classes"],
)
def test_ablation_drops_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb07.check_ablation_drops(wrong)
    assert "def " not in str(info.value)
