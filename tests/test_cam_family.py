"""Exactness of the CAM family against closed forms (docs/math.md §13: 4.1-5.8, 6.1-7.5, 8.1-8.7).

All in float64 on the tiny networks of ``tiny_nets``, with tolerances relative to the size of the
values (docs/math.md §12).
"""

from __future__ import annotations

import pytest
import torch

import camlib
from tiny_nets import deep_head_net, fc_head_net, gap_net, images, sum_gap_net

TOL = 1e-9


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    return bool((a - b).abs().max() <= tol * (1 + b.abs().max()))


@pytest.fixture(scope="module")
def gap():
    return gap_net(seed=0)


@pytest.fixture(scope="module")
def x():
    return images(n=3, size=8, seed=1)


def head_of(model):
    """The part of the network above ``features`` as a function of A."""
    if hasattr(model, "head"):
        return lambda a: model.fc(model.head(a))
    return lambda a: model.fc(model.pool(a))


# --------------------------------------------------------------------------- core


def test_channel_weighted_sum_is_the_explicit_sum():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    a = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    expected = torch.stack([sum(w[n, k] * a[n, k] for k in range(4)) for n in range(2)])
    assert close(camlib.channel_weighted_sum(w, a), expected, 1e-12)
    with pytest.raises(ValueError, match="weights must be"):
        camlib.channel_weighted_sum(w[:, :3], a)


def test_every_method_returns_raw_and_relu_map(gap, x):
    for fn in (camlib.grad_cam, camlib.grad_cam_plus, camlib.xgrad_cam, camlib.counterfactual):
        r = fn(gap, x, "features")
        assert close(r.raw, camlib.channel_weighted_sum(r.weights, r.activations), 1e-12)
        assert torch.equal(r.map, torch.relu(r.raw))
        assert r.gradients.shape == r.activations.shape
    c = camlib.cam(gap, x)
    assert c.gradients is None and torch.equal(c.map, torch.relu(c.raw))


def test_grad_cam_matches_manual_autograd_on_a_deep_head(x):
    model = deep_head_net(seed=2)
    a = model.features(x).detach().requires_grad_(True)
    y = head_of(model)(a)
    t = y.argmax(1)
    (g,) = torch.autograd.grad(y.gather(1, t[:, None]).sum(), a)
    r = camlib.grad_cam(model, x, "features")
    assert torch.equal(r.target, t)
    assert close(r.activations, a.detach(), 0) and close(r.gradients, g, 1e-12)
    assert close(r.weights, g.mean(dim=(2, 3)), 1e-12)
    assert close(r.score, y.gather(1, t[:, None]).squeeze(1).detach(), 1e-12)


# --------------------------------------------------------------------------- 1a-1h CAM vs Grad-CAM


def test_1a_gradient_is_fc_weight_over_Z_everywhere(gap, x):
    r = camlib.grad_cam(gap, x, "features", target=[0, 2, 3])
    z = r.activations.shape[2] * r.activations.shape[3]
    w = gap.fc.weight.detach()[r.target]
    assert close(r.gradients, (w / z)[:, :, None, None].expand_as(r.gradients))


def test_1b_1c_grad_cam_is_cam_over_Z_for_mean_gap(gap, x):
    c = camlib.cam(gap, x, target=1)
    g = camlib.grad_cam(gap, x, "features", target=1)
    z = 64
    assert c.extras["pool"] == "mean" and c.layer == "features" and c.extras["fc"] == "fc"
    assert close(g.raw, c.raw / z)
    assert close(g.map, c.map / z)
    # CAM's weights are the fc row itself (no 1/Z), and CAM has no ReLU in raw
    assert close(c.weights, gap.fc.weight.detach()[[1, 1, 1]], 0)


def test_cam_raw_is_not_relu_clipped():
    # find a case with negative CAM values: they must stay in .raw
    model, x = gap_net(seed=5), images(n=4, size=8, seed=6)
    c = camlib.cam(model, x)
    assert c.raw.min() < 0 < c.raw.max()
    assert c.map.min() == 0


def test_1d_cam_conservation_mean_gap(gap, x):
    c = camlib.cam(gap, x)
    y = gap(x).gather(1, c.target[:, None]).squeeze(1).detach()
    b = gap.fc.bias.detach()[c.target]
    assert close(c.raw.mean(dim=(1, 2)) + b, y)
    assert close(c.score, y) and close(c.extras["bias"], b, 0)


