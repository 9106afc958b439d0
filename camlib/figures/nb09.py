"""Figures and measurements of notebook 09: a real network (MTCNN's O-Net) on real photographs.

The network is :func:`camlib.models.load_model` ``("onet")`` and the photographs come from
:mod:`camlib.faces` (the 200 LFW images of scikit-image and two annotated portraits). Conventions
used by the notebook, its explorer (:func:`camlib.widgets.real_network_explorer`) and the figures:

* **The face score** is the face logit ``z_face`` (``target="face"``, ``score="logit"``). O-Net's
  face layer has ``w_non_face = -w_face`` to within 0.0025 (weights up to 0.98; checked in the
  notebook), so ``z_face`` is, up to a constant, half the log-odds ``z_face - z_non_face``: a
  gradient-based map of ``z_face`` is half the map of the log-odds to that precision, and a map of
  ``z_non_face`` is nearly its negative.
* **Removing** a pixel sets it to the image's mean colour (:func:`camlib.substrates.mean_colour`):
  the baseline of Integrated Gradients, the fill of occlusion and the substrate of deletion.
* **Settings** of the costly methods: :data:`IG`, :data:`OCCLUSION`, :data:`SMOOTHGRAD`.
* **A map of the face score** is :func:`camlib.metrics.to_map` of the result at 48 x 48: a CAM's
  ``map`` (after its ReLU) upsampled, a pixel attribution summed over the colour channels (signed).
* **A map of a landmark** (:func:`landmark_map`): the landmark is a point ``(u, v)`` given by two
  outputs of the landmark head; each is explained separately and the map is
  ``|S(u)| + |S(v)|``, with ``S`` the signed map (a CAM's ``raw`` before its ReLU, upsampled, or a
  pixel attribution summed over channels). The sign of a coordinate's map only says in which
  direction a pixel moves the point, so the magnitudes are added: the map shows the pixels that
  move the point, in either direction.
* **The pointing game of a landmark** (:func:`pointing`): a hit is a map whose maximum lies within
  :data:`TOLERANCE` pixels of the landmark (ties shared, :func:`camlib.metrics.pointing_game`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.patches import Circle
from torch import Tensor, nn

import camlib
from camlib import evaluation
from camlib.models import ONET_LANDMARKS
from camlib.plotting import draw_map, map_scale, to_display

__all__ = [
    "SIZE",
    "FACE_LAYERS",
    "LAYER_CHOICES",
    "TOLERANCE",
    "IG",
    "OCCLUSION",
    "SMOOTHGRAD",
    "PIXEL_METHODS",
    "CAM_METHODS",
    "LABELS",
    "RANDOMISED_LAYERS",
    "Showcase",
    "available",
    "showcase",
    "showcase_face_map",
    "explain",
    "face_map",
    "signed_map",
    "landmark_map",
    "point_masks",
    "pointing",
    "reference_point_maps",
    "method_grid",
    "landmark_figure",
    "key_figure",
    "imagenet_analysis",
]

#: Side of O-Net's input crop.
SIZE: int = 48
#: The two layers the CAM family explains: 8 x 8 (after prelu3) and 3 x 3 (the last spatial layer).
FACE_LAYERS: tuple[str, ...] = ("prelu3", "prelu4")
#: The layers the explorer offers.
LAYER_CHOICES: tuple[str, ...] = ("prelu2", "prelu3", "prelu4")
#: Pointing-game tolerance in pixels of the 48 x 48 crop: a quarter of the median distance between
#: O-Net's two eyes on the LFW faces (17 px), so a map that peaks on the other eye is a miss.
TOLERANCE: int = 4
#: Integrated Gradients: steps and rule (baseline: the image's mean colour).
IG: dict[str, Any] = {"steps": 16, "rule": "trapezoid"}
#: Occlusion: window and stride in pixels (fill: the image's mean colour); 11 x 11 windows.
OCCLUSION: dict[str, int] = {"patch": 8, "stride": 4}
#: SmoothGrad of saliency: noise as a fraction of each image's range, and samples.
SMOOTHGRAD: dict[str, Any] = {"noise_level": 0.15, "samples": 16}
#: Pixel attributions of the course, in display order.
PIXEL_METHODS: tuple[str, ...] = (
    "occlusion",
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "smooth_grad",
    "guided_backprop",
    "guided_grad_cam",
)
#: CAM-family methods (explain a layer), in the evaluation table's order; those camlib lacks are
#: skipped. CAM itself is left out: it needs a global-average-pooled linear head, and O-Net has none.
CAM_METHODS: tuple[str, ...] = tuple(m for m in evaluation.CAM_METHODS if m != "cam")
#: Display names: the evaluation table's.
LABELS: dict[str, str] = {m: evaluation.LABELS[m] for m in PIXEL_METHODS + CAM_METHODS}
#: The layers of O-Net's face path, from the face logits down (the cascading randomisation test);
#: the box and landmark layers are left out because the face score does not read them.
RANDOMISED_LAYERS: tuple[str, ...] = (
    "dense6_1", "prelu5", "dense5", "prelu4", "conv4", "prelu3", "conv3", "prelu2", "conv2", "prelu1", "conv1",
)


def available(methods: Sequence[str]) -> tuple[str, ...]:
    """The methods among ``methods`` that this camlib provides."""
    return tuple(m for m in methods if callable(getattr(camlib, m, None)))


# --------------------------------------------------------------------------- the images


@dataclass
class Showcase:
    """The images every method is shown on: faces and non-faces, with landmark points for faces.

    ``points`` (N, 5, 2) are (x, y) pixels in the crop: O-Net's own predictions for LFW faces,
    the hand annotations for the portraits, NaN for non-faces; ``point_source`` says which.
    """

    images: Tensor
    labels: Tensor
    names: tuple[str, ...]
    points: Tensor
    point_source: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def showcase() -> Showcase:
    """Two LFW faces, the two portraits, an LFW non-face and a non-face crop of a portrait.

    LFW faces 0 and 3, ``astronaut`` and ``grace_hopper`` (hand-annotated), LFW non-face 0 and the
    astronaut photograph's flag. The LFW points are O-Net's own landmark predictions. A fresh copy
    on every call.
    """
    data = _showcase()
    return Showcase(data.images.clone(), data.labels.clone(), data.names, data.points.clone(), data.point_source)


@lru_cache(maxsize=1)
def _showcase() -> Showcase:
    lfw = camlib.faces.lfw_subset()
    portraits = camlib.faces.face_photos()
    others = camlib.faces.non_face_photos()
    flag = others.names.index("astronaut_flag")
    lfw_faces = lfw[[0, 3]]
    model = camlib.models.load_model("onet")
    with torch.no_grad():
        lfw_points = model.outputs(lfw_faces.images).landmark_pixels
    nan = torch.full((2, 5, 2), float("nan"))
    return Showcase(
        images=torch.cat([lfw_faces.images, portraits.images, lfw[[100]].images, others[[flag]].images]),
        labels=torch.tensor([1, 1, 1, 1, 0, 0]),
        names=("LFW face 0", "LFW face 3", "astronaut", "Grace Hopper", "LFW non-face 0", "astronaut's flag"),
        points=torch.cat([lfw_points, portraits.points, nan]),
        point_source=("O-Net", "O-Net", "hand", "hand", "none", "none"),
    )


# --------------------------------------------------------------------------- explaining


def explain(
    method: str, model: nn.Module, x: Tensor, target: Any = "face", layer: str = "prelu3", quiet: bool = True
) -> Any:
    """One method with the notebook's settings: a CamResult (CAM family) or an Attribution.

    CAM-family methods and Guided Grad-CAM explain ``layer``; Integrated Gradients starts from the
    image's mean colour (:data:`IG`); occlusion fills each window with it (:data:`OCCLUSION`);
    SmoothGrad averages saliency (:data:`SMOOTHGRAD`). ``quiet=True`` silences XGrad-CAM's warning
    about signed activations (the notebook shows it once, where it discusses it).
    """
    fn = getattr(camlib, method, None)
    if fn is None:
        raise ValueError(f"camlib has no method {method!r}; available: {available(PIXEL_METHODS + CAM_METHODS)}")
    if method in CAM_METHODS or method == "guided_grad_cam":
        with warnings.catch_warnings():
            if quiet:
                warnings.filterwarnings("ignore", message=".*negative activations.*")
            return fn(model, x, layer, target=target)
    if method == "integrated_gradients":
        return fn(model, x, target=target, baseline=camlib.substrates.mean_colour(x), **IG)
    if method == "occlusion":
        return fn(model, x, target=target, baseline=camlib.substrates.mean_colour(x), **OCCLUSION)
    if method == "smooth_grad":
        return fn(model, x, camlib.saliency, target=target, **SMOOTHGRAD)
    return fn(model, x, target=target)


@lru_cache(maxsize=64)
def _showcase_map(method: str, layer: str) -> Tensor:
    return face_map(explain(method, camlib.models.load_model("onet"), _showcase().images, "face", layer))


def showcase_face_map(method: str, layer: str = "prelu3") -> Tensor:
    """(6, 48, 48) :func:`face_map` of the face logit on the :func:`showcase` images, computed once.

    The key figure and the notebook's side-by-side figures draw the same maps: each
    (method, layer) is explained once per process and a copy is returned.
    """
    if not (method in CAM_METHODS or method == "guided_grad_cam"):
        layer = "-"
    return _showcase_map(method, layer if layer != "-" else "prelu3").clone()


def face_map(result: Any) -> Tensor:
    """The map of an explanation at 48 x 48 as every measure reads it (:func:`camlib.metrics.to_map`)."""
    return camlib.metrics.to_map(result, (SIZE, SIZE))


def signed_map(result: Any) -> Tensor:
    """(N, 48, 48) signed map: a CAM's ``raw`` (before its ReLU) upsampled, or values summed over channels."""
    if isinstance(result, camlib.CamResult):
        return camlib.upsample(result.raw.detach(), (SIZE, SIZE))
    return result.values.detach().sum(dim=1)


