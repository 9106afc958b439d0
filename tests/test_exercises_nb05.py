"""The notebook-05 check accepts real counterexamples, agrees with camlib's maps, and rejects near misses
with a hint that names the missing idea without writing an example."""

import pytest
import torch

import camlib
from camlib.exercises import nb05
from camlib.exercises._check import ExerciseError
from tiny_nets import gap_net, images


def good_example():
    a = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    g = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    a[0, 0, 1, 1] = 2.0              # channel 0: one blob, one large gradient -> s g = 20, alpha = 1/22
    g[0, 0, 1, 1] = 10.0
    a[0, 1, 6, 6] = 2.0              # channel 1: the same Grad-CAM+ weight, spread thin -> alpha close to 1/2
    g[0, 1] = 10.0 / 64
    return a, g


def test_a_counterexample_passes_and_says_its_cosine(capsys):
    assert nb05.check_pp_counterexample(good_example) is None
    out = capsys.readouterr().out
    assert "Correct:" in out and "Grad-CAM+ maps is 0.7" in out


def test_the_check_computes_the_maps_camlib_computes():
    model, x = gap_net(seed=1), images(n=2, size=8, seed=2)
    pp = camlib.grad_cam_pp(model, x, "features", target=[0, 2])
    plus = camlib.grad_cam_plus(model, x, "features", target=[0, 2])
    ours_pp, ours_plus = nb05.pp_and_plus_maps(pp.activations, pp.gradients)
    assert torch.allclose(ours_pp, pp.map, rtol=1e-12, atol=1e-15)
    assert torch.allclose(ours_plus, plus.map, rtol=1e-12, atol=1e-15)


def _uniform(a_value=1.0, g_value=0.01):
    a = torch.full((1, 3, 4, 4), a_value, dtype=torch.float64)
    return a, torch.full_like(a, g_value)


def _same_products():
    a, g = _uniform()
    a[0, 0, :2] = 0.0                # the channels light different places ...
    a[0, 1, 2:] = 0.0
    g[:] = 5.0                       # ... but every channel has the same large product s_k g
    return a, g


def _one_dominant():
    a, g = good_example()
    a[0, 1, 6, 6] = 0.001            # channel 1 is too faint to matter: channel 0 dominates both maps
    return a, g


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda: _uniform(), "every product s_k g_max is below 0.5"),
        (_same_products, "of the same size in every active channel"),
        (_one_dominant, "one channel dominates"),
        (lambda: (-torch.ones(1, 2, 3, 3), torch.ones(1, 2, 3, 3)), "negative"),
        (lambda: (torch.ones(1, 2, 3, 3), -torch.ones(1, 2, 3, 3)), "no gradient is positive"),
        (lambda: (torch.ones(2, 3, 3), torch.ones(2, 3, 3)), r"shape \(1, K, h, w\)"),
        (lambda: torch.ones(1, 2, 3, 3), "two tensors"),
        (lambda: (torch.ones(1, 2, 3, 3), torch.full((1, 2, 3, 3), float("nan"))), "NaN"),
    ],
)
def test_near_misses_are_rejected_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message) as error:
        nb05.check_pp_counterexample(wrong)
    assert "10.0 / 64" not in str(error.value)


def test_not_implemented_passes_through_and_crashes_are_reported():
    def stub():
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        nb05.check_pp_counterexample(stub)
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        nb05.check_pp_counterexample(lambda: 1 / 0)


def good_discrimination():
    a = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    a[0, 0, 0, 0] = 1.0                  # channel 0 lights the true class's object ...
    a[0, 1, 1, 1] = 1.0                  # ... channel 1 another place
    g_true = torch.zeros_like(a)
    g_true[0, 0] = 1.0
    g_true[0, 1] = -1.0
    g_wrong = torch.zeros_like(a)
    g_wrong[0, 0] = torch.tensor([[1.0, -2.0], [-2.0, -2.0]])   # negative on average, one positive entry
    g_wrong[0, 1] = 0.01
    return a, g_true, g_wrong


def test_a_discrimination_counterexample_passes(capsys):
    assert nb05.check_discrimination_counterexample(good_discrimination) is None
    assert "Correct:" in capsys.readouterr().out


def _same_gradients():
    a, g_true, _ = good_discrimination()
    return a, g_true, g_true.clone()


def _opposite_gradients():
    a, g_true, _ = good_discrimination()
    return a, g_true, -g_true


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_same_gradients, "negative average gradient"),
        (_opposite_gradients, "positive parts of the gradients"),
        (lambda: (torch.ones(1, 2, 2, 2), -torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2)), "zero everywhere"),
        (lambda: (torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2)), "3 tensors"),
        (lambda: (-torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2)), "negative"),
    ],
)
def test_discrimination_near_misses_are_rejected_with_a_hint(wrong, message):
    with pytest.raises(ExerciseError, match=message) as error:
        nb05.check_discrimination_counterexample(wrong)
    assert "-2.0" not in str(error.value)
