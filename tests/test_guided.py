"""Guided backpropagation, DeconvNet and Guided Grad-CAM (camlib.guided; docs/math.md §11, 11.1-11.5).

Closed forms on tiny float64 networks, the peers (Captum's GuidedBackprop, Deconvolution and
GuidedGradCam; pytorch-grad-cam's GuidedBackpropReLUModel) where they compute the same thing,
and the documented differences where they do not, asserted as numbers.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution, GuidedBackprop, GuidedGradCam
from pytorch_grad_cam import GuidedBackpropReLUModel
from torch import nn

import camlib
from camlib.guided import _modified_gradient
from tiny_nets import gap_net, images

DTYPE = torch.float64
# Captum announces its hooks and its requires_grad change on every call
pytestmark = [
    pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU:UserWarning"),
    pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients:UserWarning"),
]


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-12) -> bool:
    return bool((a - b).abs().max() <= tol * (1 + b.abs().max()))


def _set(linear: nn.Linear, weight: torch.Tensor) -> nn.Linear:
    linear = linear.to(DTYPE)  # float64 before the copy, so the weights are exact
    with torch.no_grad():
        linear.weight.copy_(weight)
    return linear


class OneHidden(nn.Module):
    """``f(x) = V ReLU(W x)`` (no biases), optionally with the ReLU module used twice:
    ``V ReLU(W2 ReLU(W x))``."""

    def __init__(self, w, v, w2=None, inplace=False, act=None):
        super().__init__()
        self.flat = nn.Flatten()
        self.lin = _set(nn.Linear(w.shape[1], w.shape[0], bias=False), w)
        self.act = act if act is not None else nn.ReLU(inplace=inplace)
        self.lin2 = None if w2 is None else _set(nn.Linear(w2.shape[1], w2.shape[0], bias=False), w2)
        self.out = _set(nn.Linear(v.shape[1], v.shape[0], bias=False), v)

    def forward(self, x):
        h = self.act(self.lin(self.flat(x)))
        if self.lin2 is not None:
            h = self.act(self.lin2(h))
        return self.out(h)


@pytest.fixture(scope="module")
def weights():
    gen = torch.Generator().manual_seed(11)
    w = torch.randn(7, 5, generator=gen, dtype=DTYPE)
    w2 = torch.randn(6, 7, generator=gen, dtype=DTYPE)
    v = torch.randn(3, 7, generator=gen, dtype=DTYPE)
    v2 = torch.randn(3, 6, generator=gen, dtype=DTYPE)
    x = torch.randn(4, 1, 1, 5, generator=gen, dtype=DTYPE)
    return w, w2, v, v2, x


# --------------------------------------------------------------------------- 11.1 closed forms


@pytest.mark.parametrize("inplace", [False, True], ids=["relu", "inplace-relu"])
def test_11_1_one_hidden_layer_closed_forms(weights, inplace):
    w, _, v, _, x = weights
    model = OneHidden(w, v, inplace=inplace).to(DTYPE).eval()
    t = torch.tensor([0, 2, 1, 0])
    h = x.flatten(1) @ w.T
    vt = v[t]
    grad = camlib.saliency(model, x, target=t, absolute=False).values.flatten(1)
    gbp = camlib.guided_backprop(model, x, target=t)
    dec = camlib.deconvnet(model, x, target=t)
    assert close(grad, (vt * (h > 0)) @ w)
    assert close(gbp.values.flatten(1), (torch.relu(vt) * (h > 0)) @ w)
    assert close(dec.values.flatten(1), torch.relu(vt) @ w)
    assert gbp.extras["modified_calls"] == 1 and gbp.method == "guided_backprop"
    assert dec.method == "deconvnet" and torch.equal(gbp.target, t)


def test_11_1_relu_module_used_twice(weights):
    w, w2, _, v2, x = weights
    model = OneHidden(w, v2, w2=w2).to(DTYPE).eval()
    h1 = x.flatten(1) @ w.T
    h2 = torch.relu(h1) @ w2.T
    v = v2[[1]]
    gbp = camlib.guided_backprop(model, x, target=1)
    dec = camlib.deconvnet(model, x, target=1)
    assert gbp.extras["modified_calls"] == 2
    assert close(gbp.values.flatten(1), (torch.relu(torch.relu(v) * (h2 > 0) @ w2) * (h1 > 0)) @ w)
    assert close(dec.values.flatten(1), (torch.relu(torch.relu(v) @ w2) @ w).expand(4, -1))


def test_gradient_rule_through_the_hooks_reproduces_autograd():
    """The hook machinery itself changes nothing: the plain rule gives the gradient, on a ResNet
    with in-place ReLUs, a ReLU module used twice per block and skip connections."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=5).to(DTYPE).eval()
    x = images(n=2, size=32, seed=3)
    plain = camlib.saliency(net, x, target=[1, 3], absolute=False).values
    hooked = _modified_gradient(net, x, [1, 3], "logit", "gradient", "test")
    assert hooked.extras["modified_calls"] == 17
    assert close(hooked.values, plain, 1e-10)