def _landmark_model(model: nn.Module) -> nn.Module:
    if getattr(model, "head", None) == "landmarks":
        return model
    if not hasattr(model, "with_head"):
        raise TypeError("landmark_map needs O-Net: camlib.models.load_model('onet', head='landmarks')")
    return model.with_head("landmarks")


def landmark_map(method: str, model: nn.Module, x: Tensor, landmark: str = "left_eye", layer: str = "prelu3") -> Tensor:
    """Where the network looks to place a landmark: ``|S(u)| + |S(v)|`` at 48 x 48, shape (N, 48, 48).

    ``u`` and ``v`` are the landmark's two outputs (``"<landmark>_x"``, ``"<landmark>_y"``) of
    O-Net's landmark head (``model`` may have any head: the same weights are used), ``S`` the
    signed map of ``method`` (:func:`signed_map`) with the settings of :func:`explain`.
    """
    if landmark not in ONET_LANDMARKS:
        raise ValueError(f"unknown landmark {landmark!r}; choose one of {ONET_LANDMARKS}")
    net = _landmark_model(model)
    return sum(signed_map(explain(method, net, x, f"{landmark}_{axis}", layer)).abs() for axis in "xy")


def point_masks(points: Tensor, size: int = SIZE) -> Tensor:
    """(N, 2) (x, y) points -> (N, size, size) bool masks holding the one pixel nearest each point."""
    points = torch.as_tensor(points, dtype=torch.float32)
    n = points.shape[0]
    cols = points[:, 0].round().long().clamp(0, size - 1)
    rows = points[:, 1].round().long().clamp(0, size - 1)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[torch.arange(n), rows, cols] = True
    return masks


