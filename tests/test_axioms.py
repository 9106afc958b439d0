"""camlib.axioms: the axioms as numbers, on tiny float64 networks with exact answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import camlib
from camlib import axioms
from camlib.results import Attribution, CamResult

DT = torch.float64


# ------------------------------------------------------------------ tiny networks


class GapNet(nn.Module):
    """conv -> ReLU (= features) -> GAP (mean or sum) -> linear (with or without bias)."""

    def __init__(self, pool: str = "mean", bias: bool = True, k: int = 4, classes: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, k, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, classes, bias=bias)
        self.pool = pool
        self.double().eval()

    def forward(self, x):
        a = self.features(x)
        pooled = a.mean(dim=(2, 3)) if self.pool == "mean" else a.sum(dim=(2, 3))
        return self.fc(pooled)


class DeepHeadNet(nn.Module):
    """features -> conv -> ReLU -> GAP -> linear: not linear in the features."""

    def __init__(self, bias: bool = True, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=bias), nn.ReLU())
        self.fc = nn.Linear(6, 3, bias=bias)
        self.double().eval()

    def forward(self, x):
        return self.fc(self.head(self.features(x)).mean(dim=(2, 3)))


class LinearNet(nn.Module):
    def __init__(self, shape=(3, 6, 6), classes: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(int(torch.tensor(shape).prod()), classes)
        self.double().eval()

    def forward(self, x):
        return self.fc(x.flatten(1))


def images(n: int = 3, h: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, h, h, dtype=DT, generator=torch.Generator().manual_seed(seed))


def hand_cam_result(model: GapNet, x: torch.Tensor, weights_of: str, target=None) -> CamResult:
    """CAM / Grad-CAM / XGrad-CAM on a GAP net, computed here from their closed forms."""
    a = model.features(x).detach().requires_grad_(True)
    pooled = a.mean(dim=(2, 3)) if model.pool == "mean" else a.sum(dim=(2, 3))
    out = model.fc(pooled)
    t = out.argmax(1) if target is None else torch.full((x.shape[0],), target)
    y = out.gather(1, t[:, None])[:, 0]
    (g,) = torch.autograd.grad(y.sum(), a)
    if weights_of == "cam":
        w = model.fc.weight.detach()[t]
    elif weights_of == "grad_cam":
        w = g.mean(dim=(2, 3))
    else:  # xgrad_cam
        w = (g * a).sum(dim=(2, 3)) / a.sum(dim=(2, 3))
    a = a.detach()
    raw = (w[:, :, None, None] * a).sum(1)
    return CamResult(a, None if weights_of == "cam" else g, w.detach(), raw.detach(), raw.clamp_min(0).detach(), t, y.detach(), weights_of)


# ------------------------------------------------------------------ completeness


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("rule", ["riemann_right", "riemann_left", "midpoint", "gauss_legendre", "trapezoid"])
def test_linear_model_ig_has_completeness_error_0_for_any_step_count(steps, rule):
    if rule == "trapezoid" and steps < 2:
        pytest.skip("the trapezoid rule needs two nodes")
    model = LinearNet()
    x = images()
    base = 0.5 * torch.ones_like(x)
    att = camlib.integrated_gradients(model, x, baseline=base, steps=steps, rule=rule)
    r = axioms.completeness(model, x, att, baseline=base)
    assert r.values.shape == (3,)
    assert torch.all(r.values < 1e-12), r.values
    assert r.mean < 1e-12


def test_completeness_of_hand_attributions_is_the_known_residual():
    model = LinearNet()
    x = images(2)
    t = torch.tensor([0, 3])
    w = model.fc.weight.detach()[t].view(2, 3, 6, 6)
    exact = Attribution(w * x, t, torch.zeros(2, dtype=DT))  # IG from the zero baseline
    assert torch.all(axioms.completeness(model, x, exact).values < 1e-12)
    off = Attribution(w * x + 0.25 / x[0].numel(), t, torch.zeros(2, dtype=DT))
    r = axioms.completeness(model, x, off)
    assert torch.allclose(r.values, torch.full((2,), 0.25, dtype=DT), atol=1e-12)
    assert torch.allclose(r.extras["signed"], torch.full((2,), 0.25, dtype=DT), atol=1e-12)
    # saliency is not complete: its residual is what the number reports
    grad_only = Attribution(w, t, torch.zeros(2, dtype=DT))
    gap = (w * x).flatten(1).sum(1)
    assert torch.allclose(axioms.completeness(model, x, grad_only).values, (w.flatten(1).sum(1) - gap).abs())


def test_completeness_rejects_wrong_inputs():
    model = LinearNet()
    x = images(2)
    att = Attribution(torch.zeros(2, 3, 5, 5, dtype=DT), torch.tensor([0, 1]), torch.zeros(2, dtype=DT))
    with pytest.raises(ValueError, match="do not match"):
        axioms.completeness(model, x, att)
    with pytest.raises(TypeError, match="Attribution"):
        axioms.completeness(model, x, torch.zeros(2, 3, 6, 6))


# ------------------------------------------------------------------ conservation


def test_cam_on_a_bias_free_sum_gap_head_has_conservation_violation_0():
    model = GapNet(pool="sum", bias=False)
    x = images()
    r = axioms.conservation_violation(model, x, hand_cam_result(model, x, "cam"))
    assert torch.all(r.values < 1e-10), r.values
    lib = camlib.cam(model, x, layer="features", fc="fc")
    assert torch.all(axioms.conservation_violation(model, x, lib).values < 1e-10)


def test_xgrad_cam_on_a_bias_free_piecewise_linear_head_conserves_the_score():
    for model in (GapNet(pool="mean", bias=False), DeepHeadNet(bias=False)):
        x = images()
        res = camlib.xgrad_cam(model, x, layer="features")
        assert torch.all(axioms.conservation_violation(model, x, res).values < 1e-10)


def test_conservation_residual_with_a_bias_is_the_bias_and_cam_on_mean_gap_is_z_times_off():
    model = GapNet(pool="mean", bias=True)
    x = images()
    gc = hand_cam_result(model, x, "grad_cam")
    r = axioms.conservation_violation(model, x, gc)
    bias = model.fc.bias.detach()[gc.target]
    assert torch.allclose(r.extras["signed"], bias, atol=1e-12)  # S - sum raw = b_c   (docs/math.md (5.3))
    cam = hand_cam_result(model, x, "cam")
    z = 36
    expected = gc.score - z * (gc.score - bias)  # sum CAM = Z (Y - b)
    assert torch.allclose(axioms.conservation_violation(model, x, cam).extras["signed"], expected, atol=1e-10)


# ------------------------------------------------------------------ sensitivity


def test_grad_cam_and_xgrad_cam_satisfy_sensitivity_exactly_on_a_gap_head():
    model = GapNet(pool="mean", bias=True)
    x = images()
    for kind in ("grad_cam", "xgrad_cam"):
        res = hand_cam_result(model, x, kind)
        r = axioms.sensitivity_violation(model, x, "features", res)
        assert r.extras["per_channel"].shape == (3, 4)
        assert torch.all(r.values < 1e-10), (kind, r.values)
    lib = camlib.grad_cam(model, x, layer="features")
    assert torch.all(axioms.sensitivity_violation(model, x, model.features, lib).values < 1e-10)


def test_cam_weights_violate_sensitivity_on_mean_gap_by_the_factor_z():
    model = GapNet(pool="mean", bias=True)
    x = images()
    res = hand_cam_result(model, x, "cam")
    r = axioms.sensitivity_violation(model, x, "features", res, batch_size=5)  # odd chunks
    share = res.weights * res.activations.sum(dim=(2, 3))
    expected = share / 36 - share  # removing channel k lowers Y by w_k s_k / Z
    assert torch.allclose(r.extras["per_channel"], expected, atol=1e-10)


def test_sensitivity_is_only_first_order_in_a_deep_head_and_leaves_no_hook():
    model = DeepHeadNet()
    x = images()
    res = camlib.xgrad_cam(model, x, layer="features")
    r = axioms.sensitivity_violation(model, x, "features", res)
    assert torch.all(torch.isfinite(r.values)) and r.mean > 1e-6
    assert not model.features._forward_hooks
    with pytest.raises(ValueError, match="differs from result.activations"):
        axioms.sensitivity_violation(model, x, "head", res)
    with pytest.raises(ValueError, match="not a submodule"):
        axioms.sensitivity_violation(model, x, "featurez", res)


# ------------------------------------------------------------------ implementation invariance


def rescaled_copy(model: DeepHeadNet, c: float) -> DeepHeadNet:
    """Same function: the first conv (and bias) times c, the next conv's weights divided by c.

    ReLU is positively homogeneous, so relu(c z) / c = relu(z) and the output is unchanged.
    """
    other = DeepHeadNet()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.features[0].weight.mul_(c)
        other.features[0].bias.mul_(c)
        other.head[0].weight.div_(c)
    return other


def activation_sum(model, x, target=None, layer="features"):
    """Not an attribution method: the channel sum of the layer's activations."""
    a = model.features(x)
    raw = a.sum(1).detach()
    t = torch.as_tensor(target).long()
    return CamResult(a.detach(), None, torch.ones(a.shape[:2], dtype=a.dtype), raw, raw.clamp_min(0), t, torch.zeros(len(x), dtype=a.dtype), "sum")