# --------------------------------------------------------------------------- 11.2, 11.3


def test_11_2_no_relu_all_three_equal_the_gradient():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Tanh(), nn.Conv2d(4, 4, 3), nn.Flatten(),
        nn.Linear(4 * 2 * 2, 3),
    ).to(DTYPE).eval()
    x = images(n=3, size=8, seed=2)
    grad = camlib.saliency(model, x, absolute=False).values
    gbp = camlib.guided_backprop(model, x)
    assert gbp.extras["modified_calls"] == 0
    assert close(gbp.values, grad) and close(camlib.deconvnet(model, x).values, grad)


class TwoRelus(nn.Module):
    """``g(x) = ReLU(2x) - ReLU(x)``, the same function as ``ReLU(x)`` (docs/math.md 11.3)."""

    def __init__(self):
        super().__init__()
        self.a = _set(nn.Linear(1, 1, bias=False), torch.tensor([[2.0]], dtype=DTYPE))
        self.b = _set(nn.Linear(1, 1, bias=False), torch.tensor([[1.0]], dtype=DTYPE))
        self.act_a, self.act_b = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        v = x.flatten(1)
        return self.act_a(self.a(v)) - self.act_b(self.b(v))


def test_11_3_modified_rules_break_implementation_invariance():
    f = nn.Sequential(nn.Flatten(), nn.ReLU()).to(DTYPE)
    g = TwoRelus().to(DTYPE)
    x = torch.tensor([0.7, 2.5], dtype=DTYPE).view(2, 1, 1, 1)
    with torch.no_grad():
        assert torch.equal(f(x), g(x))
    for method in (camlib.saliency,):
        assert close(method(f, x, absolute=False).values, torch.ones_like(x))
        assert close(method(g, x, absolute=False).values, torch.ones_like(x))
    for method in (camlib.guided_backprop, camlib.deconvnet):
        assert close(method(f, x).values, torch.ones_like(x))
        assert close(method(g, x).values, 2 * torch.ones_like(x))


# --------------------------------------------------------------------------- 11.4 what cannot be reached


