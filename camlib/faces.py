"""Real photographs prepared for MTCNN's O-Net: the LFW subset and annotated portrait crops.

Nothing is downloaded. The LFW images ship inside scikit-image (``skimage.data.lfw_subset()``),
the astronaut portrait too (``skimage.data.astronaut()``), and Grace Hopper's portrait is
matplotlib's sample image ``grace_hopper.jpg``. The face boxes and the hand-annotated facial
points live in ``camlib/annotations/face_photos.json``.

Conventions shared by every function here, all matching :func:`camlib.models.load_model`
``("onet")``:

* **images**: (N, 3, 48, 48) float32 RGB in [0, 1], channels first, rows from top to bottom
  and columns from left to right as the picture is displayed. O-Net normalises inside
  (``(255 x - 127.5) / 128``), so baselines mean what they mean in the rest of the course:
  0 is black, 0.5 is grey (and enters the network as 0).
* **labels**: (N,) long, 1 = face, 0 = non-face: the index of that output of O-Net's face head
  (``output_names = ("non_face", "face")``).
* **points**: (N, 5, 2) float32 (x, y) pixel coordinates in the 48 x 48 crop, in the order of
  :data:`camlib.models.ONET_LANDMARKS` (left eye, right eye, nose, left and right mouth
  corner; "left" is the left of the picture). The pixel in row ``i``, column ``j`` has its
  centre at ``(x, y) = (j, i)``, as in ``plt.imshow``; O-Net's landmark outputs convert to the
  same coordinates with :func:`camlib.models.landmarks_to_pixels`.
* **orientation**: as stored, never transposed. A transposed face lies on its side (rotated a
  quarter turn and mirrored), and O-Net, trained on upright faces, mostly misses it: on the
  200 LFW images its balanced accuracy is 1.00 as stored and 0.60 transposed (tested in
  ``tests/test_faces.py``). Transposition cannot be detected from a single crop, so it is
  documented here rather than rejected; shapes that are clearly wrong (greyscale, channels
  last, not 48 x 48) are rejected by O-Net with a message pointing to :func:`onet_input`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .models import ONET_LANDMARKS, ONET_SIZE

__all__ = [
    "ANNOTATIONS_FILE",
    "PHOTO_SOURCES",
    "FaceImages",
    "onet_input",
    "lfw_subset",
    "photograph",
    "crop_photo",
    "source_to_crop",
    "face_photos",
    "non_face_photos",
    "annotations",
]

#: The JSON file with the face boxes, non-face boxes and hand-annotated points.
ANNOTATIONS_FILE: Path = Path(__file__).resolve().parent / "annotations" / "face_photos.json"
#: Photographs :func:`photograph` can load.
PHOTO_SOURCES: tuple[str, ...] = ("astronaut", "grace_hopper")


@dataclass
class FaceImages:
    """A labelled batch of O-Net inputs (see the module docstring for the conventions).

    Attributes:
        images: (N, 3, 48, 48) float32 RGB in [0, 1].
        labels: (N,) long, 1 = face, 0 = non-face.
        names: one name per image.
        points: (N, 5, 2) float32 hand-annotated (x, y) pixel coordinates in the crop, in the
            order of :data:`camlib.models.ONET_LANDMARKS`; ``None`` where there are none.
        source_points: (N, 5, 2) the same points in the source photograph, or ``None``.
        boxes: (N, 3) long ``(left, top, side)`` of each crop in its source photograph, or
            ``None`` (LFW).
        sources: the photograph each crop comes from (:data:`PHOTO_SOURCES`), or ``None``.
    """

    images: Tensor
    labels: Tensor
    names: tuple[str, ...]
    points: Tensor | None = None
    source_points: Tensor | None = None
    boxes: Tensor | None = None
    sources: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int | slice | Tensor | list[int]) -> "FaceImages":
        """Select images; an int keeps the batch axis: ``faces[:5]``, ``faces[labels == 1]``."""
        n = len(self)
        if isinstance(index, int):
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for {n} images")
            index = slice(index % n, index % n + 1)
        rows = torch.arange(n)[index]
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif isinstance(value, Tensor):
                out[f.name] = value[rows]
            else:
                out[f.name] = tuple(value[int(i)] for i in rows)
        return FaceImages(**out)


# ---------------------------------------------------------------------------------------------
# preparing any image for O-Net


def onet_input(images: Tensor | np.ndarray, size: int = ONET_SIZE) -> Tensor:
    """Turn square images into O-Net's input: (N, 3, size, size) float32 RGB in [0, 1].

    Accepted layouts: (N, H, W) greyscale (e.g. ``skimage.data.lfw_subset()``; a (3, H, W)
    input is refused as ambiguous: pass ``x[None]`` or ``x[:, None]``),
    (N, 1, H, W) or (N, 3, H, W) channels first, (N, H, W, 3) channels last; ``H == W``
    (O-Net reads square crops; crop first, e.g. with :func:`crop_photo`). Values: float in
    [0, 1] or uint8 in [0, 255] (divided by 255). Greyscale is repeated to three channels.
    Resizing is bilinear with antialiasing (``F.interpolate(..., antialias=True,
    align_corners=False)``), so the crop's edges stay the image's edges, then clipped to
    [0, 1]. The orientation is kept as given: do not transpose (see the module docstring).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.array(images))  # a copy: the caller's array stays as is
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor or numpy array; got "
                        f"{type(images).__name__}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    x = images
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
        if x.numel() and not bool(torch.isfinite(x).all()):
            raise ValueError("images contain NaN or infinite values")
        if x.numel() and (float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6):
            raise ValueError(
                f"image values must lie in [0, 1] (O-Net normalises inside); got "
                f"[{float(x.min()):.3g}, {float(x.max()):.3g}]. Images already scaled as "
                f"(255 x - 127.5) / 128 go back with x * 128 / 255 + 0.5; 0-255 floats with "
                f"x / 255."
            )
    else:
        raise TypeError(f"images must be float in [0, 1] or uint8; got {images.dtype}")
    shape = tuple(x.shape)
    if x.ndim == 3:
        if shape[0] == 3 and shape[-1] not in (3, 4):
            raise ValueError(
                f"a 3-D input is read as (N, H, W) greyscale images, but {shape} may be one "
                f"colour image (3, H, W): pass x[None] for one colour image, or x[:, None] for "
                f"three greyscale images"
            )
        if shape[-1] in (3, 4) and shape[0] not in (3, 4):
            raise ValueError(f"{shape} looks like one channels-last image (H, W, C): pass "
                             f"x[None] (and drop an alpha channel with x[..., :3])")
        x = x[:, None]
    elif x.ndim == 4:
        if shape[1] not in (1, 3) and shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
        elif shape[1] == 4 or (shape[1] not in (1, 3) and shape[-1] == 4):
            raise ValueError(f"images of shape {shape} have 4 channels: drop the alpha channel "
                             f"first (x[:, :3] channels first, x[..., :3] channels last)")
        elif shape[1] not in (1, 3):
            raise ValueError(f"images of shape {shape} have neither 1 nor 3 channels; expected "
                             f"(N, H, W), (N, 1, H, W), (N, 3, H, W) or (N, H, W, 3)")
    else:
        hint = " For one greyscale image use x[None]." if x.ndim == 2 else ""
        raise ValueError(f"expected a batch of images, (N, H, W), (N, C, H, W) or (N, H, W, 3); "
                         f"got shape {shape}.{hint}")
    if x.shape[0] == 0:
        raise ValueError("images is an empty batch (N = 0)")
    h, w = x.shape[-2:]
    if h != w:
        raise ValueError(f"O-Net reads square crops; these images are {h} x {w}. Crop a "
                         f"square around the face first (e.g. camlib.faces.crop_photo)")
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if h != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x.clamp(0.0, 1.0).contiguous()


