"""Course data: synthetic shapes with ground-truth masks, the held-out test set, real photos.

Nothing is downloaded. The shapes are generated (deterministically from a seed) and the
photographs are the sample images shipped inside the scikit-image wheel.

Every image of :func:`make_shapes` contains one *labelled* class (circle, square, triangle or
cross), drawn ``instances`` times (random size, position, colour, and a rotation of at most
15 degrees either way), on a smooth random-coloured texture with pixel noise;
optionally ``distractors`` objects of other classes; optionally a small coloured corner mark (the
*spurious cue*) whose corner and colour encode a class. The union of the labelled objects' pixels
is returned as ``masks``, so an explanation can be scored against the truth.

Geometry (all lengths in pixels, every shape fits inside a circle of radius ``r`` around its
centre ``c``; ``(u, v)`` is the pixel centre relative to ``c`` rotated by the object's angle):

* circle:   ``u^2 + v^2 <= r^2``
* square:   ``max(|u|, |v|) <= r / sqrt(2)``
* triangle: ``-(u cos(a_k) + v sin(a_k)) <= r / 2`` for the vertex angles
  ``a_k = pi/2 + 2 pi k / 3``, k = 0, 1, 2 (an equilateral triangle with circumradius ``r``)
* cross:    ``(|u| <= t and |v| <= 0.95 r) or (|v| <= t and |u| <= 0.95 r)``, ``t = 0.3 r``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CLASSES",
    "CUE_COLORS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PHOTOS",
    "TEST_SEED",
    "TRAIN_SEED",
    "Shapes",
    "make_shapes",
    "test_set",
    "THREAD",
    "THREAD_TRIANGLE",
    "THREAD_SOURCES",
    "thread",
    "photo",
    "imagenet_denormalize",
]

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

#: Seed of the fixed held-out set (:func:`test_set`); training uses :data:`TRAIN_SEED`.
TEST_SEED: int = 20_231_000
TRAIN_SEED: int = 7

#: Colour of the spurious corner mark of each class (RGB in [0, 1]). The mark is a small
#: square of horizontal 1-pixel stripes (this colour on its even rows, black on its odd rows)
#: in the top-left, top-right, bottom-left, bottom-right corner for classes 0, 1, 2, 3.
CUE_COLORS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (1.0, 1.0, 0.0),
)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Photographs available to :func:`photo` (files inside ``skimage/data``).
PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "astronaut")

_SPURIOUS = (None, "train", "absent", "swapped")
# circumradius range as a fraction of the image size: one object / several objects
_R_ONE = (0.18, 0.28)
_R_MANY = (0.09, 0.14)
_TEXTURE = 0.08
# objects are rotated by an angle drawn uniformly from [-_ROTATION, _ROTATION] (radians)
_ROTATION = math.pi / 12


@dataclass
class Shapes:
    """A batch of synthetic shape images and their ground truth.

    Attributes:
        images: (N, 3, H, W) float32 in [0, 1].
        labels: (N,) long, index into :data:`CLASSES`.
        masks: (N, H, W) bool, union of the pixels of the labelled class's instances.
        object_masks: (N, M, H, W) bool, one mask per drawn object (instances first, then
            distractors), ``M = instances + distractors``.
        object_classes: (N, M) long, class of each drawn object.
        centers: (N, M, 2) float32, (row, col) centre of each object in pixels.
        radii: (N, M) float32, circumradius of each object in pixels.
        distractor_masks: (N, H, W) bool, union of the distractors' pixels (all False if none).
        cue_class: (N,) long, class encoded by the corner mark, -1 where there is no mark.
        cue_masks: (N, H, W) bool, pixels of the corner mark (all False if none).
    """

    images: Tensor
    labels: Tensor
    masks: Tensor
    object_masks: Tensor
    object_classes: Tensor
    centers: Tensor
    radii: Tensor
    distractor_masks: Tensor
    cue_class: Tensor
    cue_masks: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int | slice | Tensor) -> "Shapes":
        """Select images (an int keeps the batch dimension): ``shapes[:64]``, ``shapes[idx]``."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Shapes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