class Functional(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        a = self.conv(x)
        if self.how == "F.relu":
            a = F.relu(a)
        elif self.how == "torch.relu":
            a = torch.relu(a)
        elif self.how == "Tensor.relu_":
            a = a.relu_()
        elif self.how == "clamp":
            a = a.clamp(min=0)
        elif self.how == "unused":  # a functional ReLU that never reaches the score is harmless
            _ = F.relu(a)
            a = self.act(a)
        return self.fc(a.mean(dim=(2, 3)))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("how", ["F.relu", "torch.relu", "Tensor.relu_", "clamp"])
@pytest.mark.parametrize("method", [camlib.guided_backprop, camlib.deconvnet], ids=["gbp", "deconvnet"])
def test_11_4_functional_relu_is_refused_and_nothing_remains(how, method):
    model = Functional(how).to(DTYPE).eval()
    x = images(n=2, size=6, seed=5)
    with pytest.raises(ValueError, match="outside an nn.ReLU") as info:
        method(model, x)
    assert "self.act = nn.ReLU()" in str(info.value)
    assert _no_hooks(model)
    # Captum, by contrast, silently returns the plain gradient for such a model (PEERS 15s')
    captum = GuidedBackprop(model).attribute(x, target=0)
    assert close(captum, camlib.saliency(model, x, target=0, absolute=False).values)


def test_functional_relu_off_the_score_path_is_ignored():
    model = Functional("unused").to(DTYPE).eval()
    x = images(n=2, size=6, seed=5)
    assert camlib.guided_backprop(model, x).extras["modified_calls"] == 1


@pytest.mark.parametrize("act, name", [(nn.GELU(), "GELU"), (nn.SiLU(), "SiLU"), (nn.ReLU6(), "ReLU6"), (nn.ELU(), "ELU")])
def test_activations_without_a_rule_are_refused(weights, act, name):
    w, _, v, _, x = weights
    model = nn.Sequential(OneHidden(w, w.new_ones(7, 7)), act, nn.Linear(7, 3)).to(DTYPE).eval()
    with pytest.raises(ValueError, match=name):
        camlib.guided_backprop(model, x)
    assert _no_hooks(model)


class Aliasing(nn.Module):
    """Relies on an in-place ReLU overwriting a tensor it uses again: ``x + ReLU_(x) = 2 ReLU(x)``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.lin(x.flatten(1))
        r = self.act(h)
        return h + r


def test_inplace_aliasing_is_detected(weights):
    x = weights[4]
    model = Aliasing().to(DTYPE).eval()
    with pytest.raises(ValueError, match="inplace=False"):
        camlib.guided_backprop(model, x)
    assert _no_hooks(model)


# --------------------------------------------------------------------------- LeakyReLU and PReLU


@pytest.mark.parametrize("kind", ["leaky", "prelu"])
def test_leaky_and_prelu_rules(weights, kind):
    """camlib's documented extension: guided ``ReLU(R) f'(z)``, DeconvNet ``f(R)``, with
    ``f'(z) = a`` below 0; the plain rule reproduces autograd."""
    w, _, v, _, x = weights
    if kind == "leaky":
        act, a = nn.LeakyReLU(0.2), torch.full((7,), 0.2, dtype=DTYPE)
    else:
        act = nn.PReLU(7, dtype=DTYPE)
        a = torch.linspace(-0.3, 0.6, 7, dtype=DTYPE)
        with torch.no_grad():
            act.weight.copy_(a)
    model = OneHidden(w, v, act=act).to(DTYPE).eval()
    h = x.flatten(1) @ w.T
    deriv = torch.where(h > 0, torch.ones_like(h), a)
    vt = v[[2]]
    assert close(camlib.guided_backprop(model, x, target=2).values.flatten(1), (torch.relu(vt) * deriv) @ w)
    f_of_v = torch.where(vt > 0, vt, a * vt)
    assert close(camlib.deconvnet(model, x, target=2).values.flatten(1), (f_of_v @ w).expand(4, -1))
    plain = _modified_gradient(model, x, 2, "logit", "gradient", "test").values
    assert close(plain, camlib.saliency(model, x, target=2, absolute=False).values)


# --------------------------------------------------------------------------- peers


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(4)
    return SmallCNN().to(DTYPE).eval()


def test_captum_guided_backprop_and_deconvolution_agree(cnn):
    x = images(n=3, size=8, seed=7)
    t = torch.tensor([0, 3, 1])
    assert close(camlib.guided_backprop(cnn, x, target=t).values, GuidedBackprop(cnn).attribute(x, target=t))
    assert close(camlib.deconvnet(cnn, x, target=t).values, Deconvolution(cnn).attribute(x, target=t))


class SharedInput(nn.Module):
    """``f(x) = v . ReLU(z) + u . z`` with ``z = W x``: the ReLU's input has a second consumer."""

    def __init__(self, w, v, u):
        super().__init__()
        self.lin = _set(nn.Linear(w.shape[1], w.shape[0], bias=False), w)
        self.act = nn.ReLU()
        self.v, self.u = v, u

    def forward(self, x):
        z = self.lin(x.flatten(1))
        return (self.act(z) @ self.v.T + z @ self.u.T)


def test_shared_relu_input_camlib_follows_the_rule_captum_does_not(weights):
    """docs/math.md 11.1 with a second consumer of z: camlib gives W^T(ReLU(v)[z>0] + u); Captum
    hooks z itself and gives W^T ReLU(v [z>0] + u). The difference is asserted as a number."""
    w, _, v, _, x = weights
    u = -1.5 * torch.relu(v) - 0.2  # a strongly negative direct path
    model = SharedInput(w, v, u).to(DTYPE).eval()
    z = x.flatten(1) @ w.T
    ours = camlib.guided_backprop(model, x, target=0).values.flatten(1)
    theirs = GuidedBackprop(model).attribute(x, target=0).flatten(1)
    assert close(ours, (torch.relu(v[0]) * (z > 0) + u[0]) @ w)
    assert close(theirs, torch.relu(v[0] * (z > 0) + u[0]) @ w)
    gap = float((ours - theirs).abs().max())
    print(f"camlib vs Captum with a shared ReLU input: largest difference {gap:.3g}")
    assert gap > 0.5, gap  # not a rounding difference


def test_pytorch_grad_cam_guided_backprop_agrees_on_item_0_and_changes_the_model(cnn):
    x = images(n=2, size=8, seed=8)
    model = copy.deepcopy(cnn)
    model.features[1].inplace = True
    ours = camlib.guided_backprop(model, x, target=2).values[0].permute(1, 2, 0).numpy()
    assert model.features[1].inplace is True  # camlib leaves the module alone
    theirs = GuidedBackpropReLUModel(model, device="cpu")(x.clone(), target_category=2)
    assert theirs.shape == (8, 8, 3)  # batch item 0 only, height x width x channels
    assert np.allclose(theirs, ours, rtol=1e-10, atol=1e-12)
    assert model.features[1].inplace is False  # pytorch-grad-cam restored a fresh ReLU()


def test_11_5_guided_grad_cam_is_the_product_and_matches_captum(cnn):
    x = images(n=3, size=8, seed=9)
    t = torch.tensor([1, 0, 3])
    res = camlib.guided_grad_cam(cnn, x, "features.4", target=t)
    gc = camlib.grad_cam(cnn, x, "features.4", target=t)
    gbp = camlib.guided_backprop(cnn, x, target=t)
    up = camlib.upsample(gc.map, (8, 8))
    assert close(res.values, gbp.values * up[:, None]) and close(res.extras["upsampled_cam"], up)
    assert close(res.extras["guided_backprop"], gbp.values) and close(res.extras["grad_cam"].raw, gc.raw)
    captum = GuidedGradCam(cnn, cnn.features[4])
    assert close(res.values, captum.attribute(x, target=t, interpolate_mode="bilinear"))
    nearest = camlib.guided_grad_cam(cnn, x, "features.4", target=t, mode="nearest")
    assert close(nearest.values, captum.attribute(x, target=t))  # Captum's default is nearest
    difference = float((res.values - nearest.values).abs().max() / res.values.abs().max())
    print(f"Guided Grad-CAM bilinear vs nearest: largest difference {difference:.3g} of the largest value")
    assert difference > 0.01, difference  # a visible, not a rounding, difference


# --------------------------------------------------------------------------- safety and conventions


def test_state_restored_and_no_grad_and_train_mode(cnn):
    model = copy.deepcopy(cnn)
    model.train()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.features[0].weight.requires_grad_(False)
    x = images(n=2, size=8, seed=10)
    with torch.no_grad():
        a = camlib.guided_backprop(model, x, target=1).values
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model.fc.weight.grad, torch.ones_like(model.fc.weight))
    assert model.features[0].weight.requires_grad is False and _no_hooks(model)
    assert close(a, camlib.guided_backprop(cnn, x, target=1).values)
    assert not a.requires_grad
    with torch.inference_mode():
        inside = camlib.guided_grad_cam(model, x, "features", target=1)
    assert not inside.values.is_inference()
    assert close(inside.values, camlib.guided_grad_cam(cnn, x, "features", target=1).values)