def test_gradient_methods_are_implementation_invariant_activation_maps_are_not():
    model_a = DeepHeadNet()
    model_b = rescaled_copy(model_a, 3.0)
    x = images()
    for method, kwargs in (
        (camlib.saliency, {}),
        (camlib.integrated_gradients, {"steps": 16}),
        (camlib.grad_cam, {"layer": "features"}),  # A times c, gradient divided by c
    ):
        r = axioms.implementation_invariance(method, model_a, model_b, x, **kwargs)
        assert torch.all(r.extras["output_gap"] < 1e-12)
        assert torch.all(r.values < 1e-10), (method.__name__, r.values)
    r = axioms.implementation_invariance(activation_sum, model_a, model_b, x, layer="features")
    assert torch.all(r.extras["relative"] > 1.0)  # the activations grew 3-fold: relative gap 2


def test_implementation_invariance_layer_pairs_and_errors():
    model_a = DeepHeadNet()
    model_b = rescaled_copy(model_a, 0.5)
    x = images(2)
    r = axioms.implementation_invariance(camlib.grad_cam, model_a, model_b, x, layer=("features", "features"))
    assert torch.all(r.values < 1e-10)
    with pytest.raises(ValueError, match="dotted name"):
        axioms.implementation_invariance(camlib.grad_cam, model_a, model_b, x, layer=model_a.features)
