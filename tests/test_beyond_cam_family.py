"""HiResCAM and LayerCAM: gradient CAMs with element-wise weights (docs/math.md §11, 11.6-11.11).

Closed forms on tiny float64 networks; pytorch-grad-cam's HiResCAM, LayerCAM and
GradCAMElementWise and Captum's LayerGradientXActivation where they compute the same thing.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import LayerGradientXActivation
from pytorch_grad_cam import GradCAMElementWise, HiResCAM, LayerCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import camlib
from camlib import weight_rules
from tiny_nets import deep_head_net, gap_net, images

DTYPE = torch.float64


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-12) -> bool:
    return bool((a - b).abs().max() <= tol * (1 + b.abs().max()))


@pytest.fixture(scope="module")
def gap():
    return gap_net(seed=0)


@pytest.fixture(scope="module")
def x():
    return images(n=3, size=8, seed=1)


def _head(model):
    if hasattr(model, "head"):
        return lambda a: model.fc(model.head(a))
    return lambda a: model.fc(model.pool(a))


class FlatHead(nn.Module):
    """An affine head: features -> flatten -> one linear layer (with bias)."""

    def __init__(self):
        super().__init__()
        self.features = gap_net(seed=3).features
        self.fc = nn.Linear(5 * 8 * 8, 4, dtype=DTYPE)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(4, 5 * 8 * 8, generator=torch.Generator().manual_seed(4), dtype=DTYPE))

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


# --------------------------------------------------------------------------- the weight rules


def test_weight_rules_are_element_wise_and_pure():
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 4, 5, generator=gen, dtype=DTYPE)
    g = torch.randn(2, 3, 4, 5, generator=gen, dtype=DTYPE)
    before = (a.clone(), g.clone())
    assert torch.equal(weight_rules.hires_cam_weights(a, g), g)
    assert torch.equal(weight_rules.layer_cam_weights(a, g), torch.relu(g))
    assert torch.equal(a, before[0]) and torch.equal(g, before[1])
    raw = camlib.channel_weighted_sum(weight_rules.hires_cam_weights(a, g), a)
    assert close(raw, (g * a).sum(dim=1))


def test_results_carry_element_wise_weights(gap, x):
    for method, rule in ((camlib.hires_cam, weight_rules.hires_cam_weights),
                         (camlib.layer_cam, weight_rules.layer_cam_weights)):
        res = method(gap, x, "features", target=[0, 1, 2])
        assert res.weights.shape == res.activations.shape
        assert torch.equal(res.weights, rule(res.activations, res.gradients))
        assert close(res.raw, camlib.channel_weighted_sum(res.weights, res.activations))
        assert torch.equal(res.map, torch.relu(res.raw)) and res.method == method.__name__


# --------------------------------------------------------------------------- 11.6, 11.7


def test_11_6_difference_from_grad_cam_on_any_head_and_equality_on_gap(gap, x):
    model = deep_head_net(seed=2)
    h = camlib.hires_cam(model, x, "features")
    g = camlib.grad_cam(model, x, "features", target=h.target)
    grad, a = h.gradients, h.activations
    assert close(h.raw - g.raw, ((grad - grad.mean(dim=(2, 3), keepdim=True)) * a).sum(dim=1))
    assert (h.raw - g.raw).abs().max() > 1e-3  # and the difference is not small here
    h = camlib.hires_cam(gap, x, "features", target=1)
    assert close(h.raw, camlib.grad_cam(gap, x, "features", target=1).raw)
    assert close(h.raw, camlib.cam(gap, x, target=1).raw / 64)
    assert torch.equal(h.map, torch.relu(h.raw))


@pytest.mark.parametrize("bias", [True, False])
def test_11_7_total_is_the_euler_sum(x, bias):
    model = deep_head_net(seed=5, bias=bias)
    res = camlib.hires_cam(model, x, "features")
    head, a, t = _head(model), res.activations, res.target
    eps = 1e-6
    with torch.no_grad():
        up = head((1 + eps) * a).gather(1, t[:, None]).squeeze(1)
        down = head((1 - eps) * a).gather(1, t[:, None]).squeeze(1)
    assert close(res.raw.sum(dim=(1, 2)), (up - down) / (2 * eps), 1e-7)
    if not bias:  # positively homogeneous head: Euler's identity gives the score itself
        assert close(res.raw.sum(dim=(1, 2)), res.score, 1e-10)
    xgrad = camlib.xgrad_cam(model, x, "features", target=t)
    assert close(res.raw.sum(dim=(1, 2)), (xgrad.weights * a.sum(dim=(2, 3))).sum(dim=1), 1e-10)


# --------------------------------------------------------------------------- 11.8, 11.9


def test_11_8_affine_head_each_value_is_the_drop_of_its_position(x):
    model = FlatHead().eval()
    res = camlib.hires_cam(model, x, "features", target=2)
    a = res.activations
    b = model.fc.bias.detach()[2]
    assert close(res.raw.sum(dim=(1, 2)), res.score - b)
    drops = torch.empty_like(res.raw)
    with torch.no_grad():
        for i in range(8):
            for j in range(8):
                cut = a.clone()
                cut[:, :, i, j] = 0.0
                drops[:, i, j] = res.score - model.fc(cut.flatten(1))[:, 2]
    assert close(res.raw, drops)
    gc = camlib.grad_cam(model, x, "features", target=2)
    assert float((gc.raw - drops).abs().max() / drops.abs().max()) > 0.5  # 11.8': Grad-CAM is not the drop


class InputLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Identity()
        self.net = gap_net(seed=7)

    def forward(self, x):
        return self.net(self.input(x))


def test_11_9_gradient_times_input_and_captum(gap, x):
    model = InputLayer().eval()
    at_input = camlib.hires_cam(model, x, "input", target=1)
    assert close(at_input.raw, camlib.gradient_x_input(model, x, target=1).values.sum(dim=1))
    res = camlib.hires_cam(gap, x, "features.1", target=[3, 0, 2])
    theirs = LayerGradientXActivation(gap, gap.features[1]).attribute(x, target=torch.tensor([3, 0, 2]))
    assert close(res.raw, theirs.sum(dim=1))


# --------------------------------------------------------------------------- 11.10, 11.11


def test_11_10_layer_cam_on_a_gap_head_is_grad_cam_plus(gap, x):
    res = camlib.layer_cam(gap, x, "features", target=[0, 2, 3])
    w = gap.fc.weight.detach()[[0, 2, 3]]
    assert close(res.raw, camlib.channel_weighted_sum(torch.relu(w) / 64, res.activations))
    assert close(res.raw, camlib.grad_cam_plus(gap, x, "features", target=[0, 2, 3]).raw)


def test_11_11_layer_cam_minus_hires_cam_is_the_negative_evidence(x):
    model = deep_head_net(seed=3)
    lc = camlib.layer_cam(model, x, "features")
    hr = camlib.hires_cam(model, x, "features", target=lc.target)
    assert (lc.activations >= 0).all()
    gap = lc.raw - hr.raw
    assert close(gap, (torch.relu(-lc.gradients) * lc.activations).sum(dim=1))
    assert gap.min() >= 0 and gap.max() > 0


# --------------------------------------------------------------------------- peers


def _pgc(cls, model, x, t):
    model = copy.deepcopy(model)
    return cls(model, [model.features])(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t])


@pytest.mark.parametrize("name", ["hires_cam", "layer_cam"])
def test_peer_pytorch_grad_cam_after_its_post_processing(x, name):
    """pgc returns ReLU, min-max (+1e-7), resize of the same raw map; on tiny nets the layer has the
    input's size, so its resize is the identity."""
    model = deep_head_net(seed=4)
    t = torch.tensor([1, 3, 0])
    ours = getattr(camlib, name)(model, x, "features", target=t)
    theirs = _pgc({"hires_cam": HiResCAM, "layer_cam": LayerCAM}[name], model, x, t)
    expected = scale_cam_image(np.maximum(ours.raw.numpy(), 0), (8, 8))
    assert np.allclose(theirs, expected, atol=1e-5)