def test_softmax_score_and_errors(cnn):
    x = images(n=2, size=8, seed=12)
    res = camlib.guided_backprop(cnn, x, target=1, score="softmax")
    assert res.score_kind == "softmax" and torch.isfinite(res.values).all()
    with pytest.raises(ValueError, match="score"):
        camlib.guided_backprop(cnn, x, score="probability")
    with pytest.raises(ValueError, match="out of range"):
        camlib.deconvnet(cnn, x, target=9)
    with pytest.raises(TypeError):
        camlib.guided_backprop("not a model", x)


def test_metrics_accept_the_results():
    model = gap_net(seed=0)
    x = images(n=2, size=8, seed=1)
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    for res in (camlib.guided_backprop(model, x), camlib.deconvnet(model, x),
                camlib.guided_grad_cam(model, x, "features")):
        assert camlib.metrics.to_map(res).shape == (2, 8, 8)
        value = camlib.metrics.pointing_game(res, masks).mean
        assert 0.0 <= value <= 1.0


def test_real_prelu_network_mtcnn_onet():
    """MTCNN's O-Net (PReLU everywhere): the hooks reproduce autograd with the plain rule, and the
    guided rule ReLU(R) f'(z) applies at all five PReLUs."""
    model = camlib.models.load_model("onet")
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    plain = _modified_gradient(model, x, 1, "logit", "gradient", "test")
    assert plain.extras["modified_calls"] == 5
    assert torch.allclose(plain.values, camlib.saliency(model, x, target=1, absolute=False).values, rtol=1e-5, atol=1e-7)
    gbp = camlib.guided_backprop(model, x, target=1)
    assert torch.isfinite(gbp.values).all() and not torch.equal(gbp.values, plain.values)
