"""Property-based: no NaN or infinity from any method, on random small models and inputs.

Hypothesis draws networks with dead channels (all-zero activations, so sum A^k = 0 and
zero gradients), zero or constant inputs, zero weights, huge weights and sum or mean
pooling, and checks every output and its normalisation for finiteness, plus the exact
relations that must hold whatever the model.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import camlib
from tiny_nets import DeepHeadNet, GapNet


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 10_000))
    size = draw(st.integers(2, 6))
    k = draw(st.integers(1, 4))
    deep = draw(st.booleans()) and size % 2 == 0
    gen = torch.Generator().manual_seed(seed)
    if deep:
        model = DeepHeadNet(c_in=2, k=k, size=size, classes=3)
    else:
        model = GapNet(c_in=2, k=k, classes=3, pool=draw(st.sampled_from(["mean", "sum"])))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 50.0]))
    bias = draw(st.sampled_from([0.0, -100.0, 0.5]))  # -100 kills every ReLU: all-zero maps
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
            if name.endswith("bias") and name.startswith("features"):
                p.fill_(bias)
    model = model.double().eval()
    kind = draw(st.sampled_from(["random", "zeros", "constant"]))
    n = draw(st.integers(1, 3))
    if kind == "random":
        x = torch.randn(n, 2, size, size, generator=gen, dtype=torch.float64) * 3
    elif kind == "zeros":
        x = torch.zeros(n, 2, size, size, dtype=torch.float64)
    else:
        x = torch.full((n, 2, size, size), 0.7, dtype=torch.float64)
    target = draw(st.one_of(st.none(), st.integers(0, 2), st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return model, x, target, deep


def finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors if t is not None)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_nan_or_inf_anywhere(case):
    model, x, target, deep = case
    results = [
        camlib.grad_cam(model, x, "features", target=target),
        camlib.grad_cam_plus(model, x, "features", target=target),
        camlib.grad_cam_pp(model, x, "features", target=target),
        camlib.grad_cam_pp(model, x, "features", target=target, variant="official"),
        camlib.xgrad_cam(model, x, "features", target=target),
        camlib.counterfactual(model, x, "features", target=target),
        camlib.grad_cam(model, x, "features", target=target, score="softmax"),
    ]
    if not deep:
        results.append(camlib.cam(model, x, target=target))
    for r in results:
        assert finite(r.activations, r.gradients, r.weights, r.raw, r.map, r.score), r.method
        assert finite(camlib.normalize(r.map), camlib.normalize(r.raw, "max"))
        assert torch.equal(r.map, torch.relu(r.raw))
        assert torch.allclose(r.raw, camlib.channel_weighted_sum(r.weights, r.activations))
    pp = results[2]
    assert bool((pp.raw >= -1e-12).all())  # A >= 0 after the ReLU: Grad-CAM++ map is non-negative
    dead = pp.activations.sum(dim=(2, 3)) == 0
    assert bool((results[4].weights[dead] == 0).all())  # XGrad-CAM on a dead channel: 0, not NaN
    size = x.shape[-1]
    attributions = [
        camlib.saliency(model, x, target=target),
        camlib.gradient_x_input(model, x, target=target),
        camlib.integrated_gradients(model, x, target=target, steps=4, batch_size=5),
        camlib.occlusion(model, x, target=target, patch=min(2, size), stride=1),
    ]
    for a in attributions:
        assert a.values.shape == x.shape
        assert finite(a.values, a.score, a.delta, camlib.normalize(a.values))
