"""SmoothGrad, SmoothGrad-squared and VarGrad (camlib.smoothgrad; docs/math.md §11, 11.19-11.21).

Exact facts on linear models, the statistics of one ReLU, the reductions against explicitly
drawn samples, and Captum's NoiseTunnel on the same noise.
"""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import InputXGradient, NoiseTunnel, Saliency
from torch import nn

import camlib
from tiny_nets import gap_net, images, linear_net

DTYPE = torch.float64
pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients:UserWarning")


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-12) -> bool:
    return bool((a - b).abs().max() <= tol * (1 + b.abs().max()))


@pytest.fixture(scope="module")
def gap():
    return gap_net(seed=0)


@pytest.fixture(scope="module")
def x():
    return images(n=3, size=8, seed=1)


def _draws(x: torch.Tensor, noise_level: float, samples: int, seed: int) -> torch.Tensor:
    """The documented noise protocol: draw s is randn(x.shape) from a generator seeded with seed,
    scaled per image by noise_level * (max - min)."""
    gen = torch.Generator().manual_seed(seed)
    sigma = noise_level * (x.flatten(1).amax(dim=1) - x.flatten(1).amin(dim=1))
    return torch.stack([x + torch.randn(x.shape, generator=gen, dtype=x.dtype) * sigma.view(-1, 1, 1, 1)
                        for _ in range(samples)])


def test_11_19_linear_model():
    model = linear_net(seed=0)
    x = torch.randn(2, 2, 5, 5, dtype=DTYPE)
    w = model.fc.weight.detach()[2].view(1, 2, 5, 5).expand(2, -1, -1, -1)
    for level in (0.05, 0.5, 3.0):
        kw = dict(target=2, noise_level=level, samples=9, absolute=False)
        assert close(camlib.smooth_grad(model, x, camlib.saliency, **kw).values, w, 1e-13)
        assert close(camlib.smooth_grad(model, x, camlib.saliency, variant="squared", **kw).values, w * w, 1e-13)
        assert camlib.smooth_grad(model, x, camlib.saliency, variant="vargrad", **kw).values.abs().max() <= 1e-13


class OneRelu(nn.Module):
    """``f(x) = ReLU(x_1)``; the second input element only widens the range to 1."""

    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(x.flatten(1)[:, :1])


def test_11_20_one_relu_statistics():
    x = torch.tensor([0.3, 1.3], dtype=DTYPE).view(1, 1, 1, 2)  # range 1: sigma = noise_level
    n, sigma = 20000, 0.5
    kw = dict(noise_level=sigma, samples=n, batch_size=n, absolute=False, seed=3)
    sg = camlib.smooth_grad(OneRelu(), x, camlib.saliency, **kw).values[0, 0, 0, 0]
    vg = camlib.smooth_grad(OneRelu(), x, camlib.saliency, variant="vargrad", **kw).values[0, 0, 0, 0]
    phi = 0.5 * (1 + math.erf(0.3 / sigma / math.sqrt(2)))
    tol = 5 * 0.5 / math.sqrt(n)
    print(f"SG {float(sg):.4f} vs Phi {phi:.4f}; VarGrad {float(vg):.4f} vs {phi * (1 - phi):.4f}")
    assert abs(float(sg) - phi) < tol and abs(float(vg) - phi * (1 - phi)) < tol


