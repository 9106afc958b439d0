"""camlib.weight_rules: each channel-weight rule on numbers worked by hand, and the methods use them."""

from __future__ import annotations

import pytest
import torch

import camlib
from camlib import weight_rules as rules
from tiny_nets import deep_head_net, images

DT = torch.float64


def one_channel(a_values, g_values):
    """One image, one channel, the given activations and gradients on a 1 x Z row."""
    a = torch.tensor(a_values, dtype=DT).view(1, 1, 1, -1)
    return a, torch.tensor(g_values, dtype=DT).view(1, 1, 1, -1)


def test_rules_on_numbers_worked_by_hand():
    a, g = one_channel([1.0, 3.0, 0.0, 0.0], [0.5, -0.25, 0.0, 1.0])  # Z = 4, s = 4
    assert rules.grad_cam_weights(a, g).item() == pytest.approx((0.5 - 0.25 + 1.0) / 4)
    assert rules.grad_cam_plus_weights(a, g).item() == pytest.approx((0.5 + 1.0) / 4)
    assert rules.counterfactual_weights(a, g).item() == pytest.approx(-(0.5 - 0.25 + 1.0) / 4)
    assert rules.xgrad_cam_weights(a, g).item() == pytest.approx((1 * 0.5 + 3 * -0.25) / 4)
    w, alpha = rules.grad_cam_pp_weights(a, g)
    # alpha = 1 / (2 + s g) where g != 0: 1/4, 1/1, 0 (g = 0), 1/6
    assert alpha.flatten().tolist() == pytest.approx([1 / 4, 1.0, 0.0, 1 / 6])
    assert w.item() == pytest.approx(0.5 / 4 + 1.0 / 6)  # only positive gradients
    w_off, alpha_off = rules.grad_cam_pp_weights(a, g, variant="official")
    norm = 1 / 4 + 1 / 6  # alpha summed over the positive gradients
    assert alpha_off.flatten().tolist() == pytest.approx([1 / 4 / norm, 1.0 / norm, 0.0, 1 / 6 / norm])
    assert w_off.item() == pytest.approx((0.5 / 4 + 1.0 / 6) / norm)


def test_no_epsilon_and_no_nan_at_the_edges():
    a, g = one_channel([0.0, 0.0], [2.0, -1.0])  # a dead channel: s = 0
    assert rules.xgrad_cam_weights(a, g).item() == 0.0
    a, g = one_channel([-1.0, -1.0], [1.0, 0.5])  # signed activations: 2 + s g = 0 at the first position
    w, alpha = rules.grad_cam_pp_weights(a, g)
    assert alpha.flatten().tolist() == [0.0, 1.0] and w.item() == 0.5
    tiny = 1e-300
    a, g = one_channel([1.0, 1.0], [tiny, tiny])
    w, alpha = rules.grad_cam_pp_weights(a, g)
    assert alpha.flatten().tolist() == [0.5, 0.5] and w.item() == tiny  # no epsilon rescales it


@pytest.mark.parametrize("method, rule", [
    (camlib.grad_cam, rules.grad_cam_weights),
    (camlib.grad_cam_plus, rules.grad_cam_plus_weights),
    (camlib.xgrad_cam, rules.xgrad_cam_weights),
    (camlib.counterfactual, rules.counterfactual_weights),
    (camlib.grad_cam_pp, lambda a, g: rules.grad_cam_pp_weights(a, g)[0]),
])
def test_the_methods_use_the_rules(method, rule):
    r = method(deep_head_net(seed=3), images(n=2, size=8), "features", target=[1, 2])
    assert torch.equal(r.weights, rule(r.activations, r.gradients))
    assert torch.equal(r.raw, rules.channel_weighted_sum(r.weights, r.activations))


def test_channel_weighted_sum_takes_channel_and_element_wise_weights():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 4, 5, generator=gen, dtype=DT)
    w = torch.randn(2, 3, generator=gen, dtype=DT)
    elementwise = torch.randn(2, 3, 4, 5, generator=gen, dtype=DT)
    assert torch.allclose(rules.channel_weighted_sum(w, a), (w[:, :, None, None] * a).sum(1), rtol=0, atol=1e-14)
    assert torch.allclose(rules.channel_weighted_sum(w[:, :, None, None].expand_as(a), a),
                          rules.channel_weighted_sum(w, a), rtol=0, atol=1e-14)
    expected = torch.stack([sum(elementwise[n, k] * a[n, k] for k in range(3)) for n in range(2)])
    assert torch.allclose(rules.channel_weighted_sum(elementwise, a), expected, rtol=0, atol=1e-14)
    assert camlib.channel_weighted_sum is rules.channel_weighted_sum


@pytest.mark.parametrize("call, error, match", [
    (lambda: rules.grad_cam_weights(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3, 4)), ValueError, "same shape"),
    (lambda: rules.xgrad_cam_weights(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3, 3, dtype=DT)), TypeError, "same dtype"),
    (lambda: rules.grad_cam_plus_weights(torch.rand(2, 3, 3), torch.rand(2, 3, 3)), ValueError, "4-D"),
    (lambda: rules.grad_cam_weights([[1.0]], torch.rand(1, 1, 1, 1)), TypeError, "torch.Tensor"),
    (lambda: rules.grad_cam_pp_weights(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), variant="torchcam"),
     ValueError, "variant"),
    (lambda: rules.channel_weighted_sum(torch.rand(1, 2, 3, 4), torch.rand(1, 2, 3, 5)), ValueError, r"\(N, K, h, w\)"),
    (lambda: rules.channel_weighted_sum(torch.rand(1, 2, dtype=DT), torch.rand(1, 2, 3, 3)), TypeError, "same dtype"),
], ids=["shapes", "dtypes", "3-d", "list", "variant", "elementwise-shape", "weighted-sum-dtypes"])
def test_rules_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