# ---------------------------------------------------------------------------------------------
# geometry


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Inside-test of class ``cls`` for rotated coordinates ``u, v`` and circumradius ``r``."""
    if cls == 0:
        return u * u + v * v <= r * r
    if cls == 1:
        return np.maximum(np.abs(u), np.abs(v)) <= r / math.sqrt(2.0)
    if cls == 2:
        inside = np.ones(u.shape, dtype=bool)
        for ang in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
            # outward normal opposite to the vertex at angle `ang`
            inside &= -(u * math.cos(ang) + v * math.sin(ang)) <= r / 2
        return inside
    if cls == 3:
        t, arm = 0.3 * r, 0.95 * r
        au, av = np.abs(u), np.abs(v)
        return ((au <= t) & (av <= arm)) | ((av <= t) & (au <= arm))
    raise ValueError(f"unknown class index {cls}")


def _place(
    rng: np.random.Generator,
    n_obj: int,
    size: int,
    r_lo: float,
    r_hi: float,
    corner: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample non-overlapping circles (centre, radius) that stay clear of the corner boxes."""
    centers = np.zeros((n_obj, 2), dtype=np.float64)
    radii = np.zeros(n_obj, dtype=np.float64)
    shrink = 1.0
    k = 0
    tries = 0
    while k < n_obj:
        r = rng.uniform(r_lo, r_hi) * shrink
        lo, hi = r + 1.0, size - r - 1.0
        c = rng.uniform(lo, hi, size=2)
        ok = True
        # clear of the four corner boxes [0, corner]^2 (distance from c to the box > r + 1)
        for cy in (corner / 2, size - corner / 2):
            for cx in (corner / 2, size - corner / 2):
                dy = max(abs(c[0] - cy) - corner / 2, 0.0)
                dx = max(abs(c[1] - cx) - corner / 2, 0.0)
                if dx * dx + dy * dy <= (r + 1.0) ** 2:
                    ok = False
        for j in range(k):
            if np.hypot(*(c - centers[j])) <= r + radii[j] + 2.0:
                ok = False
                break
        if ok:
            centers[k], radii[k] = c, r
            k += 1
            continue
        tries += 1
        if tries % 50 == 0:  # crowded: make the remaining objects smaller
            shrink *= 0.9
            if tries > 2000:
                raise RuntimeError("could not place the objects; use fewer or a larger size")
    return centers, radii


def _contrasting_colors(rng: np.random.Generator, base: np.ndarray, m: int) -> np.ndarray:
    """For each image, ``m`` object colours far from the background colour ``base`` (N, 3)."""
    n = base.shape[0]
    cand = rng.uniform(0.0, 1.0, size=(n, m, 6, 3))
    dist = np.linalg.norm(cand - base[:, None, None, :], axis=-1)
    best = dist.argmax(axis=-1)
    return np.take_along_axis(cand, best[..., None, None], axis=2)[:, :, 0]


# ---------------------------------------------------------------------------------------------
# the generator


