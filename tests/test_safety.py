"""Safety: hooks, model state, in-place ReLU, clear errors, batches, dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import camlib
from tiny_nets import gap_net, images

CAM_METHODS = {
    "grad_cam": lambda m, x, t: camlib.grad_cam(m, x, "features", target=t),
    "grad_cam_plus": lambda m, x, t: camlib.grad_cam_plus(m, x, "features", target=t),
    "grad_cam_pp": lambda m, x, t: camlib.grad_cam_pp(m, x, "features", target=t),
    "grad_cam_pp_official": lambda m, x, t: camlib.grad_cam_pp(m, x, "features", target=t, variant="official"),
    "xgrad_cam": lambda m, x, t: camlib.xgrad_cam(m, x, "features", target=t),
    "counterfactual": lambda m, x, t: camlib.counterfactual(m, x, "features", target=t),
    "cam": lambda m, x, t: camlib.cam(m, x, target=t),
}
PIXEL_METHODS = {
    "saliency": lambda m, x, t: camlib.saliency(m, x, target=t),
    "gradient_x_input": lambda m, x, t: camlib.gradient_x_input(m, x, target=t),
    "integrated_gradients": lambda m, x, t: camlib.integrated_gradients(m, x, target=t, steps=8, batch_size=5),
    "occlusion": lambda m, x, t: camlib.occlusion(m, x, target=t, patch=4, stride=2, batch_size=7),
}
ALL = {**CAM_METHODS, **PIXEL_METHODS}


def hook_count(model: nn.Module) -> int:
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total


class DropGapNet(nn.Module):
    """GAP net with dropout before the fc: results depend on the mode unless eval is used."""

    def __init__(self) -> None:
        super().__init__()
        base = gap_net(seed=3)
        self.features, self.pool = base.features, base.pool
        self.drop = nn.Dropout(0.5)
        self.fc = base.fc

    def forward(self, x):
        return self.fc(self.drop(self.pool(self.features(x))))


def _values(r):
    return r.raw if isinstance(r, camlib.CamResult) else r.values


# --------------------------------------------------------------------------- state and hooks


@pytest.mark.parametrize("name", list(ALL))
def test_model_state_is_restored(name, gap_model, two_images):
    model, x = gap_model, two_images
    model.train()
    model.features[0].weight.requires_grad_(False)
    sentinel = torch.full_like(model.fc.weight, 7.0)
    model.fc.weight.grad = sentinel
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ALL[name](model, x, None)
    assert hook_count(model) == 0
    assert all(m.training for m in model.modules())
    assert model.features[0].weight.requires_grad is False and model.fc.weight.requires_grad
    assert model.fc.weight.grad is sentinel and bool((sentinel == 7.0).all())
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", list(ALL))
def test_same_result_under_no_grad_and_in_train_mode(name):
    model, x = DropGapNet().double(), images(n=2, size=8)
    model.eval()
    ref = _values(ALL[name](model, x, 1))
    model.train()  # dropout would randomise the result if the method ran in train mode
    with torch.no_grad():
        got = _values(ALL[name](model, x, 1))
    assert torch.allclose(got, ref, rtol=0, atol=1e-12)
    assert model.training


class Exploding(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom from the user's model")


@pytest.mark.parametrize("name", list(ALL))
def test_hooks_removed_and_errors_not_swallowed(name, gap_model, two_images):
    model, x = gap_model, two_images
    with pytest.raises(ValueError, match="out of range"):
        ALL[name](model, x, 99)
    assert hook_count(model) == 0
    model.fc = nn.Sequential(Exploding(), model.fc)  # raises in the middle of the forward
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        ALL[name](model, x, 0)
    assert hook_count(model) == 0 and model.training


# --------------------------------------------------------------------------- in-place ReLU


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10).eval()


def test_inplace_relu_after_hooked_layer_resnet18(resnet):
    model = resnet
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    layer = "layer4.0.bn1"  # followed by ReLU(inplace=True) inside the block
    r = camlib.grad_cam(model, x, layer, target=[3, 7])

    # independent oracle: the bn1 output as a leaf, with a clone passed on to the in-place ReLU
    store = {}

    def hook(mod, inp, out):
        leaf = out.detach().requires_grad_(True)
        store["a"] = leaf
        return leaf.clone()

    h = model.layer4[0].bn1.register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        h.remove()
    y = out[[0, 1], [3, 7]].sum()
    (g,) = torch.autograd.grad(y, store["a"])
    a = store["a"].detach()
    assert float(a.min()) < 0  # the explained tensor is the pre-ReLU bn1 output ...
    assert torch.equal(r.activations, a)  # ... not the ReLU'd version
    assert torch.allclose(r.gradients, g, rtol=1e-5, atol=1e-9)
    assert bool((r.gradients[a < 0] == 0).all())  # consistent: the ReLU kills these gradients
    # the user's forward is unchanged: logits identical with and without camlib
    assert torch.allclose(r.score, out.detach()[[0, 1], [3, 7]], rtol=1e-6, atol=1e-6)
    assert hook_count(model) == 0


def test_resnet_cam_equals_grad_cam_times_Z(resnet):
    model = resnet
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    c = camlib.cam(model, x)
    g = camlib.grad_cam(model, x, "layer4", target=c.target)
    assert c.layer == "layer4" and c.extras["fc"] == "fc" and c.extras["pool"] == "mean"
    assert torch.allclose(g.raw * 4, c.raw, rtol=1e-4, atol=1e-6)  # layer4 is 2x2 here: Z = 4


# --------------------------------------------------------------------------- clear errors


def test_shared_module_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu,
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="ran 2 times"):
        camlib.grad_cam(model, torch.rand(1, 3, 8, 8), relu)
    assert hook_count(model) == 0


# --------------------------------------------------------------------------- batches, dtype


@pytest.mark.parametrize("name", list(ALL))
def test_batch_with_per_sample_targets_equals_one_at_a_time(name):
    model, x = gap_net(seed=2), images(n=3, size=8, seed=5)
    targets = [2, 0, 3]
    batch = ALL[name](model, x, targets)
    for i, t in enumerate(targets):
        single = ALL[name](model, x[i : i + 1], t)
        assert torch.allclose(_values(batch)[i], _values(single)[0], rtol=0, atol=1e-12)
        assert int(batch.target[i]) == t
        assert torch.allclose(batch.score[i], single.score[0], rtol=0, atol=1e-12)


def test_int_target_broadcasts_and_none_is_argmax():
    model, x = gap_net(seed=2), images(n=3, size=8, seed=5)
    r = camlib.grad_cam(model, x, "features", target=1)
    assert r.target.tolist() == [1, 1, 1] and r.target.dtype == torch.long
    r = camlib.saliency(model, x)
    assert torch.equal(r.target, model(x).argmax(1))
    r = camlib.grad_cam(model, x, "features", target=torch.tensor(2))
    assert r.target.tolist() == [2, 2, 2]
    r = camlib.grad_cam(model, x, "features", target=np.array([3, 1, 0]))
    assert r.target.tolist() == [3, 1, 0]


def test_xgrad_cam_warns_on_signed_activations():
    model, x = gap_net(seed=2), images(n=2, size=8)
    with pytest.warns(UserWarning, match="negative activations"):
        r = camlib.xgrad_cam(model, x, "features.2")  # conv output, before the ReLU
    assert torch.isfinite(r.weights).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    model, x = gap_net(seed=2), images(n=2, size=8)
    for name, fn in ALL.items():
        cpu = fn(model, x, [1, 2])
        gpu = fn(gap_net(seed=2).cuda(), x, [1, 2])  # x stays on the CPU: the model's device wins
        assert _values(gpu).device.type == "cuda", name
        assert torch.allclose(_values(gpu).cpu(), _values(cpu), rtol=1e-9, atol=1e-9), name


@pytest.mark.parametrize("name", list(ALL))
def test_model_dtype_is_followed(name):
    model = gap_net(seed=2).float()
    x = images(n=2, size=8)  # float64 input to a float32 model
    r = ALL[name](model, x, 0)
    assert _values(r).dtype == torch.float32 and r.score.dtype == torch.float32
    r64 = ALL[name](gap_net(seed=2), x.float(), 0)
    assert _values(r64).dtype == torch.float64


def test_results_are_detached():
    model, x = gap_net(seed=2), images(n=2, size=8)
    r = camlib.grad_cam(model, x, "features")
    assert not any(t.requires_grad for t in (r.activations, r.gradients, r.weights, r.raw, r.map, r.score))
    a = camlib.integrated_gradients(model, x, steps=4)
    assert not (a.values.requires_grad or a.delta.requires_grad or a.score.requires_grad)


def test_frozen_model_still_explained():
    model, x = gap_net(seed=2), images(n=2, size=8)
    for p in model.parameters():
        p.requires_grad_(False)
    r = camlib.grad_cam(model, x, "features", target=1)
    ref = camlib.grad_cam(gap_net(seed=2), x, "features", target=1)
    assert torch.allclose(r.raw, ref.raw, rtol=0, atol=1e-12)
    assert not any(p.requires_grad for p in model.parameters())
