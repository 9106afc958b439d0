"""Measures validated before they rank: exact identities (math 10.15, 10.16, 10.22) and the known-answer
check on the course data (10.20): the object mask beats a random map, the centre prior and the inverted
mask on every measure camlib reports, and a measure that cannot tell them apart is flagged."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import camlib
from camlib import evaluation, metrics
from camlib.evaluation import check_measure, reference_maps, substrate_check
from tiny_nets import gap_net, images, linear_net

N_COURSE = 48  # held-out images for the known-answer checks: enough for intervals well clear of 0


# ----------------------------------------------------------------------------- exact identities


@pytest.mark.parametrize("substrate", ["mean", "blur", 0.3])
def test_deletion_plus_insertion_is_F_x_plus_F_b_for_an_affine_score(substrate):
    # 10.15: the two moved images add up to x + b, so an affine score adds up at every step
    model = linear_net(seed=2, shape=(3, 8, 8), classes=2)
    x = images(n=3, size=8, seed=4)
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    kw = {"target": 0, "steps": 8, "substrate": substrate, "score": "logit"}
    d = metrics.deletion(model, x, maps, **kw)
    i = metrics.insertion(model, x, maps, **kw)
    b = camlib.substrates.substrate_image(x, substrate)
    with torch.no_grad():
        total = model(x)[:, 0] + model(b)[:, 0]
    assert torch.allclose(d.extras["curves"] + i.extras["curves"], total[:, None].expand(3, 9), atol=1e-10)
    assert torch.allclose(d.values + i.values, total, atol=1e-10)


def test_lerf_is_morf_reversed_and_equals_insertion_read_backwards():
    # 10.16: least relevant first is the same ranking reversed, ties included
    model = gap_net(seed=3)
    x = images(n=4, size=8, seed=6)
    maps = torch.zeros(4, 8, 8, dtype=torch.float64)
    maps[:, 2:5, 3:6] = 1.0  # many ties
    for substrate in ("mean", "blur", "black", "road"):
        lerf = metrics.deletion(model, x, maps, target=1, steps=8, substrate=substrate, order="lerf", seed=2)
        ins = metrics.insertion(model, x, maps, target=1, steps=8, substrate=substrate, seed=2)
        assert torch.allclose(lerf.extras["curves"], ins.extras["curves"].flip(1), atol=1e-12), substrate
        assert torch.allclose(lerf.values, ins.values, atol=1e-12)


def test_lerf_curve_of_a_linear_score_is_the_increasing_cumulative_sum():
    h = w = 6
    weights = torch.randn(h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    class PixelSum(nn.Module):
        def forward(self, u):
            y = (u.sum(1) * weights).flatten(1).sum(1)
            return torch.stack([y, torch.zeros_like(y)], 1)

    x = torch.ones(1, 2, h, w, dtype=torch.float64)
    r = metrics.deletion(PixelSum(), x, weights[None], target=0, steps=h * w, substrate=0.0, score="logit", order="lerf")
    contrib = 2 * weights.flatten().sort().values  # least relevant first
    expected = torch.cat([contrib.sum()[None], contrib.sum() - contrib.cumsum(0)])
    assert torch.allclose(r.extras["curves"][0], expected, atol=1e-10)
    with pytest.raises(ValueError, match="order"):
        metrics.deletion(PixelSum(), x, weights[None], target=0, steps=2, order="random")


def test_class_agnostic_maps_have_cosine_1_and_no_discrimination():
    # 10.22: Eigen-CAM (and any map that ignores the class) has cosine 1 between every pair of classes
    model = gap_net(seed=1)
    x = images(n=3, size=8, seed=2)
    per_class = [camlib.eigen_cam(model, x, "features", target=c) for c in range(4)] if hasattr(camlib, "eigen_cam") \
        else [torch.ones(3, 8, 8) * (c + 1) for c in range(4)]
    disc = metrics.class_discrimination(per_class, None, [0, 1, 2])
    assert torch.allclose(disc.cosine.values, torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert disc.wrong_energy is None


def test_opposite_class_weights_give_cosine_minus_1_for_cam():
    # 10.22 on a mean-GAP linear head: W_1 = -W_0 gives CAM_1 = -CAM_0
    model = gap_net(seed=4)
    with torch.no_grad():
        model.fc.weight[1] = -model.fc.weight[0]
    x = images(n=2, size=8, seed=3)
    per_class = [camlib.cam(model, x, target=c) for c in (0, 1)]
    disc = metrics.class_discrimination(per_class, None, 0)
    assert torch.allclose(disc.cosines[:, 1], torch.full((2,), -1.0, dtype=torch.float64), atol=1e-12)


def test_non_negative_weights_on_a_relu_layer_give_non_negative_cosines():
    # 10.22 with (7.3): Grad-CAM++ weights are >= 0 and A >= 0, so every map is >= 0 and cosines >= 0
    model = gap_net(seed=5)
    x = images(n=4, size=8, seed=5)
    per_class = [camlib.grad_cam_pp(model, x, "features", target=c) for c in range(4)]
    disc = metrics.class_discrimination(per_class, None, [0, 1, 2, 3])
    assert bool((disc.cosines >= -1e-12).all())
    grad_cam = [camlib.grad_cam(model, x, "features", target=c) for c in range(4)]
    assert float(metrics.class_discrimination(grad_cam, None, [0, 1, 2, 3]).cosines.min()) < 0


def test_class_discrimination_conventions_and_errors():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2] = True
    ideal = [masks.float() * (torch.tensor([1.0, 0.0]) if c == 0 else torch.tensor([0.0, 1.0]))[:, None, None] for c in range(2)]
    disc = metrics.class_discrimination(ideal, masks, [0, 1])
    assert disc.wrong_energy.values.tolist() == [0.0, 0.0]  # a zero map has no energy
    assert disc.cosine.values.tolist() == [0.0, 0.0]  # one zero map: cosine 0
    both_zero = metrics.class_discrimination([torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)], None, 0)
    assert both_zero.cosine.values.tolist() == [1.0]
    model = gap_net(seed=1)
    x = images(n=2, size=8, seed=1)
    wrong = [camlib.grad_cam(model, x, "features", target=1), camlib.grad_cam(model, x, "features", target=1)]
    with pytest.raises(ValueError, match=r"explanations\[0\] must explain class 0"):
        metrics.class_discrimination(wrong, None, 0)
    with pytest.raises(ValueError, match="true class"):
        metrics.class_discrimination([torch.rand(2, 4, 4)] * 2, None, None)
    with pytest.raises(TypeError, match="one explanation per class"):
        metrics.class_discrimination(torch.rand(2, 4, 4), None, 0)


def test_scaled_tolerance_keeps_zhang_fraction_of_the_image():
    assert metrics.scaled_tolerance((64, 64)) == 3
    assert metrics.scaled_tolerance(48) == 2
    assert metrics.scaled_tolerance((375, 500)) == 15
    with pytest.raises(ValueError, match="positive"):
        metrics.scaled_tolerance(0)


# ----------------------------------------------------------------------------- known answers on course data


@pytest.fixture(scope="module")
def course():
    model = camlib.models.load_model("gap")
    data = camlib.data.test_set()[:N_COURSE]
    return model, data.images, data.masks, data.labels


def test_reference_maps_and_the_expected_energy_of_a_random_map(course):
    _, _, masks, _ = course
    refs = reference_maps(masks, seed=0)
    assert set(refs) == set(evaluation.REFERENCES)
    assert torch.equal(refs["oracle"].bool(), masks) and torch.equal(refs["inverted"].bool(), ~masks)
    # an i.i.d. positive map puts the area fraction of its energy on the object, in expectation
    energy = metrics.energy_inside(refs["random"], masks).values.double()
    area = masks.flatten(1).double().mean(1)
    diff = camlib.statistics.paired_difference(energy, area)
    assert diff.contains(0.0) and abs(diff.mean) < 0.01


@pytest.mark.parametrize("measure", ["pointing", "energy", "iou"])
def test_localisation_measures_pass_the_known_answer_check(course, measure):
    _, _, masks, _ = course
    refs = reference_maps(masks, seed=0)
    fn = {
        "pointing": lambda m: metrics.pointing_game(m, masks, tolerance=metrics.scaled_tolerance(64)).values,
        "energy": lambda m: metrics.energy_inside(m, masks).values,
        "iou": lambda m: metrics.iou(m, masks).values,
    }[measure]
    check = check_measure(measure, {k: fn(m) for k, m in refs.items()}, higher_is_better=True)
    assert check.passed, check.report()
    assert check.values["oracle"].mean == 1.0  # exact anchors: the mask scores 1 on all three


def test_the_default_substrates_pass_and_black_fill_is_flagged(course):
    model, x, masks, labels = course
    checks = substrate_check(model, x, masks, labels, substrates=("mean", "black"), orders=("morf",), steps=8)
    assert checks[("mean", "morf")].passed, checks[("mean", "morf")].report()
    black = checks[("black", "morf")]
    assert not black.passed, black.report()  # the silhouette stays: the oracle is no better than random
    assert black.margins["random"].low <= 0.0
    insertion = substrate_check(model, x, masks, labels, substrates=("blur",), orders=("lerf",), steps=8)
    assert insertion[("blur", "lerf")].passed, insertion[("blur", "lerf")].report()
    assert inspect.signature(metrics.deletion).parameters["substrate"].default == "mean"
    assert inspect.signature(metrics.insertion).parameters["substrate"].default == "blur"
    assert evaluation.DELETION_SUBSTRATE == "mean" and evaluation.INSERTION_SUBSTRATE == "blur"


def test_class_discrimination_passes_its_known_answer_check(course):
    # an ideal class-discriminative map set (the mask for the true class, nothing for the others)
    # must beat a class-agnostic one (the mask for every class) and independent random maps
    _, _, masks, labels = course
    n, classes = masks.shape[0], 4
    gen = torch.Generator().manual_seed(0)
    sets = {
        "ideal": [masks.float() * (labels == c).float()[:, None, None] for c in range(classes)],
        "agnostic": [masks.float() for _ in range(classes)],
        "random": [torch.rand(n, 64, 64, generator=gen) for _ in range(classes)],
    }
    results = {k: metrics.class_discrimination(v, masks, labels) for k, v in sets.items()}
    for measure in ("wrong_energy", "cosine"):
        values = {k: getattr(r, measure).values for k, r in results.items()}
        for other in ("agnostic", "random"):
            d = camlib.statistics.paired_difference(values["ideal"], values[other])
            assert d.high < 0, (measure, other, d)  # lower is better, and clearly so
    assert float(results["agnostic"].cosine.mean) == 1.0 and float(results["agnostic"].wrong_energy.mean) == 1.0


def test_a_measure_that_cannot_tell_oracle_from_random_fails_the_check():
    # a blind measure (it ignores the map) must be reported as failing, not ranked
    gen = torch.Generator().manual_seed(1)
    noise = torch.rand(60, generator=gen, dtype=torch.float64)
    blind = {k: noise.clone() for k in evaluation.REFERENCES}
    check = check_measure("blind", blind, higher_is_better=True)
    assert not check.passed and "FAILS" in check.report()


# ----------------------------------------------------------------------------- the data-randomisation model


def test_the_permuted_label_model_fits_its_labels_and_knows_nothing_of_shapes():
    info = camlib.models.weights_info()["permuted"]
    assert info["permute_labels"] is True and info["accuracy"]["train_permuted"] >= 0.99
    model = camlib.models.load_model("permuted")
    assert type(model) is type(camlib.models.build_model("gap"))  # the same architecture
    held_out = camlib.data.test_set()
    with torch.no_grad():
        accuracy = float((model(held_out.images).argmax(1) == held_out.labels).double().mean())
    assert abs(accuracy - info["accuracy"]["test"]) <= 0.002
    assert accuracy < 0.4  # chance is 0.25: the permuted labels carried no information about shapes