def make_shapes(
    n: int,
    seed: int = 0,
    size: int = 64,
    instances: int = 1,
    distractors: int = 0,
    spurious: Literal["train", "absent", "swapped"] | None = None,
) -> Shapes:
    """Generate ``n`` labelled shape images, deterministically from ``seed``.

    Each image is ``clip(background + objects + cue + noise, 0, 1)``: the background is a base
    colour plus a bilinearly upsampled 6x6 random texture (amplitude 0.08); each object is a flat
    colour chosen far from the background colour; pixel noise is N(0, 0.03^2). Object
    circumradii are drawn from [0.18, 0.28] * size for one object and [0.09, 0.14] * size when
    there are several; rotations from [-15, 15] degrees; objects never overlap each other or
    the corner boxes where the cue may sit. The random draws do not depend on ``spurious``, so
    the four cue variants of one seed show the same shapes.

    Args:
        n: number of images (>= 1).
        seed: random seed; the same arguments always give the same tensors.
        size: image height = width in pixels (>= 32).
        instances: how many objects of the labelled class are drawn (>= 1).
        distractors: how many objects of *other* classes are drawn (>= 0).
        spurious: ``None`` (no mark), ``"train"`` (the corner mark encodes the label),
            ``"absent"`` (no mark; same images as ``"train"`` otherwise) or ``"swapped"`` (the mark
            encodes ``(label + 1) % 4``, a wrong class).

    Returns:
        :class:`Shapes`; ``masks`` is the union of the labelled class's objects.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"size must be an int >= 32, got {size!r}")
    if not isinstance(instances, int) or instances < 1:
        raise ValueError(f"instances must be an int >= 1, got {instances!r}")
    if not isinstance(distractors, int) or distractors < 0:
        raise ValueError(f"distractors must be an int >= 0, got {distractors!r}")
    if spurious not in _SPURIOUS:
        raise ValueError(f"spurious must be one of {_SPURIOUS}, got {spurious!r}")

    rng = np.random.default_rng(seed)
    n_cls = len(CLASSES)
    m = instances + distractors
    labels = rng.integers(0, n_cls, size=n)

    # object classes: instances of the label, distractors of other classes
    obj_cls = np.empty((n, m), dtype=np.int64)
    obj_cls[:, :instances] = labels[:, None]
    if distractors:
        offs = rng.integers(1, n_cls, size=(n, distractors))
        obj_cls[:, instances:] = (labels[:, None] + offs) % n_cls

    # sizes: one object fills more of the frame than a crowd
    r_lo, r_hi = (_R_ONE if m == 1 else _R_MANY)
    r_lo, r_hi = r_lo * size, r_hi * size
    cue_side = max(3, size // 12)
    cue_off = max(1, size // 32)
    corner = cue_side + 2 * cue_off + 1
    centers = np.zeros((n, m, 2))
    radii = np.zeros((n, m))
    for i in range(n):
        centers[i], radii[i] = _place(rng, m, size, r_lo, r_hi, corner)
    angles = rng.uniform(-_ROTATION, _ROTATION, size=(n, m))

    # background
    base = rng.uniform(0.15, 0.85, size=(n, 3))
    texture = rng.uniform(-1.0, 1.0, size=(n, 3, 6, 6)).astype(np.float32)
    colors = _contrasting_colors(rng, base, m)
    noise = rng.standard_normal(size=(n, 3, size, size), dtype=np.float32)
    noise *= np.float32(0.03)

    tex = F.interpolate(torch.from_numpy(texture), size=(size, size), mode="bilinear",
                        align_corners=False).numpy()
    img = base[:, :, None, None].astype(np.float32) + _TEXTURE * tex

    # objects
    coords = np.arange(size, dtype=np.float32) + 0.5
    yy = coords[None, :, None]
    xx = coords[None, None, :]
    obj_masks = np.zeros((n, m, size, size), dtype=bool)
    for j in range(m):
        cy = centers[:, j, 0].astype(np.float32)[:, None, None]
        cx = centers[:, j, 1].astype(np.float32)[:, None, None]
        ca = np.cos(angles[:, j]).astype(np.float32)[:, None, None]
        sa = np.sin(angles[:, j]).astype(np.float32)[:, None, None]
        rr = radii[:, j].astype(np.float32)[:, None, None]
        dy, dx = yy - cy, xx - cx
        u = ca * dx + sa * dy
        v = -sa * dx + ca * dy
        for c in range(n_cls):
            sel = obj_cls[:, j] == c
            if sel.any():
                obj_masks[sel, j] = _shape_mask(c, u[sel], v[sel], rr[sel])
        mj = obj_masks[:, j][:, None]
        img = np.where(mj, colors[:, j, :, None, None].astype(np.float32), img)

    # spurious corner mark
    cue_class = np.full(n, -1, dtype=np.int64)
    if spurious == "train":
        cue_class = labels.copy()
    elif spurious == "swapped":
        cue_class = (labels + 1) % n_cls
    cue_masks = np.zeros((n, size, size), dtype=bool)
    lo, hi = cue_off, size - cue_off - cue_side
    starts = ((lo, lo), (lo, hi), (hi, lo), (hi, hi))
    for c in range(n_cls):
        sel = cue_class == c
        if sel.any():
            r0, c0 = starts[c]
            cue_masks[sel, r0:r0 + cue_side, c0:c0 + cue_side] = True
            # horizontal 1-pixel stripes: the class colour on even rows, black on odd rows
            col = np.zeros((3, size, 1), dtype=np.float32)
            col[:, r0::2] = np.asarray(CUE_COLORS[c], dtype=np.float32)[:, None, None]
            img[sel] = np.where(cue_masks[sel][:, None], col, img[sel])

    img += noise
    np.clip(img, 0.0, 1.0, out=img)
    inst = obj_masks[:, :instances].any(axis=1)
    distr = obj_masks[:, instances:].any(axis=1) if distractors else np.zeros_like(inst)

    return Shapes(
        images=torch.from_numpy(img),
        labels=torch.from_numpy(labels.astype(np.int64)),
        masks=torch.from_numpy(inst),
        object_masks=torch.from_numpy(obj_masks),
        object_classes=torch.from_numpy(obj_cls),
        centers=torch.from_numpy(centers.astype(np.float32)),
        radii=torch.from_numpy(radii.astype(np.float32)),
        distractor_masks=torch.from_numpy(distr),
        cue_class=torch.from_numpy(cue_class),
        cue_masks=torch.from_numpy(cue_masks),
    )


@lru_cache(maxsize=8)
def _cached_test_set(n: int, spurious: str | None) -> Shapes:
    return make_shapes(n, seed=TEST_SEED, spurious=spurious)


def test_set(
    n: int = 1000, spurious: Literal["train", "absent", "swapped"] | None = None
) -> Shapes:
    """The fixed held-out set: ``make_shapes(n, seed=TEST_SEED, spurious=spurious)``, cached.

    Each ``n`` is its own fixed set: generation is vectorised over the batch, so
    ``test_set(100)`` is not the first 100 images of ``test_set(1000)``. Pass the same ``n``
    wherever the same images are meant.

    ``spurious="train" | "absent" | "swapped"`` gives the same shapes with the corner mark
    matching the label, removed, or pointing to ``(label + 1) % 4``. The tensors are shared
    between calls: clone before modifying them in place.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return _cached_test_set(n, spurious)