def test_11_21_zero_noise_seed_and_batching(gap, x):
    plain = camlib.saliency(gap, x, target=1)
    zero = camlib.smooth_grad(gap, x, camlib.saliency, target=1, noise_level=0.0, samples=4)
    assert close(zero.values, plain.values)
    zero_var = camlib.smooth_grad(gap, x, camlib.saliency, target=1, noise_level=0.0, variant="vargrad").values
    assert zero_var.abs().max() <= 1e-24
    state = torch.random.get_rng_state()
    a = camlib.smooth_grad(gap, x, camlib.saliency, samples=6, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    for batch_size in (1, 5, 100):
        b = camlib.smooth_grad(gap, x, camlib.saliency, samples=6, seed=4, batch_size=batch_size)
        assert close(b.values, a.values)
    assert not torch.equal(camlib.smooth_grad(gap, x, camlib.saliency, samples=6, seed=5).values, a.values)


@pytest.mark.parametrize("variant", ["smoothgrad", "squared", "vargrad"])
def test_reductions_equal_the_explicit_samples(gap, x, variant):
    draws = _draws(x, 0.2, 7, seed=11)
    target = camlib.saliency(gap, x).target
    values = torch.stack([camlib.gradient_x_input(gap, d, target=target).values for d in draws])
    expected = {"smoothgrad": values.mean(0), "squared": (values ** 2).mean(0),
                "vargrad": values.var(0, unbiased=False)}[variant]
    res = camlib.smooth_grad(gap, x, camlib.gradient_x_input, variant=variant, noise_level=0.2, samples=7,
                             seed=11, batch_size=4)
    assert close(res.values, expected)
    assert torch.equal(res.target, target) and res.method == "smooth_grad"
    assert res.extras["explainer"] == "gradient_x_input" and res.extras["variant"] == variant
    assert close(res.extras["sigma"], 0.2 * (x.flatten(1).amax(1) - x.flatten(1).amin(1)))
    assert close(res.score, camlib.saliency(gap, x, target=target).score)


@pytest.mark.parametrize("nt_type, variant", [("smoothgrad", "smoothgrad"), ("smoothgrad_sq", "squared"),
                                              ("vargrad", "vargrad")])
@pytest.mark.parametrize("explainer, captum_cls", [(camlib.saliency, Saliency), (camlib.gradient_x_input, InputXGradient)],
                         ids=["saliency", "gradient_x_input"])
def test_peer_captum_noise_tunnel_same_noise(gap, x, nt_type, variant, explainer, captum_cls):
    """Captum's NoiseTunnel draws its noise from the global random state with an absolute
    stdev; given the same noisy copies, its reductions are camlib's (its Saliency takes |grad| by
    default, as camlib.saliency does; gradient x input multiplies by the noisy input)."""
    t = torch.tensor([0, 3, 1])
    stdev, samples = 0.3, 5
    torch.manual_seed(123)
    theirs = NoiseTunnel(captum_cls(gap)).attribute(x, nt_type=nt_type, nt_samples=samples, stdevs=stdev, target=t)
    torch.manual_seed(123)
    expanded = (x.shape[0] * samples, *x.shape[1:])
    noisy = x.repeat_interleave(samples, dim=0) + torch.normal(0, torch.full(expanded, stdev))  # float32, as Captum draws
    values = explainer(gap, noisy, target=t.repeat_interleave(samples)).values.view(3, samples, *x.shape[1:])
    ours = {"smoothgrad": values.mean(1), "squared": (values ** 2).mean(1), "vargrad": values.var(1, unbiased=False)}
    assert close(theirs, ours[variant])


def test_noise_is_relative_to_each_images_range(gap):
    x = images(n=2, size=8, seed=2)
    x[1] *= 10.0  # the second image spans a ten times larger range
    res = camlib.smooth_grad(gap, x, camlib.saliency, samples=2)
    span = x.flatten(1).amax(1) - x.flatten(1).amin(1)
    assert close(res.extras["sigma"], 0.15 * span) and close(res.extras["sigma"][1] / res.extras["sigma"][0],
                                                             span[1] / span[0])


def test_wraps_other_explainers_and_passes_options(gap, x):
    ig = camlib.smooth_grad(gap, x, camlib.integrated_gradients, samples=2, steps=8, rule="midpoint")
    gbp = camlib.smooth_grad(gap, x, camlib.guided_backprop, samples=2)
    ggc = camlib.smooth_grad(gap, x, camlib.guided_grad_cam, layer="features", noise_level=0.0, samples=2)
    assert close(ggc.values, camlib.guided_grad_cam(gap, x, "features").values)
    assert ig.values.shape == x.shape and gbp.extras["explainer"] == "guided_backprop"
    signed = camlib.smooth_grad(gap, x, camlib.saliency, samples=3, noise_level=0.0, absolute=False)
    assert close(signed.values, camlib.saliency(gap, x, absolute=False).values)
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    assert 0.0 <= camlib.metrics.pointing_game(ig, masks).mean <= 1.0


def test_errors_and_state(gap, x):
    with pytest.raises(TypeError, match="takes a layer"):
        camlib.smooth_grad(gap, x, camlib.grad_cam)
    with pytest.raises(TypeError, match="returned CamResult"):
        camlib.smooth_grad(gap, x, camlib.grad_cam, layer="features", samples=2)
    with pytest.raises(TypeError, match="pixel attributions"):
        camlib.smooth_grad(gap, x, "saliency")
    with pytest.raises(ValueError, match="variant"):
        camlib.smooth_grad(gap, x, camlib.saliency, variant="var")
    with pytest.raises(ValueError, match="noise_level"):
        camlib.smooth_grad(gap, x, camlib.saliency, noise_level=-0.1)
    with pytest.raises(ValueError, match="samples"):
        camlib.smooth_grad(gap, x, camlib.saliency, samples=0)
    with pytest.raises(TypeError, match="returned CamResult"):
        camlib.smooth_grad(gap, x, lambda model, x, target, score: camlib.grad_cam(model, x, "features"))
    gap.train()
    try:
        with torch.no_grad():
            res = camlib.smooth_grad(gap, x, camlib.saliency, samples=2)
        assert gap.training and torch.isfinite(res.values).all()
        with torch.inference_mode():
            inside = camlib.smooth_grad(gap, x, camlib.saliency, samples=2)
        assert not inside.values.is_inference() and close(inside.values, res.values)
    finally:
        gap.eval()


def test_every_new_method_runs_in_the_randomisation_test(gap, x):
    """camlib.metrics' sanity check calls method(model, x, target=..., **options) on a copy."""
    calls = [
        (camlib.guided_backprop, {}), (camlib.deconvnet, {}), (camlib.guided_grad_cam, {"layer": "features"}),
        (camlib.ablation_cam, {"layer": "features"}), (camlib.score_cam, {"layer": "features"}),
        (camlib.eigen_cam, {"layer": "features"}), (camlib.smooth_grad, {"explainer": camlib.saliency, "samples": 2}),
    ]
    for method, options in calls:
        result = camlib.metrics.randomization_test(method, gap, x, target=[0, 1, 2], layers=["fc"], **options)
        assert result.spearman.shape == (2, 3) and torch.isfinite(result.spearman).all(), method.__name__
