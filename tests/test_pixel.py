"""Exactness of the pixel attributions (docs/math.md §13: 2.1-3.5, 9.1-9.7) and of the quadrature rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import camlib
from camlib.quadrature import RULES, nodes_and_weights
from tiny_nets import (
    MinNet,
    OneMinusReluNet,
    PaperF,
    PaperG,
    gap_net,
    images,
    linear_net,
    point,
    smooth_net,
)


def close(a, b, tol):
    a, b = torch.as_tensor(a), torch.as_tensor(b, dtype=torch.as_tensor(a).dtype)
    return bool((a - b).abs().max() <= tol * (1 + b.abs().max()))


# --------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("rule", RULES)
def test_quadrature_weights_sum_to_one_and_nodes_in_unit_interval(rule):
    t, w = nodes_and_weights(rule, 7)
    assert t.shape == w.shape == (7,)
    assert close(w.sum(), 1.0, 1e-14) and bool((t >= 0).all() and (t <= 1).all())


def test_quadrature_exactness_orders():
    def integrate(rule, m, f):
        t, w = nodes_and_weights(rule, m)
        return float((w * f(t)).sum())

    lin = lambda t: 3 * t + 1  # noqa: E731  integral 2.5
    for rule in ("trapezoid", "midpoint", "gauss_legendre"):
        assert abs(integrate(rule, 5, lin) - 2.5) < 1e-14
    poly = lambda t: t**9 - 2 * t**4  # noqa: E731  integral 1/10 - 2/5
    assert abs(integrate("gauss_legendre", 5, poly) - (0.1 - 0.4)) < 1e-14
    # left/right sums of t are off by exactly 1/(2m) in opposite directions
    assert abs(integrate("riemann_left", 10, lambda t: t) - (0.5 - 0.05)) < 1e-14
    assert abs(integrate("riemann_right", 10, lambda t: t) - (0.5 + 0.05)) < 1e-14
    with pytest.raises(ValueError, match="rule must be one of"):
        nodes_and_weights("simpson", 4)
    with pytest.raises(ValueError, match="steps >= 2"):
        nodes_and_weights("trapezoid", 1)


# --------------------------------------------------------------------------- gradients on a linear model


def test_saliency_and_gradient_x_input_on_a_linear_model():
    model = linear_net(seed=0)
    x = images(n=2, c=2, size=5, seed=3)
    w = model.fc.weight.detach().view(3, 2, 5, 5)
    s = camlib.saliency(model, x, target=[1, 2], absolute=False)
    assert close(s.values, w[[1, 2]], 1e-14)
    assert close(camlib.saliency(model, x, target=[1, 2]).values, w[[1, 2]].abs(), 1e-14)
    gxi = camlib.gradient_x_input(model, x, target=0)
    assert close(gxi.values, w[[0, 0]] * x, 1e-14)


# --------------------------------------------------------------------------- 4a-4h Integrated Gradients


def test_4a_4b_gradient_saturates_but_ig_does_not():
    f, x = OneMinusReluNet(), point(2.0)
    grad = camlib.saliency(f, x, target=0, absolute=False)
    assert float(grad.values.abs().max()) == 0.0  # 4a: flat at x = 2
    ig = camlib.integrated_gradients(f, x, target=0, steps=1000, rule="midpoint")
    assert close(ig.values.flatten(), [1.0], 1e-9)  # 4b
    assert abs(float(ig.delta)) < 1e-9


def _deeplift_rescale_f(x1, x2):
    """DeepLift (rescale rule) on f = ReLU(ReLU(x1) - 1 - ReLU(x2)), baseline 0, by hand."""
    d1, d2 = max(x1, 0) - 0, max(x2, 0) - 0  # both ReLU units' differences (baseline 0 -> 0)
    h, h0 = max(x1, 0) - 1 - max(x2, 0), -1.0
    m = (max(h, 0) - max(h0, 0)) / (h - h0)
    return (m * d1, -m * d2)


def _deeplift_rescale_g(x1, x2):
    """DeepLift (rescale rule) on g = ReLU(ReLU(x1 - 1) - ReLU(x2)), baseline 0, by hand."""
    u, u0 = x1 - 1, -1.0
    m1 = (max(u, 0) - max(u0, 0)) / (u - u0)
    c1, c2 = m1 * x1, -(max(x2, 0) - 0)
    k, k0 = max(u, 0) - max(x2, 0), 0.0
    m = (max(k, 0) - max(k0, 0)) / (k - k0)
    return (m * c1, m * c2)


def test_4c_4d_4e_implementation_invariance():
    f, g = PaperF(), PaperG()
    gen = torch.Generator().manual_seed(0)
    pts = (torch.rand(500, 1, 1, 2, generator=gen, dtype=torch.float64) - 0.5) * 8
    assert torch.equal(f(pts), g(pts))  # 4c: functionally equivalent
    x = point(3.0, 1.0)
    for net in (f, g):
        ig = camlib.integrated_gradients(net, x, target=0, steps=1000, rule="midpoint")
        assert close(ig.values.flatten(), [1.5, -0.5], 1e-9)  # 4d
    assert _deeplift_rescale_f(3.0, 1.0) == (1.5, -0.5)  # 4e: DeepLift differs between f and g
    assert _deeplift_rescale_g(3.0, 1.0) == (2.0, -1.0)


def test_4f_completeness_error_shrinks_with_steps():
    model, x = gap_net(seed=1), images(n=2, size=8, seed=2)
    errors = []
    for m in (4, 16, 64, 256):
        ig = camlib.integrated_gradients(model, x, steps=m, rule="trapezoid", batch_size=256)
        errors.append(float(ig.delta.abs().max()))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-2 * errors[0]


@pytest.mark.parametrize("rule", RULES)
def test_4g_linear_model_exact_for_any_steps(rule):
    model = linear_net(seed=2)
    x, base = images(n=2, c=2, size=5, seed=4), images(n=1, c=2, size=5, seed=5)[0]
    w = model.fc.weight.detach().view(3, 2, 5, 5)
    steps = 2 if rule == "trapezoid" else 1
    ig = camlib.integrated_gradients(model, x, target=[2, 0], baseline=base, steps=steps, rule=rule)
    assert close(ig.values, w[[2, 0]] * (x - base), 1e-12)
    assert ig.delta.abs().max() < 1e-12


def test_4h_min_symmetry_and_aumann_shapley():
    net = MinNet()
    ig = camlib.integrated_gradients(net, point(1.0, 1.0), target=0, steps=64, rule="midpoint")
    assert close(ig.values.flatten(), [0.5, 0.5], 1e-9)
    # midpoint avoids the tie at t = 0, where autograd splits the gradient of min in half
    ig = camlib.integrated_gradients(net, point(1.0, 3.0), target=0, steps=64, rule="midpoint")
    assert close(ig.values.flatten(), [1.0, 0.0], 1e-9)


class Toy(torch.nn.Module):
    """A scalar function of the features ``v = x.flatten(1)`` of a toy input ``(N, 1, 1, d)``, as ``(N, 1)``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x.flatten(1))[:, None]


