"""upsample and normalize: explicit, exact on known inputs, never NaN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import camlib


def test_normalize_minmax_and_max_per_sample():
    m = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[-2.0, 0.0], [1.0, 2.0]]])
    mm = camlib.normalize(m, "minmax")
    assert torch.allclose(mm[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert torch.allclose(mm[1], torch.tensor([[0.0, 0.5], [0.75, 1.0]]))
    mx = camlib.normalize(m, "max")
    assert torch.allclose(mx[0], m[0] / 5) and torch.allclose(mx[1], m[1] / 2)


def test_normalize_constant_and_zero_maps_give_zeros():
    for value in (0.0, 3.0, -1.0):
        m = torch.full((2, 4, 4), value)
        for kind in ("minmax", "max"):
            out = camlib.normalize(m, kind)
            if kind == "max" and value != 0:
                assert torch.allclose(out, torch.sign(m))  # a constant non-zero map / |max|
            else:
                assert torch.equal(out, torch.zeros_like(m))
    single = camlib.normalize(torch.ones(3, 3))
    assert single.shape == (3, 3) and torch.equal(single, torch.zeros(3, 3))


def test_normalize_does_not_mix_samples():
    a = torch.rand(1, 5, 5)
    b = torch.cat([a, 100 * torch.rand(1, 5, 5)])
    assert torch.allclose(camlib.normalize(b)[0], camlib.normalize(a)[0])


def test_normalize_4d_attributions_per_sample():
    v = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    out = camlib.normalize(v)
    assert out.shape == v.shape
    assert torch.allclose(out.amin(dim=(1, 2, 3)), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(2, dtype=torch.float64))


def test_upsample_matches_interpolate_and_shapes():
    m = torch.rand(2, 3, 4)
    up = camlib.upsample(m, (6, 8))
    ref = F.interpolate(m[:, None], size=(6, 8), mode="bilinear", align_corners=False)[:, 0]
    assert up.shape == (2, 6, 8) and torch.allclose(up, ref)
    assert camlib.upsample(m[0], 8).shape == (8, 8)
    assert camlib.upsample(torch.rand(2, 3, 4, 4), 8, mode="nearest").shape == (2, 3, 8, 8)
    # a constant map stays constant; nearest upsampling by 2 repeats pixels
    assert torch.allclose(camlib.upsample(torch.full((1, 3, 3), 2.0), 9), torch.full((1, 9, 9), 2.0))
    n = camlib.upsample(torch.arange(4.0).view(1, 2, 2), 4, mode="nearest")
    assert torch.equal(n[0], torch.arange(4.0).view(2, 2).repeat_interleave(2, 0).repeat_interleave(2, 1))


def test_postprocess_errors():
    with pytest.raises(ValueError, match="kind"):
        camlib.normalize(torch.rand(2, 3, 3), "zscore")
    with pytest.raises(ValueError, match="mode"):
        camlib.upsample(torch.rand(2, 3, 3), 6, mode="lanczos")
    with pytest.raises(TypeError):
        camlib.normalize([[1.0]])
    with pytest.raises(ValueError):
        camlib.upsample(torch.rand(3), 6)


def test_methods_do_not_normalise_behind_the_caller():
    from tiny_nets import gap_net, images

    model, x = gap_net(seed=0), images(n=2, size=8)
    r = camlib.grad_cam(model, x, "features")
    assert r.raw.shape == (2, 8, 8)  # layer resolution, not upsampled
    assert float(r.map.max()) != 1.0  # not normalised
