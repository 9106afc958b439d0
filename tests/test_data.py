"""camlib.data: the shapes generator, the held-out set and the photographs.

Closed forms checked: each shape's pixel area against its formula in the circumradius r
(circle pi r^2, square 2 r^2, triangle 3 sqrt(3)/4 r^2, cross 8 t a - 4 t^2 with t = 0.3 r,
a = 0.95 r), the cue's colour and corner, and ImageNet normalisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from camlib import data
from camlib.data import CLASSES, CUE_COLORS, make_shapes, photo, test_set


@pytest.fixture(scope="module")
def one():
    return make_shapes(200, seed=3)


@pytest.fixture(scope="module")
def crowd():
    return make_shapes(60, seed=5, instances=3, distractors=2)


def test_classes_contract():
    assert CLASSES == ("circle", "square", "triangle", "cross")


def test_types_shapes_ranges(one):
    n, s = 200, 64
    assert one.images.shape == (n, 3, s, s) and one.images.dtype == torch.float32
    assert one.labels.shape == (n,) and one.labels.dtype == torch.long
    assert one.masks.shape == (n, s, s) and one.masks.dtype == torch.bool
    assert float(one.images.min()) >= 0.0 and float(one.images.max()) <= 1.0
    assert set(one.labels.tolist()) == {0, 1, 2, 3}
    assert len(one) == n
    assert one.object_masks.shape == (n, 1, s, s)
    assert torch.equal(one.object_classes[:, 0], one.labels)
    assert not one.cue_masks.any() and (one.cue_class == -1).all()
    assert not one.distractor_masks.any()


def test_determinism_by_seed():
    a = make_shapes(20, seed=11, instances=2, distractors=1, spurious="train")
    b = make_shapes(20, seed=11, instances=2, distractors=1, spurious="train")
    c = make_shapes(20, seed=12, instances=2, distractors=1, spurious="train")
    for f in ("images", "labels", "masks", "object_masks", "cue_masks"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert not torch.equal(a.images, c.images)


def test_other_sizes():
    small = make_shapes(5, seed=0, size=32)
    big = make_shapes(5, seed=0, size=96)
    assert small.images.shape == (5, 3, 32, 32) and big.images.shape == (5, 3, 96, 96)
    assert small.masks.flatten(1).any(1).all() and big.masks.flatten(1).any(1).all()


def test_masks_nonempty_and_inside_the_image(one, crowd):
    for s in (one, crowd):
        assert s.masks.flatten(1).any(1).all()
        assert s.object_masks.flatten(2).any(2).all()
        # objects fit in the frame: no mask pixel on the border rows/columns
        border = s.masks[:, 0].any() or s.masks[:, -1].any() or s.masks[:, :, 0].any() \
            or s.masks[:, :, -1].any()
        assert not border


def test_mask_pixels_carry_the_object_colour(one):
    # inside a mask the image is one flat colour plus N(0, 0.03^2) noise (clipped)
    for i in range(20):
        pix = one.images[i][:, one.masks[i]]
        assert float(pix.std(dim=1).max()) < 0.05


@pytest.mark.parametrize("cls,area", [
    (0, math.pi),
    (1, 2.0),
    (2, 3 * math.sqrt(3) / 4),
    (3, 8 * 0.3 * 0.95 - 4 * 0.3 ** 2),
])
def test_shape_areas_match_closed_forms(cls, area):
    s = make_shapes(400, seed=21, size=128)
    sel = s.labels == cls
    measured = s.masks[sel].flatten(1).sum(1).double()
    expected = area * s.radii[sel, 0].double() ** 2
    ratio = measured / expected
    assert float((ratio - 1).abs().mean()) < 0.03
    assert float((ratio - 1).abs().max()) < 0.12


def test_shapes_of_different_classes_differ_in_area_ratio():
    s = make_shapes(400, seed=22, size=128)
    ratio = s.masks.flatten(1).sum(1).double() / s.radii[:, 0].double() ** 2
    means = [float(ratio[s.labels == c].mean()) for c in range(4)]
    assert means[0] > means[1] > means[3] > means[2]


def test_instances_and_distractors(crowd):
    n, m = 60, 5
    assert crowd.object_masks.shape[:2] == (n, m)
    lab = crowd.labels[:, None]
    assert (crowd.object_classes[:, :3] == lab).all()
    assert (crowd.object_classes[:, 3:] != lab).all()
    # objects never overlap
    assert int(crowd.object_masks.sum(1).max()) == 1
    assert torch.equal(crowd.masks, crowd.object_masks[:, :3].any(1))
    assert torch.equal(crowd.distractor_masks, crowd.object_masks[:, 3:].any(1))
    assert not (crowd.masks & crowd.distractor_masks).any()
    # centres at least r_i + r_j apart
    c, r = crowd.centers.double(), crowd.radii.double()
    d = (c[:, :, None] - c[:, None]).norm(dim=-1)
    gap = d - (r[:, :, None] + r[:, None])
    off_diag = ~torch.eye(m, dtype=torch.bool)
    assert float(gap[:, off_diag].min()) > 0


def test_spurious_cue_variants():
    base = make_shapes(80, seed=9)
    tr = make_shapes(80, seed=9, spurious="train")
    ab = make_shapes(80, seed=9, spurious="absent")
    sw = make_shapes(80, seed=9, spurious="swapped")
    # the shapes are identical across variants; only the corner mark changes
    assert torch.equal(ab.images, base.images)
    for s in (tr, sw):
        assert torch.equal(s.masks, base.masks)
        outside = ~s.cue_masks[:, None].expand_as(s.images)
        assert torch.equal(s.images[outside], base.images[outside])
    assert torch.equal(tr.cue_class, tr.labels)
    assert torch.equal(sw.cue_class, (sw.labels + 1) % 4)
    assert (ab.cue_class == -1).all() and not ab.cue_masks.any()
    side = max(3, 64 // 12)
    for s in (tr, sw):
        assert (s.cue_masks.flatten(1).sum(1) == side * side).all()
        assert not (s.cue_masks & s.masks).any()
        for i in range(20):
            c = int(s.cue_class[i])
            rows, cols = torch.nonzero(s.cue_masks[i], as_tuple=True)
            top, left = c in (0, 1), c in (0, 2)
            assert (rows.max() < 32) == top and (cols.max() < 32) == left
            patch = s.images[i][:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert patch.shape[1:] == (side, side)
            # stripes: the class colour on even rows, black on odd rows (plus pixel noise)
            colour = torch.tensor(CUE_COLORS[c])
            assert torch.allclose(patch[:, 0::2].mean((1, 2)), colour, atol=0.05)
            assert torch.allclose(patch[:, 1::2].mean((1, 2)), torch.zeros(3), atol=0.05)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="spurious"):
        make_shapes(2, spurious="yes")
    with pytest.raises(ValueError, match="n must"):
        make_shapes(0)
    with pytest.raises(ValueError, match="instances"):
        make_shapes(2, instances=0)
    with pytest.raises(ValueError, match="size"):
        make_shapes(2, size=8)
    with pytest.raises(ValueError, match="distractors"):
        make_shapes(2, distractors=-1)


def test_getitem():
    s = make_shapes(6, seed=1)
    sub = s[2:4]
    assert len(sub) == 2 and torch.equal(sub.images, s.images[2:4])
    assert len(s[0]) == 1 and len(s[-1]) == 1 and torch.equal(s[-1].labels, s.labels[-1:])


def test_test_set_fixed_and_cached():
    data._cached_test_set.cache_clear()
    a = test_set(1000)
    assert test_set(1000) is a
    fresh = make_shapes(1000, seed=data.TEST_SEED)
    assert torch.equal(a.images, fresh.images) and torch.equal(a.labels, fresh.labels)
    counts = torch.bincount(a.labels, minlength=4)
    assert int(counts.min()) > 200
    # the training seed differs from the held-out seed
    assert data.TRAIN_SEED != data.TEST_SEED


@pytest.mark.parametrize("name", data.PHOTOS)
def test_photo(name):
    raw = photo(name, size=64, normalize=False)
    x = photo(name, size=64)
    assert raw.shape == x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1
    mean = torch.tensor(data.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(data.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (raw - mean) / std, atol=1e-6)
    assert torch.allclose(data.imagenet_denormalize(x), raw, atol=1e-6)
    assert raw.std() > 0.05  # a real picture, not a constant


def test_photo_default_size_and_errors():
    assert photo().shape == (1, 3, 224, 224)
    with pytest.raises(ValueError, match="chelsea"):
        photo("cat")
    with pytest.raises(ValueError, match="size"):
        photo(size=2)
    with pytest.raises(ValueError):
        data.imagenet_denormalize(torch.zeros(3, 4, 4))


def test_photo_resize_matches_the_source():
    import skimage.data

    arr = skimage.data.chelsea()  # (300, 451, 3)
    h, w = arr.shape[:2]
    s = min(h, w)
    crop = arr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = photo("chelsea", size=s, normalize=False)  # no resize needed: exact crop / 255
    expected = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255
    assert torch.allclose(x[0], expected, atol=1e-5)