def test_9_9_sensitivity_a_asks_for_a_nonzero_share_not_for_the_drop_of_a_reset():
    # f = x1 x2 at (2, 2) from (0, 0): IG = (2, 2), yet resetting x1 alone to the baseline loses 4.
    net = Toy(lambda v: v[:, 0] * v[:, 1])
    ig = camlib.integrated_gradients(net, point(2.0, 2.0), target=0, steps=4, rule="gauss_legendre")
    assert close(ig.values.flatten(), [2.0, 2.0], 1e-12) and abs(float(ig.delta)) < 1e-12
    drop_x1 = float(net(point(2.0, 2.0)) - net(point(0.0, 2.0)))
    assert drop_x1 == 4.0 and float(ig.values.flatten()[0]) != drop_x1


@pytest.mark.parametrize("rule", RULES)
def test_9_10_a_feature_the_function_does_not_use_gets_exactly_zero(rule):
    net = Toy(lambda v: torch.tanh(v[:, 0] - 2 * v[:, 2]) + v[:, 0] * v[:, 2])   # x2 is a dummy
    ig = camlib.integrated_gradients(net, point(1.5, -3.0, 0.7), target=0, steps=5, rule=rule,
                                     baseline=torch.tensor([0.2, 4.0, -1.0], dtype=torch.float64).view(1, 1, 1, 3))
    assert float(ig.values.flatten()[1]) == 0.0
    assert bool((ig.values.flatten()[[0, 2]] != 0).all())


@pytest.mark.parametrize("rule", RULES)
def test_9_11_linearity_for_the_same_rule_and_steps(rule):
    f1 = lambda v: torch.tanh(v @ torch.tensor([1.0, -2.0, 0.5], dtype=v.dtype))  # noqa: E731
    f2 = lambda v: torch.relu(v[:, 0] - v[:, 1]) * v[:, 2]  # noqa: E731
    lam, mu = 0.7, -1.3
    x = point(1.0, -0.5, 2.0)
    ig = lambda fn: camlib.integrated_gradients(Toy(fn), x, target=0, steps=6, rule=rule).values  # noqa: E731
    mixed = ig(lambda v: lam * f1(v) + mu * f2(v))
    assert close(mixed, lam * ig(f1) + mu * ig(f2), 1e-12)