def test_1e_1f_sum_gap_cam_equals_grad_cam_and_conserves():
    model, x = sum_gap_net(seed=3), images(n=2, size=6, seed=4)
    c = camlib.cam(model, x)
    g = camlib.grad_cam(model, x, "features", target=c.target)
    assert c.extras["pool"] == "sum"
    # Grad-CAM with the spatial mean on a sum-GAP head: dY/dA = w, mean of a constant = w
    assert close(g.raw, c.raw)
    y = model(x).gather(1, c.target[:, None]).squeeze(1).detach()
    assert close(c.raw.sum(dim=(1, 2)) + model.fc.bias.detach()[c.target], y)


def test_1g_1h_softmax_and_log_softmax_targets(gap, x):
    classes = gap.fc.out_features
    cams = torch.stack([camlib.cam(gap, x, target=j).raw for j in range(classes)], dim=1)
    p = torch.softmax(gap(x), dim=1).detach()
    mix = (p[:, :, None, None] * cams).sum(dim=1)
    t = torch.tensor([0, 1, 3])
    own = cams[torch.arange(3), t]
    z = 64
    pc = p[torch.arange(3), t][:, None, None]
    soft = camlib.grad_cam(gap, x, "features", target=t, score="softmax")
    logsoft = camlib.grad_cam(gap, x, "features", target=t, score="log_softmax")
    assert close(soft.raw, pc / z * (own - mix))
    assert close(logsoft.raw, (own - mix) / z)
    assert close(soft.score, pc.flatten()) and close(logsoft.score, pc.log().flatten())


def _all_cams(model, x):
    return torch.stack([camlib.cam(model, x, target=j).raw for j in range(model.fc.out_features)], dim=1)


@pytest.mark.parametrize("classes", [2, 4])
def test_5_6_softmax_map_is_bounded_by_pc_times_1_minus_pc(x, classes):
    # (5.6): |M_pc| <= p_c (1 - p_c) max_{j != c} |CAM_c - CAM_j| / Z, |M_log pc| <= (1 - p_c) (same);
    # with two classes the sum over j != c has one term, so both bounds hold with equality.
    model = gap_net(seed=2, classes=classes)
    z = 64
    cams = _all_cams(model, x)
    p = torch.softmax(model(x), dim=1).detach()
    rows = torch.arange(x.shape[0])
    for c in range(classes):
        t = torch.full((x.shape[0],), c)
        pc = p[rows, t][:, None, None]
        others = torch.cat([cams[:, :c], cams[:, c + 1:]], dim=1)
        spread = (cams[:, c:c + 1] - others).abs().amax(dim=1)
        soft = camlib.grad_cam(model, x, "features", target=t, score="softmax").raw
        logsoft = camlib.grad_cam(model, x, "features", target=t, score="log_softmax").raw
        bound_soft, bound_log = pc * (1 - pc) * spread / z, (1 - pc) * spread / z
        assert torch.all(soft.abs() <= bound_soft * (1 + 1e-12) + 1e-15)
        assert torch.all(logsoft.abs() <= bound_log * (1 + 1e-12) + 1e-15)
        assert (soft.abs() > 0).any()
        if classes == 2:
            assert close(soft.abs(), bound_soft) and close(logsoft.abs(), bound_log)


def test_5_6_saturation_comes_from_pc_times_1_minus_pc_not_pc():
    # Scaling the last layer by 1, 4, 16 drives p_c -> 1: the CAM differences grow linearly, 1 - p_c
    # falls exponentially, so the softmax AND the log-softmax maps shrink, although the log-softmax
    # map has no factor p_c (a saturation caused by p_c alone would leave it alone).
    model = gap_net(seed=2, classes=2)
    x = images(n=1, size=8, seed=3)
    target = torch.tensor([int(model(x).argmax())])
    sizes = {"softmax": [], "log_softmax": []}
    confidence = []
    for scale in (1.0, 4.0, 16.0):
        scaled = gap_net(seed=2, classes=2)
        with torch.no_grad():
            scaled.fc.weight.mul_(scale)
            scaled.fc.bias.mul_(scale)
        confidence.append(float(torch.softmax(scaled(x), dim=1)[0, target].detach()))
        for score in sizes:
            sizes[score].append(float(camlib.grad_cam(scaled, x, "features", target=target, score=score).raw.abs().max()))
    assert confidence[0] < confidence[1] < confidence[2] and confidence[2] > 0.999
    for score, values in sizes.items():
        assert values[2] < 0.01 * values[0], (score, values)