def pointing(maps: Tensor, points: Tensor, tolerance: int = TOLERANCE) -> Any:
    """Pointing game of (N, 48, 48) maps against (N, 2) points: is the maximum within ``tolerance`` px?

    :func:`camlib.metrics.pointing_game` with the mask of :func:`point_masks` dilated by a disk of
    radius ``tolerance`` and ties shared (a constant map scores the disk's share of the crop).
    """
    return camlib.metrics.pointing_game(maps, point_masks(points), tolerance=tolerance)


def reference_point_maps(points: Tensor, other: Tensor, seed: int = 0, width: float = 1.5) -> dict[str, Tensor]:
    """Maps with a known pointing-game answer for (N, 2) points: (N, 48, 48) each.

    ``"oracle"``: a Gaussian bump of standard deviation ``width`` px at the point (a hit);
    ``"other landmark"``: the same bump at ``other`` (a miss when ``other`` is farther than the
    tolerance); ``"random"``: i.i.d. uniform values (chance: the disk's share of the crop);
    ``"centre"``: a bump at the crop's centre (what "look at the middle" scores).
    """
    rows = torch.arange(SIZE, dtype=torch.float32)[:, None]
    cols = torch.arange(SIZE, dtype=torch.float32)[None, :]

    def bump(p: Tensor, sigma: float) -> Tensor:
        d2 = (cols[None] - p[:, 0, None, None]) ** 2 + (rows[None] - p[:, 1, None, None]) ** 2
        return torch.exp(-d2 / (2 * sigma**2))

    n = points.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    centre = torch.full((n, 2), (SIZE - 1) / 2)
    return {
        "oracle": bump(points, width),
        "other landmark": bump(other, width),
        "random": torch.rand(n, SIZE, SIZE, generator=gen),
        "centre": bump(centre, SIZE / 4),
    }