@pytest.mark.parametrize("rule", RULES)
def test_9_12_a_step_breaks_completeness(rule):
    # F = [x > 1/2] on [0, 1]: the gradient is 0 wherever it exists, so IG = 0 and delta = -1
    # (Proposition 1 needs t -> F(x' + t (x - x')) absolutely continuous).
    net = Toy(lambda v: (v[:, 0] > 0.5).to(v.dtype) + 0.0 * v[:, 0])
    ig = camlib.integrated_gradients(net, point(1.0), target=0, steps=16, rule=rule)
    assert float(ig.values.flatten()[0]) == 0.0
    assert close(ig.delta, -1.0, 1e-15)


def test_9_13_a_path_inside_a_tie_is_split_by_autograd_s_convention():
    # min(x1, x2) and x1 - ReLU(x1 - x2) are the same function; at (1, 1) from 0 the path runs inside
    # the tie, torch.minimum splits the gradient evenly and the ReLU form gives it all to x1.
    split = camlib.integrated_gradients(MinNet(), point(1.0, 1.0), target=0, steps=8, rule="trapezoid")
    relu_form = camlib.integrated_gradients(Toy(lambda v: v[:, 0] - torch.relu(v[:, 0] - v[:, 1])),
                                            point(1.0, 1.0), target=0, steps=8, rule="trapezoid")
    assert close(split.values.flatten(), [0.5, 0.5], 1e-15)
    assert close(relu_form.values.flatten(), [1.0, 0.0], 1e-15)
    assert close(split.values.sum(), 1.0, 1e-15) and close(relu_form.values.sum(), 1.0, 1e-15)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("m", [2, 4, 9])
def test_9_14_completeness_error_is_not_the_per_feature_error(rule, m):
    # f = x1^3 - x2^3 at (1, 1) from 0: exact IG (1, -1); by symmetry delta = 0 for every rule and m,
    # while each feature is off by the rule's error on int_0^1 3 t^2 dt = 1.
    t, w = nodes_and_weights(rule, m)
    rule_error = float((w * 3 * t**2).sum()) - 1.0
    ig = camlib.integrated_gradients(Toy(lambda v: v[:, 0] ** 3 - v[:, 1] ** 3), point(1.0, 1.0),
                                     target=0, steps=m, rule=rule)
    assert abs(float(ig.delta)) < 1e-14
    assert close(ig.values.flatten(), [1.0 + rule_error, -1.0 - rule_error], 1e-14)
    if rule != "gauss_legendre":  # Gauss-Legendre with m >= 2 nodes integrates 3 t^2 exactly
        assert abs(rule_error) > 1e-3


def test_9_14_the_values_quoted_in_docs_math_at_m_4():
    ig = {rule: float(camlib.integrated_gradients(Toy(lambda v: v[:, 0] ** 3 - v[:, 1] ** 3), point(1.0, 1.0),
                                                  target=0, steps=4, rule=rule).values.flatten()[0])
          for rule in ("riemann_right", "trapezoid", "midpoint")}
    assert [round(ig[r], 3) for r in ("riemann_right", "trapezoid", "midpoint")] == [1.406, 1.056, 0.984]


def test_ig_delta_is_completeness_error_and_batching_is_invisible():
    model, x = gap_net(seed=3), images(n=3, size=8, seed=4)
    a = camlib.integrated_gradients(model, x, steps=16, baseline=0.25, batch_size=5)
    b = camlib.integrated_gradients(model, x, steps=16, baseline=0.25, batch_size=1000)
    assert close(a.values, b.values, 1e-12)
    f = model(x).gather(1, a.target[:, None]).squeeze(1).detach()
    fb = model(torch.full_like(x, 0.25)).gather(1, a.target[:, None]).squeeze(1).detach()
    assert close(a.delta, a.values.sum(dim=(1, 2, 3)) - (f - fb), 1e-12)
    assert close(a.score, f, 1e-12)


def test_ig_equals_manual_riemann_sum():
    model, x = gap_net(seed=4), images(n=1, size=8, seed=5)
    m = 8
    grads = []
    for k in range(1, m + 1):
        p = (k / m * x).requires_grad_(True)
        (g,) = torch.autograd.grad(model(p)[0, 1], p)
        grads.append(g)
    expected = x * torch.stack(grads).mean(0)
    ig = camlib.integrated_gradients(model, x, target=1, steps=m, rule="riemann_right")
    assert close(ig.values, expected, 1e-12)


# --------------------------------------------------------------------------- 5a-5c occlusion