@pytest.mark.parametrize("score", ["softmax", "log_softmax"])
def test_5_7_bias_shift_of_the_explained_class_rescales_without_reshaping(x, score):
    # (5.7): b_c -> b_c + delta multiplies the softmax map by p'_c (1 - p'_c) / (p_c (1 - p_c)) and the
    # log-softmax map by (1 - p'_c) / (1 - p_c): one positive constant per image, the shape unchanged.
    model = gap_net(seed=0)
    c = 1
    t = torch.full((x.shape[0],), c)
    before = camlib.grad_cam(model, x, "features", target=t, score=score).raw
    p = torch.softmax(model(x), dim=1).detach()[:, c]
    for delta in (-3.0, 2.0, 10.0):
        shifted = gap_net(seed=0)
        with torch.no_grad():
            shifted.fc.bias[c] += delta
        after = camlib.grad_cam(shifted, x, "features", target=t, score=score).raw
        q = torch.softmax(shifted(x), dim=1).detach()[:, c]
        factor = q * (1 - q) / (p * (1 - p)) if score == "softmax" else (1 - q) / (1 - p)
        assert close(after, factor[:, None, None] * before)
        assert torch.all(factor > 0) and not close(factor, torch.ones_like(factor))
        assert close(camlib.cam(shifted, x, target=t).raw, camlib.cam(model, x, target=t).raw)
        assert close(camlib.grad_cam(shifted, x, "features", target=t).raw,
                     camlib.grad_cam(model, x, "features", target=t).raw)


def test_cam_finds_resnet_like_default_layer_and_rejects_non_gap(x):
    with pytest.raises(ValueError, match="grad_cam"):
        camlib.cam(fc_head_net(seed=0), x)
    with pytest.raises(ValueError, match="grad_cam"):
        camlib.cam(deep_head_net(seed=0), x)


# --------------------------------------------------------------------------- 2a-2h, 6a-6e Grad-CAM++


def _entry_derivatives(model, x, n, k, i, j, target):
    """First three derivatives of S = exp(Y^c) w.r.t. the single entry A[n, k, i, j] (autograd)."""
    a = model.features(x).detach().requires_grad_(True)
    s = torch.exp(head_of(model)(a)[n, target])
    (d1,) = torch.autograd.grad(s, a, create_graph=True)
    e1 = d1[n, k, i, j]
    (d2,) = torch.autograd.grad(e1, a, create_graph=True)
    e2 = d2[n, k, i, j]
    (d3,) = torch.autograd.grad(e2, a, allow_unused=True)
    e3 = d3[n, k, i, j] if d3 is not None else torch.zeros((), dtype=a.dtype)
    return s.detach(), e1.detach(), e2.detach(), e3.detach()


