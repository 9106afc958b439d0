"""Ablation-CAM, Score-CAM and Eigen-CAM (camlib.gradient_free; docs/math.md §11, 11.12-11.18).

Closed forms and explicit definitions on tiny float64 networks; pytorch-grad-cam's AblationCAM,
ScoreCAM and EigenCAM and Captum's LayerFeatureAblation where they compute the same thing, and
their documented differences asserted as numbers.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerFeatureAblation
from pytorch_grad_cam import AblationCAM, EigenCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
from torch import nn

import camlib
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


class Pooled(nn.Module):
    """features (conv, ReLU, 2x2 max-pool, conv, ReLU) -> mean GAP -> fc: the layer is 4x4 for 8x8 inputs."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def pooled():
    torch.manual_seed(6)
    return Pooled().to(DTYPE).eval()


class FlatHead(nn.Module):
    """An affine head: features -> flatten -> one linear layer (with bias)."""

    def __init__(self):
        super().__init__()
        self.features = gap_net(seed=3).features
        self.fc = nn.Linear(5 * 8 * 8, 4, dtype=DTYPE)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def _head(model):
    if hasattr(model, "head"):
        return lambda a: model.fc(model.head(a))
    return lambda a: model.fc(model.pool(a))


# --------------------------------------------------------------------------- Ablation-CAM


def test_11_12_ablation_on_a_mean_gap_head(gap, x):
    t = torch.tensor([0, 2, 3])
    res = camlib.ablation_cam(gap, x, "features", target=t)
    a = res.activations
    w, b = gap.fc.weight.detach()[t], gap.fc.bias.detach()[t]
    s = a.sum(dim=(2, 3))
    drops = res.extras["drops"]
    assert close(drops, w * s / 64)  # y - y_k = W_ck s_k / Z
    assert close(drops.sum(dim=1), res.score - b)  # sum_k (y - y_k) = y - b_c
    assert close(drops / s, camlib.grad_cam(gap, x, "features", target=t).weights)
    assert close(res.weights, drops / res.score.abs()[:, None])
    assert close(res.raw, camlib.channel_weighted_sum(res.weights, a)) and torch.equal(res.map, torch.relu(res.raw))
    assert res.gradients is None and res.method == "ablation_cam" and res.extras["expanded"] is True


def test_11_13_affine_head_drop_over_s_is_the_xgrad_cam_weight(x):
    model = FlatHead().eval()
    res = camlib.ablation_cam(model, x, "features", target=1)
    s = res.activations.sum(dim=(2, 3))
    assert close(res.extras["drops"] / s, camlib.xgrad_cam(model, x, "features", target=1).weights)


def test_ablation_is_the_explicit_definition_on_a_deep_head(x):
    model = deep_head_net(seed=2)
    res = camlib.ablation_cam(model, x, "features", batch_size=2)
    a, t = res.activations, res.target
    head = _head(model)
    for k in range(a.shape[1]):
        cut = a.clone()
        cut[:, k] = 0
        with torch.no_grad():
            yk = head(cut).gather(1, t[:, None]).squeeze(1)
        assert close(res.extras["drops"][:, k], res.score - yk)


@pytest.mark.parametrize("batch_size", [1, 2, 5, 64])
def test_ablation_does_not_depend_on_batch_size(gap, x, batch_size):
    ref = camlib.ablation_cam(gap, x, "features", target=1, batch_size=3)
    res = camlib.ablation_cam(gap, x, "features", target=1, batch_size=batch_size)
    assert close(res.weights, ref.weights)


class FixedBatch(nn.Module):
    """A forward that remembers its input batch size: the batch cannot grow at the layer."""

    def __init__(self):
        super().__init__()
        self.features = gap_net(seed=0).features
        self.fc = nn.Linear(5 * 64, 3, dtype=DTYPE)

    def forward(self, x):
        n = x.shape[0]
        return self.fc(self.features(x).reshape(n, -1))


class SkipCat(nn.Module):
    """Concatenates a tensor from before the layer after it (a U-Net-like skip)."""

    def __init__(self):
        super().__init__()
        self.features = gap_net(seed=0).features
        self.fc = nn.Linear(5 + 3, 3, dtype=DTYPE)

    def forward(self, x):
        a = self.features(x)
        return self.fc(torch.cat([a, x], dim=1).mean(dim=(2, 3)))


