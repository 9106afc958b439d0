"""camlib.metrics on cases whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from camlib import metrics
from camlib.results import Attribution, CamResult



# ------------------------------------------------------------------ helpers and tiny models


def one_hot_maps(n: int, h: int, w: int, points: list[tuple[int, int]]) -> torch.Tensor:
    maps = torch.zeros(n, h, w)
    for i, (r, c) in enumerate(points):
        maps[i, r, c] = 1.0
    return maps


def box_masks(n: int, h: int, w: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    r0, r1, c0, c1 = box
    masks[:, r0:r1, c0:c1] = True
    return masks


class ConstantNet(nn.Module):
    """Ignores its input: logits are a fixed vector for every image."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1).to(x.dtype)


class PixelSumNet(nn.Module):
    """Class 0 logit = sum_p w_p * sum_c x[c, p]; class 1 logit = 0."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x):
        y0 = (x.sum(1) * self.w).flatten(1).sum(1)
        return torch.stack([y0, torch.zeros_like(y0)], dim=1)


class TinyGAP(nn.Module):
    """conv -> ReLU -> conv -> ReLU (= features) -> mean GAP -> linear."""

    def __init__(self, k: int = 4, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, k, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def hand_grad_cam(model: TinyGAP, x: torch.Tensor, target=None) -> CamResult:
    """Grad-CAM computed in the test itself, so the metric tests need no camlib method."""
    a = model.features(x).detach().requires_grad_(True)
    out = model.fc(a.mean(dim=(2, 3)))
    t = out.argmax(1) if target is None else torch.as_tensor(target).long().expand(x.shape[0])
    y = out.gather(1, t[:, None])[:, 0]
    (g,) = torch.autograd.grad(y.sum(), a)
    w = g.mean(dim=(2, 3))
    raw = (w[:, :, None, None] * a).sum(1).detach()
    return CamResult(a.detach(), g, w, raw, raw.clamp_min(0), t, y.detach(), "grad_cam")


# ------------------------------------------------------------------ to_map


def test_to_map_accepts_every_camlib_result_and_tensor_shapes():
    maps = torch.rand(2, 4, 4)
    res = CamResult(torch.rand(2, 3, 4, 4), None, torch.rand(2, 3), maps - 0.5, (maps - 0.5).clamp_min(0),
                    torch.zeros(2, dtype=torch.long), torch.zeros(2), "cam")
    assert torch.equal(metrics.to_map(res), res.map)
    vals = torch.randn(2, 3, 8, 8)
    att = Attribution(vals, torch.zeros(2, dtype=torch.long), torch.zeros(2))
    assert torch.allclose(metrics.to_map(att), vals.sum(1))
    assert torch.allclose(metrics.to_map(vals), vals.sum(1))
    assert metrics.to_map(torch.rand(5, 6)).shape == (1, 5, 6)
    assert metrics.to_map(res, (16, 16)).shape == (2, 16, 16)
    with pytest.raises(TypeError, match="CamResult"):
        metrics.to_map([1, 2, 3])
    with pytest.raises(ValueError):
        metrics.to_map(torch.rand(2))


# ------------------------------------------------------------------ pointing game


def test_pointing_game_one_hot_inside_gives_1_outside_gives_0():
    masks = box_masks(2, 8, 8, (2, 5, 2, 5))
    maps = one_hot_maps(2, 8, 8, [(3, 3), (7, 0)])
    r = metrics.pointing_game(maps, masks)
    assert r.values.tolist() == [1.0, 0.0]
    assert r.mean == 0.5
    for ties in ("share", "any", "all", "first"):
        assert metrics.pointing_game(maps, masks, ties=ties).values.tolist() == [1.0, 0.0]


def test_pointing_game_tie_rules_and_constant_and_empty():
    masks = box_masks(1, 4, 4, (0, 2, 0, 4))  # top half: 8 of 16 pixels
    two = torch.zeros(1, 4, 4)
    two[0, 3, 3] = two[0, 0, 1] = 1.0  # one maximum outside (raster-later), one inside (earlier)
    assert metrics.pointing_game(two, masks, ties="share").values.item() == 0.5
    assert metrics.pointing_game(two, masks, ties="any").values.item() == 1.0
    assert metrics.pointing_game(two, masks, ties="all").values.item() == 0.0
    assert metrics.pointing_game(two, masks, ties="first").values.item() == 1.0
    const = torch.full((1, 4, 4), 0.3)
    assert metrics.pointing_game(const, masks).values.item() == 0.5  # chance = area fraction
    empty = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert metrics.pointing_game(two, empty).values.item() == 0.0
    with pytest.raises(ValueError, match="ties"):
        metrics.pointing_game(two, masks, ties="random")


def test_pointing_game_tolerance_dilates_the_mask():
    masks = box_masks(1, 12, 12, (4, 8, 4, 8))
    maps = one_hot_maps(1, 12, 12, [(4, 9)])  # two columns right of the box (cols 4..7)
    assert metrics.pointing_game(maps, masks).values.item() == 0.0
    assert metrics.pointing_game(maps, masks, tolerance=1).values.item() == 0.0
    assert metrics.pointing_game(maps, masks, tolerance=2).values.item() == 1.0


def test_pointing_game_upsamples_a_coarse_cam_result():
    coarse = one_hot_maps(1, 4, 4, [(1, 2)])  # cell (1, 2) covers rows 4..7, cols 8..11 at 16x16
    res = CamResult(torch.rand(1, 2, 4, 4), None, torch.rand(1, 2), coarse, coarse,
                    torch.zeros(1, dtype=torch.long), torch.zeros(1), "cam")
    inside = box_masks(1, 16, 16, (4, 8, 8, 12))
    outside = box_masks(1, 16, 16, (0, 4, 0, 4))
    assert metrics.pointing_game(res, inside).values.item() == 1.0
    assert metrics.pointing_game(res, outside).values.item() == 0.0


def test_pointing_game_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="one mask per"):
        metrics.pointing_game(torch.rand(2, 4, 4), torch.ones(3, 4, 4, dtype=torch.bool))


# ------------------------------------------------------------------ energy and IoU


def test_energy_inside_known_values():
    masks = box_masks(1, 4, 4, (0, 1, 0, 4))  # 4 of 16 pixels
    assert metrics.energy_inside(masks.float(), masks).values.item() == 1.0
    assert metrics.energy_inside((~masks).float(), masks).values.item() == 0.0
    assert metrics.energy_inside(torch.full((1, 4, 4), 2.0), masks).values.item() == pytest.approx(0.25)
    assert metrics.energy_inside(torch.zeros(1, 4, 4), masks).values.item() == 0.0
    assert metrics.energy_inside(-torch.ones(1, 4, 4), masks).values.item() == 0.0
    signed = masks.float() * 3 - (~masks).float() * 5  # negatives outside are ignored
    assert metrics.energy_inside(signed, masks).values.item() == 1.0
    assert metrics.energy_inside(torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool)).values.item() == 0.0
    # 3 units inside, 1 outside
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0], m[0, 3, 3] = 3.0, 1.0
    assert metrics.energy_inside(m, masks).values.item() == pytest.approx(0.75)


def test_iou_map_equal_to_mask_gives_1_and_known_overlaps():
    masks = box_masks(3, 8, 8, (1, 5, 2, 6))
    assert metrics.iou(masks.float(), masks).values.tolist() == [1.0, 1.0, 1.0]
    assert metrics.iou(7.5 * masks.float(), masks).values.tolist() == [1.0, 1.0, 1.0]
    assert metrics.iou((~masks).float(), masks).values.tolist() == [0.0, 0.0, 0.0]
    region = torch.zeros(1, 8, 8)
    region[0, 0:2, 2:6] = 1.0  # 8 pixels, 4 of them inside the 16-pixel box
    assert metrics.iou(region, masks[:1]).values.item() == pytest.approx(4 / 20)
    # threshold: a ramp above 20 % of its maximum
    ramp = torch.arange(10.0).view(1, 1, 10)
    mask = torch.zeros(1, 1, 10, dtype=torch.bool)
    mask[..., 2:] = True
    assert metrics.iou(ramp, mask, threshold=0.2).values.item() == pytest.approx(1.0)  # > 1.8 -> 2..9
    assert metrics.iou(ramp, mask, threshold=0.5).values.item() == pytest.approx(5 / 8)  # > 4.5
    assert metrics.iou(torch.zeros(1, 8, 8), masks[:1]).values.item() == 0.0
    assert metrics.iou(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8, dtype=torch.bool)).values.item() == 0.0
    with pytest.raises(ValueError, match="fraction"):
        metrics.iou(region, masks[:1], threshold=1.5)


def test_localisation_accepts_attribution():
    masks = box_masks(1, 8, 8, (0, 4, 0, 4))
    vals = torch.zeros(1, 3, 8, 8)
    vals[0, :, 1, 1] = 1.0
    att = Attribution(vals, torch.zeros(1, dtype=torch.long), torch.zeros(1), None, "saliency")
    assert metrics.pointing_game(att, masks).values.item() == 1.0
    assert metrics.energy_inside(att, masks).values.item() == 1.0


# ------------------------------------------------------------------ AUC, deletion, insertion


@pytest.mark.parametrize("length", [2, 3, 17, 65])
def test_auc_constant_curve_p_gives_p_and_matches_rise_formula(length):
    p = 0.3721
    assert metrics.auc(torch.full((length,), p, dtype=torch.float64)).item() == pytest.approx(p, abs=1e-12)
    arr = np.random.default_rng(length).random(length)
    rise = (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (len(arr) - 1)
    assert metrics.auc(torch.from_numpy(arr)).item() == pytest.approx(rise, abs=1e-12)
    line = torch.linspace(1.0, 0.0, length, dtype=torch.float64)
    assert metrics.auc(line).item() == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError):
        metrics.auc(torch.ones(1))


def test_deletion_and_insertion_of_a_constant_model_give_auc_p():
    logits = torch.tensor([1.0, 0.2, -0.5])
    p = torch.softmax(logits, 0)[0].item()
    model = ConstantNet(logits)
    x = torch.rand(3, 3, 8, 8)
    maps = torch.rand(3, 8, 8)
    for fn in (metrics.deletion, metrics.insertion):
        r = fn(model, x, maps, target=0, steps=16)
        assert r.extras["curves"].shape == (3, 17)
        assert torch.allclose(r.values, torch.full((3,), p), atol=1e-6)
    r = metrics.deletion(model, x, maps, target=0, steps=16, score="logit")
    assert torch.allclose(r.values, torch.ones(3))


def test_deletion_curve_of_a_linear_model_is_the_sorted_cumulative_sum():
    torch.manual_seed(0)
    h = w = 6
    weights = torch.randn(h, w, dtype=torch.float64)
    model = PixelSumNet(weights)
    x = torch.ones(1, 2, h, w, dtype=torch.float64)  # each location contributes 2 * w_p
    steps = h * w  # one pixel per step
    r = metrics.deletion(model, x, weights[None], target=0, steps=steps, substrate=0.0, score="logit")
    contrib = 2 * weights.flatten().sort(descending=True).values
    expected = torch.cat([contrib.sum()[None], contrib.sum() - contrib.cumsum(0)])
    assert torch.allclose(r.extras["curves"][0], expected, atol=1e-10)
    assert r.values.item() == pytest.approx(metrics.auc(expected).item(), abs=1e-10)
    ins = metrics.insertion(model, x, weights[None], target=0, steps=steps, substrate=0.0, score="logit")
    assert torch.allclose(ins.extras["curves"][0], torch.cat([torch.zeros(1, dtype=torch.float64), contrib.cumsum(0)]), atol=1e-10)
    # the best ordering deletes fastest: a reversed map has a larger deletion AUC
    worse = metrics.deletion(model, x, -weights[None], target=0, steps=steps, substrate=0.0, score="logit")
    assert worse.values.item() > r.values.item()
    # a coarser grid: step k removes round(k*36/4) pixels
    r4 = metrics.deletion(model, x, weights[None], target=0, steps=4, substrate=0.0, score="logit")
    assert torch.allclose(r4.extras["curves"][0], expected[[0, 9, 18, 27, 36]], atol=1e-10)
    assert r4.extras["fractions"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_deletion_ties_are_broken_by_seed_deterministically():
    torch.manual_seed(1)
    model = PixelSumNet(torch.randn(6, 6))
    x = torch.rand(2, 3, 6, 6)
    flat = torch.zeros(2, 6, 6)  # every pixel tied
    a = metrics.deletion(model, x, flat, target=0, steps=6, score="logit", seed=3)
    b = metrics.deletion(model, x, flat, target=0, steps=6, score="logit", seed=3)
    c = metrics.deletion(model, x, flat, target=0, steps=6, score="logit", seed=4)
    assert torch.equal(a.extras["curves"], b.extras["curves"])
    assert not torch.equal(a.extras["curves"], c.extras["curves"])
    assert torch.isfinite(a.values).all()


def test_deletion_target_defaults_to_the_explanations_target():
    model = ConstantNet(torch.tensor([2.0, 0.0]))
    x = torch.rand(1, 3, 4, 4)
    att = Attribution(torch.rand(1, 3, 4, 4), torch.tensor([1]), torch.zeros(1))
    r = metrics.deletion(model, x, att, steps=2)
    assert r.extras["target"].tolist() == [1]
    assert r.values.item() == pytest.approx(torch.softmax(torch.tensor([2.0, 0.0]), 0)[1].item(), abs=1e-6)
    with pytest.raises(ValueError, match="score"):
        metrics.deletion(model, x, att, steps=2, score="prob")
    with pytest.raises(ValueError, match="substrate"):
        metrics.deletion(model, x, att, steps=2, substrate="noise")


def test_blur_keeps_constants_and_shape():
    x = torch.full((2, 3, 20, 20), 0.25)
    assert torch.allclose(metrics.blur(x), x, atol=1e-6)
    y = metrics.blur(torch.rand(2, 3, 20, 20))
    assert y.shape == (2, 3, 20, 20)
    small = metrics.blur(torch.rand(1, 1, 4, 4))  # smaller than the kernel: replicate padding
    assert small.shape == (1, 1, 4, 4)


# ------------------------------------------------------------------ average drop / increase


def test_average_drop_and_increase_known_values():
    torch.manual_seed(0)
    w = torch.rand(4, 4) + 0.1
    model = PixelSumNet(w)
    x = torch.rand(3, 1, 4, 4)
    ones = torch.ones(3, 4, 4)  # keeps the whole image: O = Y
    assert torch.allclose(metrics.average_drop(model, x, ones).values, torch.zeros(3))
    assert metrics.increase_in_confidence(model, x, ones).mean == 0.0
    zero = torch.zeros(3, 4, 4)  # keeps nothing: masked image = 0, logits (0, 0), p = 1/2
    logits = model(x)
    y = torch.softmax(logits, 1).gather(1, logits.argmax(1, keepdim=True))[:, 0]
    expected = 100 * (y - 0.5).clamp_min(0) / y
    r = metrics.average_drop(model, x, zero)
    assert torch.allclose(r.values, expected, atol=1e-5)
    assert torch.allclose(metrics.average_drop(model, x, zero, relative=False).values, (y - 0.5).clamp_min(0), atol=1e-6)
    # half-scaled map: masked image = x / 2 after max-normalisation of a constant 0.5 map
    half = metrics.average_drop(model, x, torch.full((3, 4, 4), 0.5))
    assert torch.allclose(half.values, torch.zeros(3))


def test_increase_in_confidence_counts_images_whose_score_rises():
    model = PixelSumNet(-torch.ones(4, 4))  # class 0 logit = -sum(x): removing pixels raises it
    x = torch.rand(4, 1, 4, 4) + 0.1
    r = metrics.increase_in_confidence(model, x, torch.zeros(4, 4, 4), target=0)
    assert r.values.tolist() == [100.0] * 4
    with pytest.raises(ValueError, match="relative=False"):
        metrics.average_drop(model, x, torch.zeros(4, 4, 4), target=0, score="logit")


# ------------------------------------------------------------------ Spearman and randomisation


def test_spearman_matches_scipy_with_ties_and_constant_conventions():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(4, 6, 6)).astype(float)  # many ties
    b = a + rng.normal(size=a.shape)
    ours = metrics.spearman(torch.from_numpy(a), torch.from_numpy(b))
    ref = [spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(4)]
    assert np.allclose(ours.numpy(), ref, atol=1e-12)
    t = torch.rand(1, 5, 5)
    assert metrics.spearman(t, t).item() == pytest.approx(1.0)
    assert metrics.spearman(t, -t).item() == pytest.approx(-1.0)
    assert metrics.spearman(t, t ** 3 + 2).item() == pytest.approx(1.0)  # ranks only
    zero = torch.zeros(1, 5, 5)
    assert metrics.spearman(zero, zero + 1).item() == 1.0
    assert metrics.spearman(zero, t).item() == 0.0


def test_randomizing_nothing_gives_similarity_1():
    torch.manual_seed(0)
    model = TinyGAP().eval()
    x = torch.rand(3, 3, 8, 8)
    r = metrics.randomization_test(hand_grad_cam, model, x, layers=[])
    assert r.steps == ["none"]
    assert r.spearman.tolist() == [[1.0, 1.0, 1.0]]
    assert r.spearman_abs.tolist() == [[1.0, 1.0, 1.0]]


def test_randomization_cascade_is_top_down_deterministic_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = TinyGAP().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 3, 8, 8)
    rng_state = torch.get_rng_state()
    r = metrics.randomization_test(hand_grad_cam, model, x, seed=5)
    assert torch.equal(torch.get_rng_state(), rng_state)  # global RNG untouched
    assert r.steps == ["none", "fc", "features.2", "features.0"]
    assert r.spearman.shape == (4, 4) and len(r.maps) == 4
    assert torch.all(r.spearman[0] == 1.0)
    assert torch.all(r.spearman[1:].abs() < 1.0)  # the maps change once the fc is re-initialised
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = metrics.randomization_test(hand_grad_cam, model, x, seed=5)
    assert torch.equal(r.spearman, again.spearman)
    other = metrics.randomization_test(hand_grad_cam, model, x, seed=6)
    assert not torch.equal(r.spearman, other.spearman)
    assert r.mean.shape == (4,) and r.mean_abs.shape == (4,)


def test_randomizing_the_fc_changes_grad_cam_by_the_closed_form():
    # GAP -> linear head: after re-initialising fc with W', Grad-CAM = sum_k W'_ck A^k / Z (docs/math.md (10.12))
    torch.manual_seed(0)
    model = TinyGAP().eval()
    x = torch.rand(2, 3, 8, 8)
    r = metrics.randomization_test(hand_grad_cam, model, x, target=1, layers=["fc"], seed=11)
    fresh = TinyGAP()
    fresh.load_state_dict(model.state_dict())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        fresh.fc.reset_parameters()
    a = model.features(x).detach()
    expected = (fresh.fc.weight[1][None, :, None, None] * a).sum(1) / 64
    assert torch.allclose(r.maps[1], expected.clamp_min(0), atol=1e-6)
    assert r.target.tolist() == [1, 1]


def test_randomization_accepts_a_layer_module_of_the_callers_model():
    import camlib

    torch.manual_seed(0)
    model = TinyGAP().eval()
    x = torch.rand(2, 3, 8, 8)
    by_module = metrics.randomization_test(camlib.grad_cam, model, x, layer=model.features, layers=["fc"])
    by_name = metrics.randomization_test(camlib.grad_cam, model, x, layer="features", layers=["fc"])
    assert torch.equal(by_module.spearman, by_name.spearman)
    assert torch.allclose(by_name.maps[0], hand_grad_cam(model, x).map, atol=1e-6)
    with pytest.raises(ValueError, match="not a submodule"):
        metrics.randomization_test(camlib.grad_cam, model, x, layer="features", layers=["head"])


def test_by_class_averages_within_classes():
    v = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert metrics.by_class(v, torch.tensor([0, 0, 1, 1])) == {0: 0.5, 1: 1.0}


# ------------------------------------------------------------------ properties


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_localisation_metrics_are_invariant_to_positive_scaling(seed, scale):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(3, 5, 5, generator=g, dtype=torch.float64) - 0.3
    masks = torch.rand(3, 10, 10, generator=g) > 0.6
    for fn in (metrics.pointing_game, metrics.energy_inside, metrics.iou):
        a, b = fn(maps, masks).values, fn(scale * maps, masks).values
        assert torch.allclose(a, b, atol=1e-12)
        assert torch.all((a >= 0) & (a <= 1))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_probability_auc_lies_in_0_1_and_is_finite(seed):
    g = torch.Generator().manual_seed(seed)
    model = PixelSumNet(torch.randn(5, 5, generator=g))
    x = torch.rand(2, 3, 5, 5, generator=g)
    maps = torch.randn(2, 5, 5, generator=g)
    for fn in (metrics.deletion, metrics.insertion):
        v = fn(model, x, maps, steps=5).values
        assert torch.all(torch.isfinite(v)) and torch.all((v >= 0) & (v <= 1))