def _nonzero_entries(g, count=6):
    idx = torch.nonzero(g != 0)
    step = max(1, idx.shape[0] // count)
    return [tuple(int(v) for v in row) for row in idx[::step][:count]]


def test_2a_2b_2c_2d_eq19_equals_eq10_with_true_derivatives(x):
    model = deep_head_net(seed=4)
    r = camlib.grad_cam_pp(model, x, "features", target=2)
    g, a, alpha = r.gradients, r.activations, r.extras["alpha"]
    s = a.sum(dim=(2, 3))
    entries = _nonzero_entries(g)
    assert len(entries) >= 4
    for n, k, i, j in entries:
        ey, d1, d2, d3 = _entry_derivatives(model, x, n, k, i, j, 2)
        gij = g[n, k, i, j]
        assert close(d1, ey * gij)  # chain rule
        assert close(d2, ey * gij**2)  # 2a
        assert close(d3, ey * gij**3)  # 2b
        eq10 = d2 / (2 * d2 + s[n, k] * d3)  # exp(Y) cancels: 2d
        assert close(alpha[n, k, i, j], eq10)  # 2c
        assert close(alpha[n, k, i, j], 1 / (2 + s[n, k] * gij))
    assert torch.all(alpha[g == 0] == 0)


def test_6_4_the_mixed_derivatives_eq10_drops_are_products_of_gradients_not_zero(x):
    # (6.4): for S = exp(Y^c) and a piecewise-linear head, d2S / dA^l_ab dA^k_ij = e^Y g^l_ab g^k_ij almost
    # everywhere: the whole row of second derivatives of an entry, not only its diagonal term, is of the
    # size of the kept term e^Y (g^k_ij)^2.
    model = deep_head_net(seed=4)
    g = camlib.grad_cam_pp(model, x, "features", target=2).gradients
    a = model.features(x).detach().requires_grad_(True)
    s = torch.exp(head_of(model)(a)[:, 2])
    (d1,) = torch.autograd.grad(s.sum(), a, create_graph=True)
    for n, k, i, j in _nonzero_entries(g):
        (row,) = torch.autograd.grad(d1[n, k, i, j], a, retain_graph=True)
        ey = s[n].detach()
        assert close(row[n], ey * g[n] * g[n, k, i, j])          # every mixed term: a product of gradients
        assert torch.all(row[torch.arange(len(x)) != n] == 0)   # images do not interact
        mixed = row[n].sum() - row[n, k, i, j]
        assert abs(float(mixed)) > 0.1 * abs(float(row[n, k, i, j]))  # the dropped terms are not small


def test_2e_exp_head_scales_weights_by_exp_Y(x):
    model = deep_head_net(seed=4)
    r = camlib.grad_cam_pp(model, x, "features")
    ey = torch.exp(r.score)[:, None, None, None]
    w_exp = (r.extras["alpha"] * torch.relu(ey * r.gradients)).sum(dim=(2, 3))
    assert close(w_exp, torch.exp(r.score)[:, None] * r.weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_2f_6a_sandwich_bound_and_6b_nonnegative(seed):
    model, x = deep_head_net(seed=seed), images(n=3, size=8, seed=seed + 10)
    pp = camlib.grad_cam_pp(model, x, "features")
    plus = camlib.grad_cam_plus(model, x, "features", target=pp.target)
    z = 64
    w_pos = plus.weights * z  # W+_k = sum_ij ReLU(g)
    s = pp.activations.sum(dim=(2, 3))
    g_max = torch.relu(pp.gradients).amax(dim=(2, 3))
    lower = w_pos / (2 + s * g_max)
    upper = w_pos / 2
    assert torch.all(lower <= pp.weights + 1e-15)
    assert torch.all(pp.weights <= upper + 1e-15)
    assert bool((upper - lower).max() > 0)  # the bound is not trivially tight here
    assert torch.all(pp.raw >= 0)  # 6b (A >= 0)


def test_2g_gap_closed_form_and_6c_grad_cam_plus(gap, x):
    pp = camlib.grad_cam_pp(gap, x, "features", target=[0, 1, 2])
    plus = camlib.grad_cam_plus(gap, x, "features", target=[0, 1, 2])
    w = gap.fc.weight.detach()[pp.target]
    a_bar = pp.activations.mean(dim=(2, 3))
    assert close(pp.weights, torch.relu(w) / (2 + a_bar * w))
    assert close(plus.weights * 64, torch.relu(w))  # 6c: sum_ij ReLU(g) = ReLU(w_k)


def test_2h_official_variant_on_gap_is_grad_cam_plus(gap, x):
    off = camlib.grad_cam_pp(gap, x, "features", target=[3, 1, 0], variant="official")
    plus = camlib.grad_cam_plus(gap, x, "features", target=[3, 1, 0])
    w = gap.fc.weight.detach()[off.target]
    assert close(off.weights, torch.relu(w) / 64)
    assert close(off.weights, plus.weights)
    assert off.method == "grad_cam_pp" and off.extras["variant"] == "official"


def test_official_variant_formula_on_a_deep_head(x):
    model = deep_head_net(seed=6)
    paper = camlib.grad_cam_pp(model, x, "features")
    off = camlib.grad_cam_pp(model, x, "features", variant="official")
    pos = paper.gradients > 0
    norm = (paper.extras["alpha"] * pos).sum(dim=(2, 3))
    norm = torch.where(norm == 0, torch.ones_like(norm), norm)
    assert close(off.weights, paper.weights / norm)
    # not a global rescaling of the paper map in general (docs/math.md (6.5))
    ratio = off.weights[paper.weights > 0] / paper.weights[paper.weights > 0]
    assert float(ratio.max() - ratio.min()) > 1e-3


def test_6d_grad_cam_weight_is_uniform_shift_sensitivity_over_Z(x):
    model = deep_head_net(seed=7)
    r = camlib.grad_cam(model, x, "features", target=1)
    a = model.features(x).detach()
    head = head_of(model)
    eps = 1e-6
    for k in range(a.shape[1]):
        shift = torch.zeros_like(a)
        shift[:, k] = eps
        fd = (head(a + shift)[:, 1] - head(a - shift)[:, 1]).detach() / (2 * eps)
        assert close(r.weights[:, k], fd / 64, 1e-6)


def test_6e_counterfactual_is_relu_of_minus_grad_cam(x):
    model = deep_head_net(seed=8)
    g = camlib.grad_cam(model, x, "features")
    cf = camlib.counterfactual(model, x, "features", target=g.target)
    assert torch.equal(cf.map, torch.relu(-g.raw))
    assert torch.equal(cf.weights, -g.weights)


def test_grad_cam_pp_zero_gradient_gives_zero_alpha_not_nan(gap, x):
    # target whose fc row has zeros: gradients exactly 0 in those channels
    model = gap_net(seed=0)
    with torch.no_grad():
        model.fc.weight[0, :3] = 0
    r = camlib.grad_cam_pp(model, x, "features", target=0)
    assert torch.all(r.extras["alpha"][:, :3] == 0)
    assert torch.all(r.weights[:, :3] == 0)
    assert torch.isfinite(r.weights).all()


# --------------------------------------------------------------------------- 3a-3f XGrad-CAM


def test_3a_euler_identity_with_biases(x):
    model = deep_head_net(seed=9)
    a = model.features(x).detach().requires_grad_(True)
    biases = [model.head[0].bias, model.fc.bias]
    y = head_of(model)(a)
    t = torch.tensor([0, 1, 2])
    s = y.gather(1, t[:, None]).squeeze(1)
    for n in range(3):
        grads = torch.autograd.grad(s[n], [a, *biases], retain_graph=True)
        euler = (a * grads[0]).sum() + sum((b * gb).sum() for b, gb in zip(biases, grads[1:]))
        assert close(euler.detach(), s[n].detach())


def test_3c_xgrad_weight_times_channel_sum(x):
    model = deep_head_net(seed=10)
    r = camlib.xgrad_cam(model, x, "features")
    s = r.activations.sum(dim=(2, 3))
    assert close(r.weights * s, (r.activations * r.gradients).sum(dim=(2, 3)))
    assert torch.all(r.weights[s == 0] == 0)


def test_3d_conservation_exact_for_bias_free_head(x):
    model = deep_head_net(seed=11, bias=False)
    r = camlib.xgrad_cam(model, x, "features")
    assert close(r.raw.sum(dim=(1, 2)), r.score)
    # with biases the residual is the bias term (3a), so not equal in general
    biased = camlib.xgrad_cam(deep_head_net(seed=11), x, "features")
    assert not close(biased.raw.sum(dim=(1, 2)), biased.score, 1e-6)


def test_3e_xgrad_equals_grad_cam_on_gap(gap, x):
    xg = camlib.xgrad_cam(gap, x, "features")
    g = camlib.grad_cam(gap, x, "features")
    alive = xg.activations.sum(dim=(2, 3)) > 0
    assert close(xg.weights[alive], g.weights[alive])


def test_3f_sensitivity_axiom_exact_on_gap(gap, x):
    r = camlib.xgrad_cam(gap, x, "features", target=2)
    a = r.activations
    s_full = gap.fc(gap.pool(a))[:, 2]
    for k in range(a.shape[1]):
        a_k = a.clone()
        a_k[:, k] = 0
        drop = (s_full - gap.fc(gap.pool(a_k))[:, 2]).detach()
        assert close(drop, r.weights[:, k] * a[:, k].sum(dim=(1, 2)))