@pytest.mark.parametrize("cls", [FixedBatch, SkipCat])
def test_ablation_falls_back_when_the_batch_cannot_grow(x, cls):
    model = cls().eval()
    res = camlib.ablation_cam(model, x, "features", target=2, batch_size=2)
    assert res.extras["expanded"] is False
    a = res.activations
    for k in range(a.shape[1]):
        cut = a.clone()
        cut[:, k] = 0
        handle = model.features.register_forward_hook(lambda m, i, o: cut)
        try:
            with torch.no_grad():
                yk = model(x)[:, 2]
        finally:
            handle.remove()
        assert close(res.extras["drops"][:, k], res.score - yk)


def test_11_14_no_nan_at_zero_score_or_constant_channel(x):
    """A score of exactly 0 that still depends on the layer (a score that does not depend on it at all
    is refused, see tests/test_no_silent_wrong_answer.py): the drops are divided by 1, not by 0."""
    model = gap_net(seed=0)
    with torch.no_grad():
        model.features[2].weight[1] = 0.0
        model.features[2].bias[1] = 0.5  # channel 1 is the constant 0.5
        model.fc.weight[0] = 0.0
        model.fc.weight[0, 1] = 2.0
        model.fc.bias[0] = -1.0  # class 0's logit is 2 * 0.5 - 1 = 0 exactly, and reads channel 1
    res = camlib.ablation_cam(model, x, "features", target=0)
    assert torch.equal(res.score, torch.zeros(3, dtype=DTYPE))
    expected = torch.zeros(3, 5, dtype=DTYPE)
    expected[:, 1] = 1.0  # zeroing channel 1 lowers the logit from 0 to -1
    assert torch.equal(res.extras["drops"], expected)
    assert torch.isfinite(res.weights).all() and torch.equal(res.weights, expected)
    other = camlib.ablation_cam(model, x, "features", target=2)
    assert torch.isfinite(other.weights).all()
    assert close(other.extras["drops"][:, 1], model.fc.weight[2, 1].detach() * 0.5 * torch.ones(3, dtype=DTYPE))


def _negative_target(model, x):
    with torch.no_grad():
        out = model(x)
    assert (out < 0).any(dim=1).all()
    return out.argmin(dim=1)


def test_peer_pytorch_grad_cam_ablation_divides_by_the_signed_score(gap, x):
    """pgc's weights times y are the drops (15k) and flip sign for a negative logit; camlib
    divides by |y|, so its map keeps the evidence's sign."""
    for t in (torch.tensor([0, 1, 2]), _negative_target(gap, x)):
        ours = camlib.ablation_cam(gap, x, "features", target=t)
        model = copy.deepcopy(gap)
        acts = ours.activations.numpy()
        theirs = AblationCAM(model, [model.features]).get_cam_weights(
            x, model.features, [ClassifierOutputTarget(int(c)) for c in t], acts, None
        )
        theirs = torch.from_numpy(np.asarray(theirs, dtype=np.float64))
        y = ours.score[:, None]
        assert torch.allclose(theirs * y, ours.extras["drops"], rtol=1e-4, atol=1e-6)
        assert torch.allclose(theirs, ours.weights * torch.sign(y), rtol=1e-4, atol=1e-6)
    assert (ours.score < 0).all()  # the second target: every logit negative, every pgc weight flipped
    flipped = float((theirs + ours.weights).abs().max() / ours.weights.abs().max())
    assert flipped < 1e-4


def test_peer_captum_layer_feature_ablation_returns_the_drops(gap, x):
    t = torch.tensor([3, 0, 1])
    ours = camlib.ablation_cam(gap, x, "features", target=t)
    k = ours.activations.shape[1]
    mask = torch.arange(k).view(1, k, 1, 1).expand(1, k, 8, 8)
    theirs = LayerFeatureAblation(gap, gap.features).attribute(x, target=t, layer_mask=mask)
    assert close(theirs[:, :, 0, 0], ours.extras["drops"])


# --------------------------------------------------------------------------- Score-CAM


def _masks(a: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    up = F.interpolate(a, size=size, mode="bilinear", align_corners=align_corners)
    flat = up.flatten(2)
    lo, hi = flat.amin(dim=2)[..., None, None], flat.amax(dim=2)[..., None, None]
    return torch.where(hi > lo, (up - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi)), torch.zeros_like(up))