test_set.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ---------------------------------------------------------------------------------------------
# the thread of images: the same held-out images, with the same indices, in every notebook

#: Role -> index in :func:`thread`. Every notebook explains these images, so a learner sees one
#: triangle (``THREAD["triangle"]``) explained by every method of the course.
THREAD: dict[str, int] = {
    "circle": 0,
    "square": 1,
    "triangle": 2,
    "cross": 3,
    "hard": 4,
    "multi": 5,
    "distractor": 6,
}
THREAD_TRIANGLE: int = THREAD["triangle"]

#: Role -> where the image comes from: ``(instances, distractors, n, index)`` means
#: ``make_shapes(n, seed=TEST_SEED, instances=instances, distractors=distractors)[index]``;
#: ``(1, 0, 1000, i)`` is ``test_set()[i]``, the fixed held-out set of 1000.
THREAD_SOURCES: dict[str, tuple[int, int, int, int]] = {
    "circle": (1, 0, 1000, 139),
    "square": (1, 0, 1000, 4),
    "triangle": (1, 0, 1000, 134),
    "cross": (1, 0, 1000, 44),
    "hard": (1, 0, 1000, 995),
    "multi": (3, 0, 64, 30),
    "distractor": (1, 1, 64, 11),
}


@lru_cache(maxsize=1)
def _cached_thread() -> Shapes:
    parts = [make_shapes(n, seed=TEST_SEED, instances=i, distractors=d)[index] if (i, d, n) != (1, 0, 1000)
             else test_set()[index] for i, d, n, index in THREAD_SOURCES.values()]
    m = max(p.object_masks.shape[1] for p in parts)

    def pad(t: Tensor, fill: float) -> Tensor:  # objects beyond an image's own count: empty
        extra = m - t.shape[1]
        return torch.cat([t, torch.full((t.shape[0], extra, *t.shape[2:]), fill, dtype=t.dtype)], 1) if extra else t

    padded = {"object_masks": False, "object_classes": -1, "centers": 0.0, "radii": 0.0}
    return Shapes(**{f.name: torch.cat([pad(getattr(p, f.name), padded[f.name]) if f.name in padded
                                        else getattr(p, f.name) for p in parts]) for f in fields(Shapes)})


