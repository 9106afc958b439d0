"""The checks of notebook 01 accept the reference answer and reject typical wrong answers."""

from __future__ import annotations

import pytest
import torch

from camlib.exercises import nb01
from camlib.exercises._check import ExerciseError

# ---------------------------------------------------------------- the redundancy counterexample


@pytest.mark.parametrize("f, x", [
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([1.0, 1.0])),  # OR of two equal features
    (lambda v: torch.clamp(v.sum(), max=1.0), torch.tensor([2.0, 3.0])),  # a saturated sum
    (lambda v: torch.minimum(v[0] + v[1], torch.tensor(1.0, dtype=v.dtype)), torch.tensor([1.0, 1.0])),
])
def test_counterexample_accepts_redundant_features(f, x, capsys):
    nb01.check_redundancy_counterexample(f, x)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("f, x, message", [
    (lambda v: 2 * v[0] + 3 * v[1], torch.tensor([1.0, 1.0]), "add up to the total drop"),  # linear: impossible
    (lambda v: v[0] * v[1], torch.tensor([2.0, 3.0]), "either feature alone"),  # interaction: both drops = f
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([0.0, 0.0]), "removing every feature"),  # nothing to explain
    (lambda v: torch.maximum(v[0], v[1]), torch.tensor([1.0, 2.0]), "occluding one feature alone"),  # unequal
])
def test_counterexample_rejects_non_examples_with_a_hint(f, x, message):
    with pytest.raises(ExerciseError, match=message):
        nb01.check_redundancy_counterexample(f, x)


def test_counterexample_reports_a_crash_and_passes_not_implemented_through():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        nb01.check_redundancy_counterexample(lambda v: 1 / 0, torch.tensor([1.0, 1.0]))

    def unanswered(v):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb01.check_redundancy_counterexample(unanswered, torch.tensor([1.0, 1.0]))
    with pytest.raises(ExerciseError, match="1-D tensor"):
        nb01.check_redundancy_counterexample(lambda v: v.sum(), 3.0)


# ---------------------------------------------------------------- IG of x1 x2 x3, predicted


def ig_closed_form(x, m):
    return torch.full_like(x, float(x[0] * x[1] * x[2])) * (m + 1) * (2 * m + 1) / (6 * m * m)


def test_ig_prediction_accepts_the_closed_form(capsys):
    nb01.check_ig_of_triple_product(ig_closed_form)
    assert "Correct" in capsys.readouterr().out


def test_the_reference_is_the_autograd_riemann_sum():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    for m in (1, 3, 50):
        assert torch.allclose(nb01.right_riemann_ig(lambda v: v[0] * v[1] * v[2], x, m), ig_closed_form(x, m))


@pytest.mark.parametrize("wrong, message", [
    (lambda x, m: torch.full_like(x, float(x.prod()) / 3), "exact integral"),
    (lambda x, m: torch.full_like(x, float(x.prod())) * (m + 1) / (2 * m), "two-factor product"),
    (lambda x, m: torch.full_like(x, float(x.prod())) * (m + 1) * (2 * m + 1) / (6 * m), "closed form"),
])
def test_ig_prediction_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message) as info:
        nb01.check_ig_of_triple_product(wrong)
    assert "def " not in str(info.value)
