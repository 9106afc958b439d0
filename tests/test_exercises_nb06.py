"""The notebook-06 checks accept right answers, agree with camlib's Integrated Gradients, and reject typical
mistakes with a hint that does not give the answer away."""

import pytest
import torch

import camlib
from camlib.exercises import nb06
from camlib.exercises._check import ExerciseError
from tiny_nets import point


def power_difference():
    # symmetric errors: x1^9 - x2^9 + x3 at (1, 1, 1) from 0; the midpoint errors of x1 and x2 cancel
    return (lambda p: p[:, 0] ** 9 - p[:, 1] ** 9 + p[:, 2], torch.ones(3, dtype=torch.float64),
            torch.zeros(3, dtype=torch.float64))


def good_steps(ig_at, tol, max_steps=1024):
    m = 2
    while 2 * m <= max_steps:
        small, large = ig_at(m), ig_at(2 * m)
        if (large - small).abs().sum() <= tol * large.abs().sum():
            return 2 * m
        m *= 2
    return None


def test_right_answers_pass(capsys):
    assert nb06.check_completeness_hides_errors(power_difference) is None
    assert nb06.check_converged_steps(good_steps) is None
    out = capsys.readouterr().out
    assert out.count("Correct:") == 2 and "per-feature error" in out
    assert "your procedure chooses m = " in out and "completeness error there is" in out


def test_path_ig_is_camlib_integrated_gradients():
    class Toy(torch.nn.Module):
        def forward(self, x):
            v = x.flatten(1)
            return (torch.tanh(v[:, 0] * v[:, 1]) + v[:, 2] ** 2)[:, None]

    x, base = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64)
    for rule in ("midpoint", "trapezoid", "gauss_legendre"):
        ours = nb06.path_ig(lambda p: Toy()(p[:, None, None, :])[:, 0], x, base, rule, 7)
        theirs = camlib.integrated_gradients(Toy(), point(*x.tolist()), target=0, steps=7, rule=rule,
                                             baseline=base.view(1, 1, 1, 3)).values.flatten()
        assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "wrong, message",
    [
        # a smooth function: the completeness error is not small at 4 nodes
        (lambda: (lambda p: torch.exp(p).sum(dim=1), torch.tensor([2.0, 1.0], dtype=torch.float64),
                  torch.zeros(2, dtype=torch.float64)), "errors of different features"),
        # a linear function: IG is exact, no per-feature error
        (lambda: (lambda p: p @ torch.tensor([1.0, -3.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64),
                  torch.zeros(2, dtype=torch.float64)), "derivative along the path has to vary"),
        # F(x) = F(x'): nothing to attribute
        (lambda: (lambda p: p[:, 0] ** 3 - p[:, 1] ** 3, torch.ones(2, dtype=torch.float64),
                  torch.ones(2, dtype=torch.float64)), "nothing to attribute"),
        (lambda: (lambda p: p.sum(), torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)),
         "one score per point"),
        (lambda: (lambda p: p[:, 0], torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)),
         "d >= 2"),
        (lambda: torch.ones(3), "three things"),
    ],
)
def test_completeness_rejects_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message) as error:
        nb06.check_completeness_hides_errors(wrong)
    assert "x1^" not in str(error.value) and "** 9" not in str(error.value)


def _stops_on_the_sum(ig_at, tol, max_steps=1024):
    m = 2
    while 2 * m <= max_steps:
        if abs(float(ig_at(2 * m).sum() - ig_at(m).sum())) <= tol * abs(float(ig_at(2 * m).sum())):
            return 2 * m
        m *= 2
    return None


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda ig_at, tol, max_steps=1024: (good_steps(ig_at, tol, max_steps) or 2) // 2, "smaller number of steps"),
        (_stops_on_the_sum, "feature by feature"),
        (lambda ig_at, tol, max_steps=1024: good_steps(ig_at, tol, max_steps) or max_steps, "return None"),
        (lambda ig_at, tol, max_steps=1024: None, "keep doubling"),
        (lambda ig_at, tol, max_steps=1024: 2 * (good_steps(ig_at, tol, max_steps) or 1), "went on too long"),
    ],
)
def test_converged_steps_rejects_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        nb06.check_converged_steps(wrong)


def test_not_implemented_passes_through():
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb06.check_completeness_hides_errors(stub)
    with pytest.raises(NotImplementedError):
        nb06.check_converged_steps(stub)