def test_score_cam_is_the_explicit_definition(pooled, x):
    res = camlib.score_cam(pooled, x, "features", target=[0, 1, 3])
    a, t = res.activations, res.target
    masks = _masks(a, (8, 8), align_corners=False)
    with torch.no_grad():
        base = pooled(torch.zeros_like(x)).gather(1, t[:, None])
        masked = torch.stack([pooled(x * masks[:, k, None]).gather(1, t[:, None]).squeeze(1) for k in range(5)], 1)
    assert close(res.extras["masked_scores"], masked) and close(res.extras["baseline_score"], base.squeeze(1))
    assert close(res.weights, masked - base) and close(res.extras["increase"], masked - base)
    soft = camlib.score_cam(pooled, x, "features", target=[0, 1, 3], channel_softmax=True)
    assert close(soft.weights, torch.softmax(masked - base, dim=1))
    assert res.gradients is None and res.method == "score_cam"


class LinearScore(nn.Module):
    """A linear score ``<w, x> + b`` with a 4-D feature layer that only provides the masks."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=DTYPE), nn.MaxPool2d(2))
        self.fc = nn.Linear(3 * 8 * 8, 2, dtype=DTYPE)

    def forward(self, x):
        self.features(x)
        return self.fc(x.flatten(1))


def test_11_15_linear_score_is_mask_weighted_gradient_times_input(x):
    torch.manual_seed(3)
    model = LinearScore().eval()
    res = camlib.score_cam(model, x, "features", target=1)
    masks = _masks(res.activations, (8, 8), align_corners=False)
    gxi = (model.fc.weight[1].detach().view(3, 8, 8) * x).sum(dim=1)  # sum over colour channels
    assert close(res.weights, torch.einsum("nhw,nkhw->nk", gxi, masks))


def test_11_16_channel_softmax(pooled, x):
    res = camlib.score_cam(pooled, x, "features", channel_softmax=True)
    assert close(res.weights.sum(dim=1), torch.ones(3, dtype=DTYPE))
    assert close(res.weights, torch.softmax(res.extras["masked_scores"], dim=1))  # the baseline cancels
    prob = camlib.score_cam(pooled, x, "features", score="softmax", channel_softmax=True)
    ratio = prob.weights.amax(dim=1) / prob.weights.amin(dim=1)
    assert (ratio <= torch.e).all() and (ratio >= 1).all()
    print("largest/smallest channel weight with probabilities:", ratio.tolist())


def test_11_17_upsampling_is_linear_and_relu_order_matters():
    gen = torch.Generator().manual_seed(9)
    a = torch.randn(2, 5, 4, 4, generator=gen, dtype=DTYPE)
    w = torch.randn(2, 5, generator=gen, dtype=DTYPE)
    m = camlib.channel_weighted_sum(w, a)
    up_each = torch.stack([camlib.upsample(a[:, k], (16, 16)) for k in range(5)], dim=1)
    assert close(camlib.upsample(m, (16, 16)), camlib.channel_weighted_sum(w, up_each))
    gap = camlib.upsample(torch.relu(m), (16, 16)) - torch.relu(camlib.upsample(m, (16, 16)))
    assert gap.min() >= -1e-15 and gap.max() > 0


def test_score_cam_constant_channel_gets_zero_without_nan(x):
    model = gap_net(seed=0)
    with torch.no_grad():
        model.features[2].weight[1] = 0.0
        model.features[2].bias[1] = -1.0  # ReLU(-1) = 0: a dead channel
    res = camlib.score_cam(model, x, "features", target=2)
    assert torch.isfinite(res.weights).all()
    assert torch.equal(res.weights[:, 1], torch.zeros(3, dtype=DTYPE))
    assert torch.equal(res.extras["masked_scores"][:, 1], res.extras["baseline_score"])


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_score_cam_does_not_depend_on_batch_size(pooled, x, batch_size):
    ref = camlib.score_cam(pooled, x, "features", batch_size=7)
    assert close(camlib.score_cam(pooled, x, "features", batch_size=batch_size).weights, ref.weights)


def _pgc_score_weights(model, x, t, acts):
    model = copy.deepcopy(model)
    cam = ScoreCAM(model, [model.features])
    weights = cam.get_cam_weights(x, model.features, [ClassifierOutputTarget(int(c)) for c in t], acts.numpy(), None)
    return torch.from_numpy(np.asarray(weights, dtype=np.float64))


def test_peer_pytorch_grad_cam_score_cam(gap, pooled, x):
    """(15w) pgc's weights are softmax_k(logit(x * mm(U(A^k)))) with align_corners=True. Where the
    layer has the input's size (no upsampling) camlib's channel softmax is the same; with
    upsampling the masks differ, and so do the weights, by the number asserted below."""
    t = torch.tensor([1, 0, 2])
    same = camlib.score_cam(gap, x, "features", target=t, channel_softmax=True)
    theirs = _pgc_score_weights(gap, x, t, same.activations)
    assert torch.allclose(theirs, same.weights, rtol=1e-5, atol=1e-7)

    ours = camlib.score_cam(pooled, x, "features", target=t, channel_softmax=True)
    theirs = _pgc_score_weights(pooled, x, t, ours.activations)
    masks = _masks(ours.activations, (8, 8), align_corners=True)
    with torch.no_grad():
        scores = torch.stack([pooled(x * masks[:, k, None]).gather(1, t[:, None]).squeeze(1) for k in range(5)], 1)
    assert torch.allclose(theirs, torch.softmax(scores, dim=1), rtol=1e-5, atol=1e-7)
    difference = float((theirs - ours.weights).abs().max())
    print(f"Score-CAM weights, pgc (align_corners=True) vs camlib: largest difference {difference:.3g}")
    assert 1e-4 < difference < 0.5


# --------------------------------------------------------------------------- Eigen-CAM


class Given(nn.Module):
    """A 'layer' that outputs fixed activations (N, K, h, w) whatever the input."""

    def __init__(self, a):
        super().__init__()
        self.register_buffer("a", a)

    def forward(self, x):
        return self.a + 0.0 * x.sum()


class GivenNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.features = Given(a)
        self.fc = nn.Linear(a.shape[1], 3, dtype=a.dtype)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _eigen(a: torch.Tensor) -> camlib.CamResult:
    model = GivenNet(a).eval()
    return camlib.eigen_cam(model, torch.zeros(a.shape[0], 1, 2, 2, dtype=a.dtype), "features")


def test_11_18_eigen_cam_identities():
    gen = torch.Generator().manual_seed(5)
    a = torch.relu(torch.randn(3, 6, 5, 4, generator=gen, dtype=DTYPE)) + 0.01
    res = _eigen(a)
    x_mat = a.flatten(2).transpose(1, 2)
    sigma = torch.linalg.svdvals(x_mat)
    assert close(res.raw.flatten(1).norm(dim=1), sigma[:, 0])  # ||X v_1|| = sigma_1
    assert (res.map == res.raw).all() and (res.raw >= 0).all()  # the sign rule, A >= 0
    assert (res.weights >= 0).all()  # Perron-Frobenius: v_1 >= 0
    assert close(res.extras["singular_values"], sigma)
    # sign rule: <X v_1, X 1> = sigma_1^2 sum_k v_1k >= 0
    corr = (res.raw * a.sum(dim=1)).sum(dim=(1, 2))
    assert close(corr, sigma[:, 0] ** 2 * res.weights.sum(dim=1)) and (corr >= 0).all()
    # orthogonal mixing of the channels: the same map up to sign; scale: linear
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=DTYPE))
    mixed = _eigen(torch.einsum("nkhw,kj->njhw", a, q)).raw
    assert close(mixed.abs(), res.raw.abs(), 1e-10)
    assert close(_eigen(3.0 * a).raw, 3.0 * res.raw, 1e-10)


def test_11_18_rank_one_and_class_agnostic():
    gen = torch.Generator().manual_seed(6)
    u = torch.rand(2, 12, generator=gen, dtype=DTYPE) + 0.1
    v = torch.rand(2, 4, generator=gen, dtype=DTYPE) + 0.1
    a = torch.einsum("nz,nk->nkz", u, v).reshape(2, 4, 3, 4)
    res = _eigen(a)
    assert close(res.raw.flatten(1), v.norm(dim=1, keepdim=True) * u, 1e-10)
    model = GivenNet(a).eval()
    z = torch.zeros(2, 1, 2, 2, dtype=DTYPE)
    maps = [camlib.eigen_cam(model, z, "features", target=c).raw for c in range(3)]
    assert all(torch.equal(m, maps[0]) for m in maps)


def test_eigen_cam_sign_rule_on_signed_activations_and_zero_layer():
    gen = torch.Generator().manual_seed(7)
    a = torch.randn(4, 5, 3, 3, generator=gen, dtype=DTYPE)
    for sign in (1.0, -1.0):
        res = _eigen(sign * a)
        assert (res.weights.sum(dim=1) >= 0).all()
        assert ((res.raw * (sign * a).sum(dim=1)).sum(dim=(1, 2)) >= 0).all()
    zero = _eigen(torch.zeros(1, 3, 2, 2, dtype=DTYPE))
    assert torch.equal(zero.weights, torch.zeros(1, 3, dtype=DTYPE)) and torch.isfinite(zero.raw).all()


def test_peer_pytorch_grad_cam_eigen_cam_centres(gap, x):
    """pgc centres each channel before the SVD (its map sums to 0 and may come out negated);
    camlib does not centre. Their maps differ by the number asserted below."""
    ours = camlib.eigen_cam(gap, x, "features")
    a = ours.activations
    theirs = torch.from_numpy(get_2d_projection(a.numpy())).to(DTYPE)
    assert close(theirs.sum(dim=(1, 2)) / theirs.abs().sum(dim=(1, 2)), torch.zeros(3, dtype=DTYPE), 1e-6)
    centred = a.flatten(2).transpose(1, 2)
    centred = centred - centred.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    expected = (centred @ vh[:, 0, :, None]).squeeze(2).reshape(3, 8, 8)
    err = torch.minimum((theirs - expected).abs().amax(dim=(1, 2)), (theirs + expected).abs().amax(dim=(1, 2)))
    assert (err <= 1e-5 * expected.abs().amax(dim=(1, 2))).all()
    # end to end: pgc's EigenCAM = min-max(ReLU(that projection)), as documented
    model = copy.deepcopy(gap)
    full = EigenCAM(model, [model.features])(x, targets=None)
    mm = camlib.normalize(torch.relu(theirs)).numpy()
    assert np.allclose(full, mm, atol=1e-5)
    difference = float((torch.from_numpy(full).to(DTYPE) - camlib.normalize(ours.map)).abs().max())
    print(f"Eigen-CAM normalised maps, pgc (centred) vs camlib: largest difference {difference:.3g}")
    assert difference > 0.05


# --------------------------------------------------------------------------- safety


class TrainBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", [camlib.ablation_cam, camlib.score_cam, camlib.eigen_cam],
                         ids=["ablation", "score", "eigen"])
def test_state_untouched_and_metrics_accept(method, x):
    torch.manual_seed(2)
    model = TrainBN().to(DTYPE).train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    model.fc.weight.grad = torch.full_like(model.fc.weight, 3.0)
    with torch.no_grad():
        first = method(model, x, "features")
    second = method(model, x, "features.2")
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 3.0))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert close(first.raw, second.raw)  # dropout off: features and features.2 give the same map here
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    assert camlib.metrics.to_map(first).shape == (3, 8, 8)
    assert 0.0 <= camlib.metrics.energy_inside(first, masks).mean <= 1.0
    assert not first.raw.requires_grad
    with torch.inference_mode():
        inside = method(model, x, "features")
    assert not inside.raw.is_inference() and close(inside.raw, first.raw)


def test_errors(gap, x):
    with pytest.raises(ValueError, match="batch_size"):
        camlib.ablation_cam(gap, x, "features", batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        camlib.score_cam(gap, x, "features", batch_size=1.5)
    with pytest.raises(ValueError, match="not a submodule"):
        camlib.eigen_cam(gap, x, "featurs")
    with pytest.raises(TypeError, match="channel_softmax"):
        camlib.score_cam(gap, x, "features", channel_softmax="yes")
    with pytest.raises(ValueError, match="out of range"):
        camlib.ablation_cam(gap, x, "features", target=7)


class ViewHead(nn.Module):
    """A forward that needs the default memory layout (``.view`` on a conv output)."""

    def __init__(self):
        super().__init__()
        self.features = gap_net(seed=0).features
        self.fc = nn.Linear(5 * 64, 3, dtype=DTYPE)

    def forward(self, x):
        a = self.features(x)
        return self.fc(a.view(a.shape[0], -1))


def test_score_cam_keeps_the_default_layout_when_the_model_needs_it(x):
    model = ViewHead().eval()
    res = camlib.score_cam(model, x, "features", target=0)
    masks = _masks(res.activations, (8, 8), align_corners=False)
    with torch.no_grad():
        base = model(torch.zeros_like(x))[:, 0]
        masked = torch.stack([model(x * masks[:, k, None])[:, 0] for k in range(5)], 1)
    assert close(res.weights, masked - base[:, None])