# ---------------------------------------------------------------------------------------------
# Labeled Faces in the Wild (the subset shipped by scikit-image)


def lfw_subset() -> FaceImages:
    """The 200 LFW images of ``skimage.data.lfw_subset()``, ready for O-Net.

    scikit-image stores 200 greyscale 25 x 25 images in [0, 1]: the first 100 are faces, the
    last 100 non-faces (patches of the same photographs). Each is resized to 48 x 48
    (:func:`onet_input`: bilinear) and repeated to three channels, in the orientation as
    stored. Labels: 1 for the first 100, 0 for the rest; names ``"lfw_face_00"`` ..
    ``"lfw_non_face_99"``. Measured with the bundled O-Net (``tests/test_faces.py``):
    balanced accuracy 1.00 (threshold 0.5 on the face probability), median face probability
    0.99996 on the faces and 0.0037 on the non-faces; transposed (``images.transpose(2, 3)``)
    the balanced accuracy drops to 0.60.

    The images are cropped loosely (the faces sit a little left of centre), so O-Net's box
    head asks to move the right edge in by about a sixth of the side. A fresh copy is
    returned on every call.
    """
    import skimage.data

    raw = np.asarray(skimage.data.lfw_subset(), dtype=np.float32)
    if raw.shape != (200, 25, 25):  # pragma: no cover - guards against a changed scikit-image
        raise RuntimeError(f"skimage.data.lfw_subset() has shape {raw.shape}, not (200, 25, 25)")
    images = onet_input(torch.from_numpy(raw))
    labels = torch.cat([torch.ones(100, dtype=torch.long), torch.zeros(100, dtype=torch.long)])
    names = tuple(f"lfw_face_{i:02d}" for i in range(100)) + tuple(
        f"lfw_non_face_{i:02d}" for i in range(100))
    return FaceImages(images=images, labels=labels, names=names)


# ---------------------------------------------------------------------------------------------
# portrait photographs