def thread() -> Shapes:
    """The course's thread of seven held-out images, the same in every notebook (cached).

    Index (:data:`THREAD`) and why each image was chosen (looked at among the candidates; the
    course's ``gap`` and ``fc`` models classify all seven correctly, which a test checks):

    0. ``circle``, 1. ``square``, 2. ``triangle``, 3. ``cross``: ``test_set()[139, 4, 134, 44]``, one
       image per class, each a medium-sized object (10 to 15 % of the image) in strong colour contrast
       with its background and classified with a large margin by both models: the easy cases on
       which the methods should agree. The triangle (index 2, :data:`THREAD_TRIANGLE`) is off-centre,
       so a map that only prefers the middle of the frame is visibly wrong on it.
    4. ``hard``: ``test_set()[995]``, a small square the ``gap`` model is least sure of among the
       1000 held-out images (the smallest logit margin over the runner-up class).
    5. ``multi``: three triangles, ``make_shapes(64, seed=TEST_SEED, instances=3)[30]``: does a
       map find every instance, or only the strongest one?
    6. ``distractor``: a triangle (the label) and a cross,
       ``make_shapes(64, seed=TEST_SEED, distractors=1)[11]``: the image for class-discriminative
       maps, since both classes have a high logit and each has its own object.

    ``masks`` is the labelled class's pixels; ``object_masks`` has three slots per image, and slots
    beyond an image's own objects are empty (class -1, radius 0). The tensors are shared between
    calls: clone before modifying them in place.
    """
    return _cached_thread()


# ---------------------------------------------------------------------------------------------
# photographs


def _load_photo(name: str) -> np.ndarray:
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTOS}")
    import skimage.data

    arr = getattr(skimage.data, name)()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return arr[..., :3]


def photo(name: str = "chelsea", size: int = 224, normalize: bool = True) -> Tensor:
    """A scikit-image sample photograph as a (1, 3, size, size) float32 tensor.

    The image is centre-cropped to a square, resized (bilinear, antialiased) to ``size``,
    scaled to [0, 1] and, when ``normalize`` is true, ImageNet-normalised:
    ``(x - IMAGENET_MEAN) / IMAGENET_STD`` per channel. ``normalize=False`` gives the
    displayable [0, 1] image (or use :func:`imagenet_denormalize`).
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    arr = _load_photo(name)
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    arr = arr[top:top + s, left:left + s]
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = x.clamp(0.0, 1.0)
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x.contiguous()


def imagenet_denormalize(x: Tensor) -> Tensor:
    """Undo ImageNet normalisation: ``x * IMAGENET_STD + IMAGENET_MEAN``, clipped to [0, 1]."""
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError("expected an (N, 3, H, W) tensor, e.g. the output of photo()")
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0.0, 1.0)