def test_occlusion_convention_mean_over_covering_windows():
    model = linear_net(seed=1, shape=(1, 8, 8), classes=2)
    x = images(n=1, c=1, size=8, seed=7)
    occ = camlib.occlusion(model, x, target=1, patch=3, stride=2, baseline=0.0)
    assert occ.extras["rows"] == [0, 2, 4, 6] and occ.extras["cols"] == [0, 2, 4, 6]
    windows = occ.extras["windows"][0]
    # pixel (2, 7): rows covering 2 are windows starting at 0 and 2; cols covering 7: start 6
    expected = (windows[0, 3] + windows[1, 3]) / 2
    assert close(occ.values[0, 0, 2, 7], expected, 1e-12)
    # pixel (5, 5): rows 4; cols 4 -> one window
    assert close(occ.values[0, 0, 5, 5], windows[2, 2], 1e-12)


def test_5b_linear_occlusion_is_patch_sum_of_w_times_displacement():
    model = linear_net(seed=3)
    x = images(n=2, c=2, size=5, seed=8)
    base = images(n=1, c=2, size=5, seed=9)[0]
    occ = camlib.occlusion(model, x, target=[0, 2], patch=(2, 3), stride=(2, 1), baseline=base)
    w = model.fc.weight.detach().view(3, 2, 5, 5)[[0, 2]]
    contrib = w * (x - base)
    for a, r in enumerate(occ.extras["rows"]):
        for b, c in enumerate(occ.extras["cols"]):
            drop = contrib[:, :, r : r + 2, c : c + 3].sum(dim=(1, 2, 3))
            assert close(occ.extras["windows"][:, a, b], drop, 1e-9)


def _occlusion_vs_ig(model, x, steps, rule):
    occ = camlib.occlusion(model, x, target=2, patch=3, stride=3, baseline=0.0)
    r, c = 3, 0  # window (1, 0)
    occluded = x.clone()
    occluded[:, :, r : r + 3, c : c + 3] = 0.0
    ig = camlib.integrated_gradients(
        model, x, target=2, baseline=occluded, steps=steps, rule=rule, batch_size=steps
    )
    inside = torch.zeros_like(x, dtype=torch.bool)
    inside[:, :, r : r + 3, c : c + 3] = True
    assert float(ig.values[~inside].abs().max()) == 0.0  # IG = 0 off the patch
    return ig.values[inside].sum(), occ.extras["windows"][0, 1, 0]


def test_5a_occlusion_drop_is_patch_sum_of_ig_with_occluded_baseline():
    # smooth model: Gauss-Legendre converges spectrally, so the identity is checked to 1e-9
    ig_sum, drop = _occlusion_vs_ig(smooth_net(seed=5), images(n=1, size=6, seed=10), 48, "gauss_legendre")
    assert close(ig_sum, drop, 1e-9)
    # ReLU model: kinks along the path make midpoint converge only as O(1/m)
    ig_sum, drop = _occlusion_vs_ig(gap_net(seed=5), images(n=1, size=6, seed=10), 5000, "midpoint")
    assert close(ig_sum, drop, 1e-4)


def test_5c_one_pixel_finite_difference_tends_to_gradient():
    model, x = gap_net(seed=6, c_in=1), images(n=1, c=1, size=6, seed=11)
    h = 1e-6
    occ = camlib.occlusion(model, x, target=0, patch=1, stride=1, baseline=x - h)
    grad = camlib.saliency(model, x, target=0, absolute=False)
    assert close(occ.values / h, grad.values, 1e-4)


def test_occlusion_batching_and_tensor_baseline_are_consistent():
    model, x = gap_net(seed=7), images(n=2, size=8, seed=12)
    a = camlib.occlusion(model, x, patch=3, stride=2, baseline=0.5, batch_size=1)
    b = camlib.occlusion(model, x, patch=3, stride=2, baseline=torch.full((3, 8, 8), 0.5), batch_size=64)
    assert close(a.values, b.values, 1e-12)
    assert a.values.shape == x.shape and torch.equal(a.values[:, 0], a.values[:, 2])
    with pytest.raises(ValueError, match="larger than the image"):
        camlib.occlusion(model, x, patch=9)


def test_occlusion_numpy_free_of_windows_left_uncovered():
    # every pixel is covered, so no zeros appear where the drop is non-zero everywhere
    model = linear_net(seed=4, shape=(1, 7, 7), classes=1)
    x = torch.ones(1, 1, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        model.fc.weight.fill_(1.0)
    occ = camlib.occlusion(model, x, target=0, patch=3, stride=3)
    assert bool((occ.values > 0).all())
    assert np.allclose(occ.extras["windows"].numpy(), [[[9, 9, 3], [9, 9, 3], [3, 3, 1]]])