@lru_cache(maxsize=len(PHOTO_SOURCES))
def _photograph(source: str) -> np.ndarray:
    if source == "astronaut":
        import skimage.data

        arr = skimage.data.astronaut()
    else:
        import matplotlib.cbook
        import matplotlib.image

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        arr = matplotlib.image.imread(path)
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:  # pragma: no cover - both sources are uint8 today
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    arr = arr[..., :3]
    arr.setflags(write=False)
    return arr


def photograph(source: str) -> np.ndarray:
    """A portrait photograph as an (H, W, 3) uint8 RGB array (a fresh, writable copy).

    ``"astronaut"``: ``skimage.data.astronaut()`` (512 x 512, Eileen Collins, NASA).
    ``"grace_hopper"``: matplotlib's sample ``grace_hopper.jpg`` (600 x 512, US Navy).
    """
    if source not in PHOTO_SOURCES:
        raise ValueError(f"unknown photograph {source!r}; choose one of {PHOTO_SOURCES}")
    return _photograph(source).copy()


def crop_photo(source: str, box: tuple[int, int, int], size: int = ONET_SIZE) -> Tensor:
    """The square crop ``box = (left, top, side)`` of a photograph, as O-Net input (1, 3, 48, 48).

    The crop holds source columns ``left .. left + side - 1`` and rows ``top .. top + side - 1``
    and is resized with :func:`onet_input`. Source points map into it with
    :func:`source_to_crop`.
    """
    if source not in PHOTO_SOURCES:
        raise ValueError(f"unknown photograph {source!r}; choose one of {PHOTO_SOURCES}")
    arr = _photograph(source)
    if (not isinstance(box, (tuple, list)) or len(box) != 3
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in box)):
        raise ValueError(f"box must be three ints (left, top, side); got {box!r}")
    left, top, side = (int(v) for v in box)
    h, w = arr.shape[:2]
    if side < 1 or left < 0 or top < 0 or left + side > w or top + side > h:
        raise ValueError(f"box {box} does not fit inside the {w} x {h} (width x height) "
                         f"photograph {source!r}")
    crop = arr[top:top + side, left:left + side].copy()
    return onet_input(torch.from_numpy(crop)[None], size=size)


def source_to_crop(
    points: Tensor, box: tuple[int, int, int] | Tensor, size: int = ONET_SIZE
) -> Tensor:
    """Map (..., 2) source-pixel (x, y) points into the crop ``box = (left, top, side)``.

    ``x' = (x + 0.5 - left) * size / side - 0.5`` and likewise for y with ``top`` (pixel
    centres at integer coordinates in both images; the crop's edges are the box's edges).
    """
    points = torch.as_tensor(points, dtype=torch.float32)
    left, top, side = (float(v) for v in torch.as_tensor(box).flatten()[:3])
    origin = torch.tensor([left, top])
    return (points + 0.5 - origin) * (size / side) - 0.5


def annotations() -> dict:
    """The parsed ``face_photos.json``: boxes, hand-annotated points and their conventions."""
    with open(ANNOTATIONS_FILE, encoding="utf-8") as f:
        return json.load(f)


def _from_entries(entries: list[dict], label: int, with_points: bool) -> FaceImages:
    images = torch.cat([crop_photo(e["source"], (e["box"]["left"], e["box"]["top"],
                                                 e["box"]["side"])) for e in entries])
    boxes = torch.tensor([[e["box"]["left"], e["box"]["top"], e["box"]["side"]]
                          for e in entries], dtype=torch.long)
    points = source_points = None
    if with_points:
        source_points = torch.tensor([[e["points_source"][k] for k in ONET_LANDMARKS]
                                      for e in entries], dtype=torch.float32)
        points = torch.stack([source_to_crop(p, b) for p, b in zip(source_points, boxes)])
    return FaceImages(
        images=images,
        labels=torch.full((len(entries),), label, dtype=torch.long),
        names=tuple(e["name"] for e in entries),
        points=points,
        source_points=source_points,
        boxes=boxes,
        sources=tuple(e["source"] for e in entries),
    )


def face_photos() -> FaceImages:
    """The annotated face crops of the two portraits, with their hand-marked points.

    ``names = ("astronaut", "grace_hopper")``; ``points`` (2, 5, 2) are the hand annotations in
    the 48 x 48 crop (``source_points`` in the photograph, ``boxes`` the crops), computed from
    the source points with :func:`source_to_crop` (the JSON also lists them, rounded). Eyes
    are marked at the centre of the iris, the nose at its tip, the mouth corners where the
    lips meet, to about one source pixel (0.2 to 0.5 crop pixel). O-Net's own landmark
    predictions on these crops lie within about 1.4 crop pixels of the annotations (measured
    in ``tests/test_faces.py``).
    """
    return _from_entries(annotations()["faces"], 1, with_points=True)


def non_face_photos() -> FaceImages:
    """Crops of non-face regions of the same two photographs (flags, shuttle, patch, ...).

    Same conventions as :func:`face_photos`, label 0, no points. O-Net gives each a face
    probability below 0.1 (the flag and ribbon crops score highest, about 0.05 and 0.08).
    """
    return _from_entries(annotations()["non_faces"], 0, with_points=False)