# --------------------------------------------------------------------------- drawing


def _mark_points(ax: Any, points: Tensor | None, tolerance: int | None = None, colour: str = "#33ff99") -> None:
    if points is None:
        return
    pts = torch.as_tensor(points).reshape(-1, 2)
    for x, y in pts.tolist():
        if math.isnan(x):
            continue
        ax.plot([x], [y], marker="+", color=colour, ms=7, mew=1.5)
        if tolerance:
            ax.add_patch(Circle((x, y), tolerance, fill=False, color=colour, lw=0.8))


def method_grid(
    images: Tensor,
    columns: dict[str, Tensor],
    row_titles: Sequence[str],
    *,
    points: Tensor | None = None,
    tolerance: int | None = None,
    size: float = 1.25,
    suptitle: str | None = None,
    overlay: bool = False,
) -> Figure:
    """Images in the first column, then one column per method, each on ONE colour scale with a colourbar.

    ``columns`` maps a column title to (N, h, w) maps (any resolution; drawn on the image grid).
    Within a column every row shares the scale (:func:`camlib.plotting.map_scale` of the column),
    so faces and non-faces are compared directly; across columns the units differ (a logit drop,
    a gradient, a weighted activation), so each column has its own colourbar. A map that is zero
    everywhere says so. ``points`` (N, k, 2) marks landmarks (with a circle of radius
    ``tolerance`` when given); ``overlay=True`` draws the maps over the image in grey.
    """
    n = images.shape[0]
    ncols = 1 + len(columns)
    fig = Figure(figsize=(size * ncols + 0.2, size * n + 0.9 + (0.3 if suptitle else 0.0)), layout="constrained")
    axes = fig.subplots(n, ncols, squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(to_display(images[i]))
        ax.set_axis_off()
        ax.set_title(row_titles[i], fontsize=7)
        _mark_points(ax, None if points is None else points[i])
    for j, (title, maps) in enumerate(columns.items(), start=1):
        maps = torch.as_tensor(maps).detach().float()
        vmin, vmax, cmap = map_scale([m for m in maps])
        artist = None
        for i in range(n):
            artist = draw_map(axes[i, j], maps[i], image=images[i] if overlay else None, vmin=vmin, vmax=vmax,
                              cmap=cmap, title=title if i == 0 else None)
            _mark_points(axes[i, j], None if points is None else points[i], tolerance)
        bar = fig.colorbar(artist, ax=axes[:, j].tolist(), location="bottom", shrink=0.9, aspect=12, pad=0.01)
        bar.ax.tick_params(labelsize=6, rotation=45)
        bar.locator = MaxNLocator(3)
        bar.update_ticks()
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


def landmark_figure(
    images: Tensor, points: Tensor, maps: dict[str, Tensor], row_titles: Sequence[str], landmark: str = "left_eye"
) -> Figure:
    """Landmark maps per method with the landmark (+) and the tolerance circle drawn on each panel."""
    k = ONET_LANDMARKS.index(landmark)
    return method_grid(images, maps, row_titles, points=points[:, k : k + 1], tolerance=TOLERANCE,
                       suptitle=f"where O-Net looks to place the {landmark.replace('_', ' ')} "
                                f"(+ = the point, circle = {TOLERANCE} px tolerance)")


def key_figure() -> Figure:
    """Faces and non-faces, the face score explained by the pixel methods and Grad-CAM at two layers.

    Rows: :func:`showcase`. Columns: occlusion, saliency, Integrated Gradients, guided
    backpropagation, then Grad-CAM, Grad-CAM++ and Score-CAM at ``prelu3`` (8 x 8) and Grad-CAM at
    ``prelu4`` (3 x 3), each column on one colour scale.
    """
    data = showcase()
    model = camlib.models.load_model("onet")
    x = data.images
    columns: dict[str, Tensor] = {}
    for method in available(("occlusion", "saliency", "integrated_gradients", "guided_backprop")):
        columns[LABELS[method]] = showcase_face_map(method)
    for method, layer in (("grad_cam", "prelu3"), ("grad_cam_pp", "prelu3"), ("score_cam", "prelu3"),
                          ("grad_cam", "prelu4")):
        if method in available((method,)):
            columns[f"{LABELS[method]}\n{layer}"] = showcase_face_map(method, layer)
    with torch.no_grad():
        p = model.outputs(x).face_probability
    titles = [f"{name}\np(face) {float(q):.3f}" for name, q in zip(data.names, p)]
    return method_grid(x, columns, titles,
                       suptitle="O-Net's face logit explained on faces (top four) and non-faces (bottom two); "
                                "one colour scale per column")


# --------------------------------------------------------------------------- the optional ImageNet cell


def imagenet_analysis(model: nn.Module, x: Tensor, layers: Sequence[str] = ("layer3", "layer4")) -> tuple[Figure, str]:
    """The capstone's analysis on a torchvision ImageNet classifier: maps and the Grad-CAM++ bound.

    ``x`` is one ImageNet-normalised photograph (1, 3, H, W) (:func:`camlib.data.photo`). Returns a
    figure (the photograph, occlusion, saliency, Integrated Gradients, Grad-CAM, Grad-CAM++ and
    XGrad-CAM at each of ``layers``) and a text: the predicted class, the share of negative
    activations at each layer and the share of channels where the Grad-CAM+ sandwich (docs/math.md
    7.2) holds. The explained class is the argmax. Works with any weights (the tests use random ones).
    """
    with torch.no_grad():
        logits = model(x)
    c = int(logits[0].argmax())
    names = getattr(model, "output_names", None)
    label = names[c] if names is not None else f"class {c}"
    baseline = torch.zeros_like(x)  # the ImageNet mean colour in normalised units
    size = tuple(x.shape[-2:])
    columns: dict[str, Tensor] = {
        "occlusion": camlib.metrics.to_map(camlib.occlusion(model, x, target=c, patch=32, stride=16, baseline=baseline)),
        "saliency": camlib.metrics.to_map(camlib.saliency(model, x, target=c)),
        "Integrated Gradients": camlib.metrics.to_map(
            camlib.integrated_gradients(model, x, target=c, baseline=baseline, steps=16)),
    }
    lines = [f"predicted class: {label} (index {c}, logit {float(logits[0, c]):.2f})"]
    for layer in layers:
        gc = camlib.grad_cam(model, x, layer, target=c)
        pp = camlib.grad_cam_pp(model, x, layer, target=c)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*negative activations.*")
            xg = camlib.xgrad_cam(model, x, layer, target=c)
        for title, res in (("Grad-CAM", gc), ("Grad-CAM++", pp), ("XGrad-CAM", xg)):
            columns[f"{title} {layer}"] = camlib.metrics.to_map(res, size)
        a, g = gc.activations.double(), gc.gradients.double()
        s = a.flatten(2).sum(-1)
        w_plus = g.clamp_min(0).flatten(2).sum(-1)
        g_max = g.flatten(2).amax(-1)
        active = w_plus > 0
        w_pp = pp.weights.double()
        holds = (w_pp <= w_plus / 2 * (1 + 1e-5) + 1e-12) & (2 + s * g_max > 0) & (
            w_pp >= w_plus / (2 + s * g_max) * (1 - 1e-5) - 1e-12)
        share = float(holds[active].double().mean()) if bool(active.any()) else float("nan")
        lines.append(f"{layer}: negative activations {100 * float((a < 0).double().mean()):.1f} %, "
                     f"Grad-CAM+ sandwich holds in {100 * share:.1f} % of {int(active.sum())} channels "
                     f"with a positive gradient")
    fig = method_grid(x, columns, [label], size=1.6, overlay=True)
    return fig, "\n".join(lines)