def test_peer_grad_cam_elementwise_equals_layer_cam_for_non_negative_activations(x):
    """pgc's GradCAMElementWise, sum_k ReLU(g A), is LayerCAM when A >= 0 (15h)."""
    model = deep_head_net(seed=4)
    t = torch.tensor([2, 2, 1])
    ours = camlib.layer_cam(model, x, "features", target=t)
    theirs = _pgc(GradCAMElementWise, model, x, t)
    assert np.allclose(theirs, scale_cam_image(np.maximum(ours.raw.numpy(), 0), (8, 8)), atol=1e-5)


# --------------------------------------------------------------------------- conventions


def test_state_scores_and_metrics(gap, x):
    model = copy.deepcopy(gap).train()
    for method in (camlib.hires_cam, camlib.layer_cam):
        soft = method(model, x, "features", target=1, score="softmax")
        assert soft.score_kind == "softmax" and model.training
        with torch.inference_mode():
            inside = method(model, x, "features", target=1)
        assert close(inside.raw, method(gap, x, "features", target=1).raw)
        masks = torch.zeros(3, 8, 8, dtype=torch.bool)
        masks[:, 2:6, 2:6] = True
        assert 0.0 <= camlib.metrics.energy_inside(inside, masks).mean <= 1.0
    with pytest.raises(ValueError, match="not a submodule"):
        camlib.layer_cam(gap, x, "featurez")


def test_layer_cam_equals_hires_cam_when_every_gradient_is_positive(x):
    """At the last layer of a GAP net whose class row is positive, g = W_ck / Z > 0 everywhere."""
    model = gap_net(seed=0)
    with torch.no_grad():
        model.fc.weight[2] = model.fc.weight[2].abs() + 0.1
    lc = camlib.layer_cam(model, x, "features", target=2)
    hr = camlib.hires_cam(model, x, "features", target=2)
    assert (lc.gradients > 0).all()
    assert close(lc.raw, hr.raw) and close(lc.raw, camlib.grad_cam(model, x, "features", target=2).raw)
