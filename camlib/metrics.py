"""Evaluation of explanations: localisation, faithfulness and the randomisation sanity check.

Every metric takes a batch and returns a :class:`MetricResult` holding one value per sample
(``.values``, shape ``(N,)``) and their mean (``.mean``). Each metric documents exactly one
convention (tie rule, substrate, score space, empty-mask value), because the papers and the peer
libraries disagree on all of them.

An *explanation* is any of

* a :class:`camlib.CamResult` (its ``.map``, i.e. ``relu(raw)``, is used),
* a :class:`camlib.Attribution` (its ``.values`` summed over the channel axis),
* a tensor ``(N, h, w)`` (one map per image), ``(N, C, H, W)`` (summed over ``C``) or ``(h, w)``.

Maps coarser than the image or mask are upsampled bilinearly (``align_corners=False``) before
they are compared with pixels; :func:`to_map` does that and can be called directly.

Every forward pass a metric makes runs under ``torch.no_grad()`` and camlib's model guard: in
eval mode, as the methods explain it, with every module's mode, ``requires_grad``, ``.grad`` and
buffer left as it was. Models, inputs, targets and scores are checked as in the methods (the
same mistake gets the same error), and a map with NaN or infinite values is refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._hooks import model_guard, outside_inference_mode
from ._targets import (
    baseline_like,
    check_count,
    check_input,
    check_model,
    check_real,
    check_score,
    check_seed,
    find_layer,
    resolve_target,
    run_model,
    select_score,
)
from . import substrates as _substrates
from .postprocess import upsample
from .results import Attribution, CamResult

__all__ = [
    "MetricResult",
    "RandomizationResult",
    "to_map",
    "pointing_game",
    "energy_inside",
    "iou",
    "auc",
    "blur",
    "deletion",
    "insertion",
    "average_drop",
    "increase_in_confidence",
    "spearman",
    "randomization_test",
    "by_class",
    "scaled_tolerance",
    "raw_map",
    "ClassDiscrimination",
    "class_discrimination",
]

# ---------------------------------------------------------------------------------------------
# result type and input handling
# ---------------------------------------------------------------------------------------------


@dataclass
class MetricResult:
    """One metric on a batch: per-sample ``values`` (N,) and their ``mean``.

    ``extras`` holds metric-specific detail, e.g. ``"curves"`` (N, T) and ``"fractions"`` (T,)
    for :func:`deletion` / :func:`insertion`, or ``"per_channel"`` (N, K) for the XGrad-CAM
    sensitivity violation.
    """

    name: str
    values: Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean of ``values`` over the batch (a Python float)."""
        return float(self.values.double().mean()) if self.values.numel() else 0.0

    def __float__(self) -> float:
        return self.mean

    def __repr__(self) -> str:
        return f"MetricResult({self.name}: mean={self.mean:.4g} over {self.values.numel()} samples)"


def to_map(explanation: Any, size: Sequence[int] | None = None) -> Tensor:
    """Return one 2-D map per sample, shape ``(N, h, w)``, optionally upsampled to ``size``.

    ``CamResult`` -> ``.map``; ``Attribution`` -> ``values.sum(dim=1)`` (sum over channels, so a
    signed attribution keeps its sign); tensor ``(N,C,H,W)`` -> sum over ``C``; ``(N,h,w)`` as is;
    ``(h,w)`` -> ``(1,h,w)``. With ``size=(H, W)`` the map is resized bilinearly
    (``align_corners=False``, :func:`camlib.upsample`). The result is a detached floating-point
    tensor; an empty map or one with NaN or infinite values raises a ValueError.
    """
    if isinstance(explanation, CamResult):
        maps = explanation.map
    elif isinstance(explanation, Attribution):
        values = explanation.values
        if values.dim() != 4:
            raise ValueError(
                f"Attribution.values must be (N, C, H, W), got shape {tuple(values.shape)}; "
                "pass a tensor map (N, H, W) instead."
            )
        maps = values.sum(dim=1)
    elif isinstance(explanation, Tensor):
        if explanation.dim() == 4:
            maps = explanation.sum(dim=1)
        elif explanation.dim() == 3:
            maps = explanation
        elif explanation.dim() == 2:
            maps = explanation[None]
        else:
            raise ValueError(
                f"a map tensor must be (N,h,w), (N,C,H,W) or (h,w); got shape {tuple(explanation.shape)}."
            )
    else:
        raise TypeError(
            f"expected a CamResult, an Attribution or a tensor, got {type(explanation).__name__}; "
            "pass the object a camlib method returned, or its .map / .values tensor."
        )
    maps = maps.detach()
    if maps.is_complex():
        raise TypeError(f"a map must hold real numbers; got dtype {maps.dtype}. Pass its .abs() or .real.")
    if not maps.is_floating_point():
        maps = maps.float()
    if maps.numel() == 0:
        raise ValueError(f"the explanation is empty (shape {tuple(maps.shape)}); pass one map per image.")
    if not bool(torch.isfinite(maps).all()):
        raise ValueError(
            "the explanation contains NaN or infinite values, so no metric of it means anything; "
            "find where they came from (camlib's methods give finite maps for finite input)."
        )
    if size is not None and tuple(maps.shape[-2:]) != tuple(size):
        maps = upsample(maps, size)
    return maps


def _check_masks(masks: Tensor, n: int) -> Tensor:
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a bool tensor (N, H, W), got {type(masks).__name__}.")
    if masks.dim() == 2:
        masks = masks[None]
    if masks.dim() != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(masks.shape)}.")
    if masks.shape[0] != n:
        raise ValueError(
            f"{masks.shape[0]} masks for {n} maps: pass one mask per explained image."
        )
    if masks.dtype != torch.bool:
        if masks.is_complex() or not bool(((masks == 0) | (masks == 1)).all()):
            raise ValueError(
                f"masks must be bool (or hold only 0 and 1); got dtype {masks.dtype} with other values. "
                "Threshold a soft mask yourself, e.g. masks > 0.5."
            )
    return masks.bool()


def _maps_and_masks(explanation: Any, masks: Tensor) -> tuple[Tensor, Tensor]:
    masks = masks if isinstance(masks, Tensor) else torch.as_tensor(masks)
    size = masks.shape[-2:]
    maps = to_map(explanation, size)
    masks = _check_masks(masks, maps.shape[0]).to(maps.device)
    return maps, masks


def _explained_target(explanation: Any, target: Any) -> Any:
    """Default the target to the one the explanation was computed for."""
    if target is None and isinstance(explanation, (CamResult, Attribution)):
        return explanation.target
    return target


def by_class(values: Tensor | MetricResult, labels: Tensor) -> dict[int, float]:
    """Mean of per-sample ``values`` within each class: ``{label: mean}``.

    The pointing-game paper (Zhang et al. 2016) averages hits per category and then over
    categories; ``sum(by_class(r, labels).values()) / len(...)`` is that number.
    """
    v = values.values if isinstance(values, MetricResult) else values
    if not isinstance(v, Tensor):
        raise TypeError(f"values must be a MetricResult or a tensor (N,); got {type(v).__name__}.")
    if v.is_floating_point() and not bool(torch.isfinite(v).all()):
        raise ValueError("values contain NaN or infinite values; a class mean of them means nothing.")
    labels = torch.as_tensor(labels).to(v.device)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices; got dtype {labels.dtype}. Use labels.long().")
    if labels.shape != v.shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} differs from values shape {tuple(v.shape)}.")
    return {int(c): float(v[labels == c].double().mean()) for c in torch.unique(labels)}


# ---------------------------------------------------------------------------------------------
# localisation against ground-truth masks
# ---------------------------------------------------------------------------------------------


def _dilate(masks: Tensor, radius: int) -> Tensor:
    if radius <= 0:
        return masks
    r = int(radius)
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy**2 + xx**2) <= r * r).to(dtype=torch.float32, device=masks.device)
    hit = F.conv2d(masks[:, None].float(), disk[None, None], padding=r)[:, 0]
    return hit > 0.5


def scaled_tolerance(size: int | Sequence[int], pixels: float = 15.0, reference: float = 375.0) -> int:
    """Zhang et al.'s pointing-game tolerance scaled to an image: ``round(pixels * min(H, W) / reference)``.

    Zhang et al. (2016) count a maximum within 15 pixels of the object as a hit, on PASCAL VOC
    images whose shorter side is typically 375 pixels (the common 500 x 375 size): 4 % of it.
    camlib keeps that fraction: 3 pixels on the course's 64 x 64 images, 2 on O-Net's 48 x 48
    crops, 9 on 224 x 224 photographs. Pass the result as ``pointing_game(..., tolerance=...)``.
    """
    side = min(size) if isinstance(size, Sequence) else size
    if isinstance(side, bool) or not isinstance(side, (int, float)) or side <= 0:
        raise ValueError(f"size must be a positive image side or (H, W); got {size!r}.")
    pixels = check_real(pixels, "pixels", minimum=0.0)
    reference = check_real(reference, "reference", positive=True)
    return int(round(pixels * float(side) / reference))


def pointing_game(
    explanation: Any, masks: Tensor, tolerance: int = 0, ties: str = "share"
) -> MetricResult:
    """Pointing game (Zhang et al., ECCV 2016): is the map's maximum inside the object?

    The map is upsampled to the mask size. Let ``P = {p : map[p] == max(map)}`` be the set of
    maximal pixels. Per sample the value is

    * ``ties="share"`` (default): ``|P ∩ mask| / |P|``, the hit probability when ties are broken
      uniformly at random. It is 1 or 0 when the maximum is unique, and a constant map scores
      the mask's area fraction, i.e. chance, instead of a free hit;
    * ``ties="any"``: 1 if any maximal pixel is inside; ``"all"``: 1 if all are;
      ``"first"``: the first maximal pixel in raster order (what ``argmax`` returns).

    ``tolerance`` (pixels) dilates the mask by a disk of that radius first (the paper uses 15 px
    on VOC). An empty mask gives 0. The mean is over samples; use :func:`by_class` for the
    paper's per-category average.
    """
    if ties not in ("share", "any", "all", "first"):
        raise ValueError(f"ties must be 'share', 'any', 'all' or 'first', got {ties!r}.")
    tolerance = check_count(tolerance, "tolerance (pixels)", minimum=0)
    maps, masks = _maps_and_masks(explanation, masks)
    masks = _dilate(masks, tolerance)
    flat = maps.flatten(1)
    inside = masks.flatten(1)
    is_max = flat == flat.max(dim=1, keepdim=True).values
    if ties == "share":
        values = (is_max & inside).sum(1).double() / is_max.sum(1).double()
    elif ties == "any":
        values = (is_max & inside).any(1).double()
    elif ties == "all":
        values = (is_max <= inside).all(1).double()
    else:
        first = flat.argmax(dim=1)  # torch returns the first maximal index
        values = inside.gather(1, first[:, None])[:, 0].double()
    values = torch.where(inside.any(1), values, torch.zeros_like(values))
    return MetricResult("pointing_game", values.to(maps.dtype), {"ties": ties, "tolerance": tolerance})


def energy_inside(explanation: Any, masks: Tensor) -> MetricResult:
    """Share of the map's positive energy that falls inside the mask.

    ``sum_{p in mask} relu(map[p]) / sum_p relu(map[p])`` with the map upsampled to the mask
    size (the "energy-based pointing game" of Score-CAM, and the Grad-CAM++ localisation
    measure without its bounding box). A map with no positive value, or an empty mask, gives 0.
    """
    maps, masks = _maps_and_masks(explanation, masks)
    pos = maps.clamp_min(0).flatten(1).double()
    total = pos.sum(1)
    inside = (pos * masks.flatten(1)).sum(1)
    values = torch.where(total > 0, inside / total.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(total))
    return MetricResult("energy_inside", values.to(maps.dtype))


def iou(explanation: Any, masks: Tensor, threshold: float = 0.2) -> MetricResult:
    """Intersection over union of the thresholded map and the mask.

    The map, upsampled to the mask size, is binarised as ``map > threshold * max(map)``
    (per image; the CAM paper keeps the region above 20 % of the maximum, Grad-CAM uses 15 %),
    then ``|region ∩ mask| / |region ∪ mask|``. No box is fitted: the pixel region itself is
    compared. A map whose maximum is <= 0 selects no pixel. An empty union (empty region and
    empty mask) gives 0, like every localisation metric here on an empty mask.
    """
    threshold = check_real(threshold, "threshold")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold is a fraction of the maximum in [0, 1), got {threshold}.")
    maps, masks = _maps_and_masks(explanation, masks)
    flat = maps.flatten(1)
    peak = flat.max(dim=1, keepdim=True).values
    region = (flat > threshold * peak) & (peak > 0)
    inside = masks.flatten(1)
    inter = (region & inside).sum(1).double()
    union = (region | inside).sum(1).double()
    values = torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(union))
    return MetricResult("iou", values.to(maps.dtype), {"threshold": float(threshold)})


# ---------------------------------------------------------------------------------------------
# faithfulness: deletion / insertion (RISE) and confidence drop (Grad-CAM++)
# ---------------------------------------------------------------------------------------------


def auc(curves: Tensor) -> Tensor:
    """Area under curves sampled on a uniform grid of [0, 1] (trapezoid rule, RISE code).

    For ``T`` points ``c_0..c_{T-1}`` at ``t = i/(T-1)``:
    ``auc = (sum_i c_i - c_0/2 - c_{T-1}/2) / (T - 1)``; works on the last axis. A constant
    curve ``p`` gives ``p``.
    """
    if not isinstance(curves, Tensor):
        raise TypeError(f"curves must be a tensor (..., T); got {type(curves).__name__}. Use torch.as_tensor.")
    if curves.ndim == 0 or curves.shape[-1] < 2:
        raise ValueError("a curve needs at least 2 points to have an area.")
    if curves.is_complex() or curves.dtype == torch.bool:
        raise TypeError(f"curves must hold real numbers; got dtype {curves.dtype}.")
    if curves.is_floating_point() and not bool(torch.isfinite(curves).all()):
        raise ValueError("curves contain NaN or infinite values; their area means nothing.")
    if not curves.is_floating_point():
        curves = curves.double()
    return (curves.sum(-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / (curves.shape[-1] - 1)


def blur(x: Tensor, sigma: float = 5.0, kernel: int = 11) -> Tensor:
    """Gaussian blur of an image batch (N,C,H,W), separable, reflect padding.

    RISE's insertion substrate uses ``kernel=11, sigma=5``. The kernel is
    ``exp(-d^2 / (2 sigma^2))`` normalised to sum 1, so a constant image is unchanged.
    """
    x = check_input(x)
    kernel = check_count(kernel, "kernel")
    if kernel % 2 != 1:
        raise ValueError(f"kernel must be an odd positive size, got {kernel}.")
    sigma = check_real(sigma, "sigma", positive=True)
    d = torch.arange(kernel, dtype=x.dtype, device=x.device) - kernel // 2
    g = torch.exp(-(d**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    pad = kernel // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    y = F.pad(x, (pad, pad, 0, 0), mode=mode)
    y = F.conv2d(y, g.view(1, 1, 1, kernel).expand(c, 1, 1, kernel), groups=c)
    y = F.pad(y, (0, 0, pad, pad), mode=mode)
    return F.conv2d(y, g.view(1, 1, kernel, 1).expand(c, 1, kernel, 1), groups=c)


def _substrate(x: Tensor, substrate: Any) -> Tensor | None:
    """The substrate image, or None for one that depends on the removed pixels (ROAD, a function)."""
    if isinstance(substrate, str) or (callable(substrate) and not isinstance(substrate, Tensor)):
        if not _substrates.is_fixed(substrate):
            return None
        return _substrates.substrate_image(x, substrate)
    return baseline_like(substrate, x, "substrate")


def _maps_for(explanation: Any, x: Tensor) -> Tensor:
    n, _, h, w = x.shape
    maps = to_map(explanation, (h, w)).to(x.device)
    if maps.shape[0] != n:
        raise ValueError(f"{maps.shape[0]} maps for {n} images: pass one explanation per image.")
    return maps


#: Orders of deletion and insertion: most relevant first, least relevant first.
ORDERS: tuple[str, ...] = ("morf", "lerf")


def _ranks(maps: Tensor, seed: int) -> Tensor:
    """Rank of every pixel (0 = most salient), ties broken by a seeded random permutation."""
    n, p = maps.shape[0], maps[0].numel()
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(p, generator=gen).to(maps.device)
    flat = maps.flatten(1)[:, perm]
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    order = perm[order]  # pixel indices, most salient first
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(p, device=maps.device).expand(n, p).contiguous())
    return ranks


def _curves(
    model: nn.Module,
    x: Tensor,
    explanation: Any,
    target: Any,
    steps: int,
    substrate: Any,
    score: str,
    batch_size: int,
    seed: int,
    insert: bool,
    order: str = "morf",
) -> tuple[Tensor, Tensor, Tensor]:
    model = check_model(model)
    check_score(score, model)
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    seed = check_seed(seed)
    if order not in ORDERS:
        raise ValueError(f"order must be 'morf' (most relevant first) or 'lerf' (least relevant first); got {order!r}.")
    if isinstance(substrate, str) or (callable(substrate) and not isinstance(substrate, Tensor)):
        substrate = _substrates.check_substrate(substrate)
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        n, _, h, w = x.shape
        maps = _maps_for(explanation, x)
        base = _substrate(x, substrate)
        logits = run_model(model, x, batch_size)
        tgt = resolve_target(_explained_target(explanation, target), logits, model)
        ranks = _ranks(maps, seed).view(n, 1, h, w)
        if order == "lerf":  # the same ranking, reversed (ties included)
            ranks = h * w - 1 - ranks
        counts = [round(k * h * w / steps) for k in range(steps + 1)]
        rows = []
        for k in counts:
            moved = ranks < k  # the k first pixels of the order
            removed = ~moved if insert else moved
            gone = h * w - k if insert else k
            if gone == 0:  # the image itself: its scores are known
                out = logits
            elif base is not None:
                out = run_model(model, torch.where(removed, base, x), batch_size)
            else:  # ROAD or a function: a fill for this set of removed pixels (noise seeded by its size)
                out = run_model(model, _substrates.fill(x, removed[:, 0], substrate, seed=seed + gone), batch_size)
            rows.append(select_score(out, tgt, score, model))
    curves = torch.stack(rows, dim=1)
    fractions = torch.tensor(counts, dtype=curves.dtype) / (h * w)
    return curves, fractions, tgt


@outside_inference_mode
def deletion(
    model: nn.Module,
    x: Tensor,
    explanation: Any,
    target: Any = None,
    steps: int = 64,
    substrate: Any = "mean",
    score: str = "softmax",
    batch_size: int = 64,
    seed: int = 0,
    order: str = "morf",
) -> MetricResult:
    """Deletion curve and its AUC (Petsiuk et al., RISE, BMVC 2018). Lower is better (for ``"morf"``).

    Pixels (all channels of a location together) are ranked by the map upsampled to the image,
    most salient first; ties are broken by a random permutation fixed by ``seed``. At step
    ``k = 0..steps`` the ``round(k*H*W/steps)`` first pixels of the order are replaced by the
    substrate (:mod:`camlib.substrates`): ``"mean"`` (default: each image's mean colour),
    ``"blur"``, ``"road"`` (ROAD's noisy linear imputation, its noise seeded by ``seed`` plus the
    number of removed pixels), ``"black"``, ``"grey"``, a number, a tensor broadcastable to ``x``
    or a function ``(x, removed) -> images``. The default is the substrate that passes the
    known-answer check on the course's shapes (notebook 08: a constant fill leaves the object's
    silhouette, which the model still recognises). ``order="morf"`` removes the most relevant
    pixels first; ``"lerf"`` the least relevant first (the same ranking reversed), for which a
    faithful map keeps the score **high**; with the same substrate its curve is the insertion
    curve read backwards. The curve records the score of the target class: the **softmax
    probability** by default (``score="logit"`` / ``"log_softmax"`` possible). The target
    defaults to the explanation's own target, else the model's argmax on ``x``. Value per
    sample: :func:`auc` of the curve (trapezoid on the uniform grid ``k/steps``). Cost: ``steps``
    forward passes per image after the first. ``extras``: ``"curves"`` (N, steps+1),
    ``"fractions"`` (steps+1,), ``"target"``, ``"score_kind"``, ``"substrate"``, ``"order"``.
    """
    curves, fractions, tgt = _curves(model, x, explanation, target, steps, substrate, score, batch_size, seed, False, order)
    extras = {"curves": curves, "fractions": fractions, "target": tgt, "score_kind": score, "substrate": substrate, "order": order}
    return MetricResult("deletion", auc(curves), extras)


@outside_inference_mode
def insertion(
    model: nn.Module,
    x: Tensor,
    explanation: Any,
    target: Any = None,
    steps: int = 64,
    substrate: Any = "blur",
    score: str = "softmax",
    batch_size: int = 64,
    seed: int = 0,
    order: str = "morf",
) -> MetricResult:
    """Insertion curve and its AUC (Petsiuk et al., RISE, BMVC 2018). Higher is better.

    Starts from the substrate (default ``"blur"``: Gaussian blur of ``x`` with ``kernel=11,
    sigma=5`` as in the RISE code, the substrate that passes the known-answer check of notebook
    08 for this order; any substrate of :func:`deletion`) and puts back the original pixels,
    most salient first (``order="lerf"``: least salient first), in ``steps`` equal chunks.
    Ranking, tie rule, score space (softmax probability by default), target and AUC are as in
    :func:`deletion`; with the same substrate, ranking and steps, the insertion curve is the
    curve of ``deletion(..., order="lerf")`` read backwards (docs/math.md 10.16). Cost:
    ``steps`` forward passes per image after the first. ``extras`` as in :func:`deletion`.
    """
    curves, fractions, tgt = _curves(model, x, explanation, target, steps, substrate, score, batch_size, seed, True, order)
    extras = {"curves": curves, "fractions": fractions, "target": tgt, "score_kind": score, "substrate": substrate, "order": order}
    return MetricResult("insertion", auc(curves), extras)


def _confidence(
    model: nn.Module, x: Tensor, explanation: Any, target: Any, score: str, baseline: Any, batch_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    model = check_model(model)
    check_score(score, model)
    batch_size = check_count(batch_size, "batch_size")
    with model_guard(model), torch.no_grad():
        x = check_input(x, model)
        n = x.shape[0]
        maps = _maps_for(explanation, x).clamp_min(0)
        base = baseline_like(baseline, x)
        peak = maps.flatten(1).max(dim=1).values.view(n, 1, 1)
        weight = torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))
        masked = base + weight[:, None].to(x.dtype) * (x - base)
        logits = run_model(model, x, batch_size)
        tgt = resolve_target(_explained_target(explanation, target), logits, model)
        y = select_score(logits, tgt, score, model)
        o = select_score(run_model(model, masked, batch_size), tgt, score, model)
    return y, o, tgt


@outside_inference_mode
def average_drop(
    model: nn.Module,
    x: Tensor,
    explanation: Any,
    target: Any = None,
    score: str = "softmax",
    relative: bool = True,
    baseline: float | Tensor = 0.0,
    batch_size: int = 64,
) -> MetricResult:
    """Average Drop % (Chattopadhay et al., Grad-CAM++, WACV 2018). Lower is better.

    ``L`` = positive part of the map, upsampled to the image and divided by its maximum (an
    all-zero map gives ``L = 0``). ``O`` = score of the target on the explanation-masked image
    ``baseline + L * (x - baseline)`` (``baseline=0`` is the paper's ``L ∘ I``); ``Y`` = score
    on ``x``; softmax probability by default. Per sample (the paper's relative definition):
    ``100 * max(0, Y - O) / Y``. With ``relative=False``: ``max(0, Y - O)`` (the pytorch-grad-cam
    convention). Relative drop needs ``Y > 0``: a logit score with ``Y <= 0`` raises. Cost: 2
    forward passes per image.
    """
    if not isinstance(relative, bool):
        raise TypeError(f"relative must be True or False; got {relative!r}.")
    y, o, tgt = _confidence(model, x, explanation, target, score, baseline, batch_size)
    drop = (y - o).clamp_min(0)
    if relative:
        if bool((y <= 0).any()):
            raise ValueError(
                "relative average drop divides by the score Y, which is <= 0 for some images: "
                "use score='softmax' or relative=False."
            )
        drop = 100.0 * drop / y
    return MetricResult("average_drop", drop, {"Y": y, "O": o, "target": tgt, "relative": relative})


@outside_inference_mode
def increase_in_confidence(
    model: nn.Module,
    x: Tensor,
    explanation: Any,
    target: Any = None,
    score: str = "softmax",
    baseline: float | Tensor = 0.0,
    batch_size: int = 64,
) -> MetricResult:
    """% Increase in Confidence (Chattopadhay et al., Grad-CAM++). Higher is better.

    Per sample ``100 * [O > Y]`` (strict), with ``O`` and ``Y`` exactly as in
    :func:`average_drop`; the mean is the percentage of images whose score rises when only the
    explained region is kept. Cost: 2 forward passes per image.
    """
    y, o, tgt = _confidence(model, x, explanation, target, score, baseline, batch_size)
    return MetricResult("increase_in_confidence", 100.0 * (o > y).to(y.dtype), {"Y": y, "O": o, "target": tgt})


# ---------------------------------------------------------------------------------------------
# sanity check: cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018)
# ---------------------------------------------------------------------------------------------


def _average_ranks(v: Tensor) -> Tensor:
    """Ranks along the last dimension of a (N, P) tensor, 0-based; ties share their mean rank."""
    n, p = v.shape
    s, order = torch.sort(v, dim=1, stable=True)
    new_group = torch.ones_like(s, dtype=torch.bool)
    new_group[:, 1:] = s[:, 1:] != s[:, :-1]
    offsets = torch.arange(n, device=v.device).unsqueeze(1) * p
    group = (torch.cumsum(new_group.long(), dim=1) - 1 + offsets).flatten()
    position = torch.arange(p, dtype=torch.float64, device=v.device).repeat(n)
    sums = torch.zeros(n * p, dtype=torch.float64, device=v.device).index_add_(0, group, position)
    counts = torch.zeros(n * p, dtype=torch.float64, device=v.device).index_add_(0, group, torch.ones_like(position))
    sorted_ranks = (sums / counts.clamp(min=1))[group].view(n, p)
    return torch.empty_like(sorted_ranks).scatter_(1, order, sorted_ranks)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation per sample between two batches of maps, shape (N,).

    Pearson correlation of the average ranks (ties share the mean of their ranks) of the
    flattened maps; maps with identical rankings give exactly 1. Convention for constant maps,
    where the correlation is 0/0: both constant -> 1 (the orderings agree: everything is
    tied), exactly one constant -> 0.
    """
    a, b = to_map(a), to_map(b)
    if a.shape != b.shape:
        raise ValueError(f"maps to compare have shapes {tuple(a.shape)} and {tuple(b.shape)}; they must match.")
    ra = _average_ranks(a.detach().flatten(1).cpu())
    rb = _average_ranks(b.detach().flatten(1).cpu())
    ca, cb = ra - ra.mean(dim=1, keepdim=True), rb - rb.mean(dim=1, keepdim=True)
    na, nb = ca.norm(dim=1), cb.norm(dim=1)
    corr = ((ca * cb).sum(dim=1) / (na * nb).clamp_min(torch.finfo(torch.float64).tiny)).clamp(-1.0, 1.0)
    same = (ra == rb).all(dim=1) | ((na == 0) & (nb == 0))  # identical orderings: exactly 1
    one_constant = (na == 0) ^ (nb == 0)
    return torch.where(same, torch.ones_like(corr), torch.where(one_constant, torch.zeros_like(corr), corr))


@dataclass
class RandomizationResult:
    """Cascading randomisation: similarity of each step's maps to the trained model's maps.

    ``steps[0] == "none"`` (trained model, similarity 1); ``steps[i]`` is the name of the
    ``i``-th layer re-initialised, all layers before it in the list staying randomised.
    ``spearman`` and ``spearman_abs`` are (S, N): rank correlation of the maps and of their
    absolute values. ``maps[i]`` is the (N, h, w) map at step ``i`` (for figures).
    """

    steps: list[str]
    spearman: Tensor
    spearman_abs: Tensor
    maps: list[Tensor]
    target: Tensor

    @property
    def mean(self) -> Tensor:
        """Mean signed Spearman correlation per step, shape (S,)."""
        return self.spearman.mean(dim=1)

    @property
    def mean_abs(self) -> Tensor:
        """Mean Spearman correlation of absolute values per step, shape (S,)."""
        return self.spearman_abs.mean(dim=1)


def _param_layers(model: nn.Module) -> list[str]:
    names = [
        name
        for name, m in model.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    ]
    return names[::-1]


def _reinit(module: nn.Module, seed: int) -> None:
    """Re-initialise every parameter of ``module`` (its submodules' too, so that a named block such
    as ``"features"`` is randomised whole), each submodule by its own ``reset_parameters()``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in module.modules():
            own = list(sub.parameters(recurse=False))
            if not own:
                continue
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            else:
                with torch.no_grad():
                    for p in own:
                        p.normal_(0.0, 0.02)


@outside_inference_mode
def randomization_test(
    method: Callable[..., Any],
    model: nn.Module,
    x: Tensor,
    target: Any = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    **method_kwargs: Any,
) -> RandomizationResult:
    """Cascading model-parameter randomisation test (Adebayo et al., NeurIPS 2018).

    ``method(model, x, target=..., **method_kwargs)`` is any camlib method (e.g.
    ``camlib.grad_cam`` with ``layer="features"``). The model is deep-copied (the caller's model
    is never modified) and its layers are re-initialised one after another **from the top
    (logits) down**, cumulatively: by default every module that owns parameters, in reverse
    registration order; or the names in ``layers``, top first. Layer ``i`` is re-initialised
    with its own ``reset_parameters()`` under the seed ``seed + i`` (global RNG state restored
    afterwards), so the result is deterministic by ``seed``. The target is fixed to the trained
    model's (argmax if ``None``) so every step explains the same class. Similarity: Spearman
    rank correlation (:func:`spearman`) between the trained map and each step's map at the
    method's own resolution, signed and of absolute values. A method that passes the check
    shows similarity falling towards 0 as more layers are randomised.
    """
    if not callable(method):
        raise TypeError("method must be a camlib method such as camlib.grad_cam.")
    seed = check_seed(seed)
    model = check_model(model)
    x = check_input(x)
    if method_kwargs.get("layer") is not None:
        method_kwargs["layer"] = find_layer(model, method_kwargs["layer"])[0]
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    if layers is None:
        order = _param_layers(work)
    elif isinstance(layers, (str, nn.Module)):
        raise TypeError("layers must be a sequence of layer names, top first, e.g. ['fc', 'features.2'].")
    else:
        order = [find_layer(work, name, "layers")[0] for name in layers]
        frozen = [name for name in order if not any(True for _ in modules[name].parameters())]
        if frozen:
            raise ValueError(
                f"layers {frozen} have no parameters, so randomising them would change nothing and "
                "the test would report a similarity of 1 for them. Name modules that own weights, "
                f"e.g. {_param_layers(work)[:4]}."
            )
    first = method(work, x, target=target, **method_kwargs)
    if hasattr(first, "target"):
        tgt = first.target
    else:
        with model_guard(work), torch.no_grad():
            tgt = resolve_target(target, run_model(work, check_input(x, work)), work)
    ref = to_map(first)
    maps = [ref]
    rho = [spearman(ref, ref)]
    rho_abs = [spearman(ref.abs(), ref.abs())]
    for i, name in enumerate(order):
        _reinit(modules[name], seed + i)
        m = to_map(method(work, x, target=tgt, **method_kwargs))
        maps.append(m)
        rho.append(spearman(ref, m))
        rho_abs.append(spearman(ref.abs(), m.abs()))
    return RandomizationResult(["none", *order], torch.stack(rho), torch.stack(rho_abs), maps, tgt)


# ---------------------------------------------------------------------------------------------
# class discrimination (docs/math.md 10.22)
# ---------------------------------------------------------------------------------------------


def raw_map(explanation: Any) -> Tensor:
    """The signed map of an explanation at its own resolution, shape ``(N, h, w)``.

    ``CamResult`` -> ``.raw`` (before the ReLU); ``Attribution`` -> ``values`` summed over the
    channels; a tensor as in :func:`to_map`. Used where the sign matters (cosine similarity).
    """
    if isinstance(explanation, CamResult):
        return to_map(explanation.raw)
    return to_map(explanation)


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of two batches of maps (N, h, w): 1 if both are zero, 0 if exactly one is."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = ((a * b).sum(1) / (na * nb).clamp_min(torch.finfo(torch.float64).tiny)).clamp(-1.0, 1.0)
    zero_a, zero_b = na == 0, nb == 0
    return torch.where(zero_a & zero_b, torch.ones_like(cos), torch.where(zero_a | zero_b, torch.zeros_like(cos), cos))


@dataclass
class ClassDiscrimination:
    """How much a method's maps depend on the class they explain.

    For image ``n`` with true class ``t_n`` and every wrong class ``c != t_n``:

    * ``wrong_energy`` (N,): mean over wrong classes of the energy inside the object of the map
      that explains ``c`` (:func:`energy_inside`; low is good; ``None`` without masks);
    * ``cosine`` (N,): mean over wrong classes of ``cos(M_t, M_c)`` between the signed raw maps
      (:func:`raw_map`, at the method's resolution; low is good; 1 for a class-agnostic method).

    ``energy`` (N, C) and ``cosines`` (N, C) hold every class (``cosines[n, t_n] = 1``).
    """

    wrong_energy: MetricResult | None
    cosine: MetricResult
    energy: Tensor | None
    cosines: Tensor
    target: Tensor


def class_discrimination(explanations: Sequence[Any], masks: Tensor | None, target: Any) -> ClassDiscrimination:
    """Class discrimination of one method: its maps for the true class against its maps for the others.

    ``explanations[c]`` explains class ``c`` for all N images (e.g.
    ``[camlib.grad_cam(model, x, "features", target=c) for c in range(4)]``); a camlib result
    that explains another class raises. ``target`` is the true class of each image (an int or
    N ints). ``masks`` (N, H, W) are the objects of the true classes, or ``None`` to skip the
    energy. The energy measure is :func:`energy_inside` (the energy-based pointing game of
    Score-CAM) applied to a wrong class's map; the similarity is the cosine of the raw maps,
    with 1 when both maps are zero and 0 when exactly one is (docs/math.md 10.22).
    """
    if isinstance(explanations, (CamResult, Attribution, Tensor)) or not isinstance(explanations, Sequence):
        raise TypeError(
            "explanations must be a list with one explanation per class: explanations[c] explains "
            "class c for every image."
        )
    classes = len(explanations)
    if classes < 2:
        raise ValueError("class discrimination needs the maps of at least two classes.")
    raws = [raw_map(e) for e in explanations]
    n = raws[0].shape[0]
    for c, (e, r) in enumerate(zip(explanations, raws)):
        if r.shape != raws[0].shape:
            raise ValueError(f"explanations[{c}] has maps of shape {tuple(r.shape)}, explanations[0] {tuple(raws[0].shape)}.")
        if isinstance(e, (CamResult, Attribution)) and not bool((e.target.cpu() == c).all()):
            raise ValueError(f"explanations[{c}] must explain class {c} for every image; it explains {e.target.tolist()}.")
    if target is None:
        raise ValueError("target must give the true class of each image (an int or N ints); it is not guessed.")
    t = resolve_target(target, torch.zeros(n, classes))
    pick = torch.arange(n)
    stacked = torch.stack(raws, dim=1)  # (N, C, h, w)
    own = stacked[pick, t.cpu()]
    cosines = torch.stack([_cosine(own, stacked[:, c]) for c in range(classes)], dim=1)
    wrong = torch.ones(n, classes, dtype=torch.bool)
    wrong[pick, t.cpu()] = False
    cos_wrong = (cosines * wrong).sum(1) / (classes - 1)
    energy = wrong_energy = None
    if masks is not None:
        energy = torch.stack([energy_inside(e, masks).values.double().cpu() for e in explanations], dim=1)
        wrong_energy = MetricResult("wrong_class_energy", (energy * wrong).sum(1) / (classes - 1))
    return ClassDiscrimination(wrong_energy, MetricResult("wrong_class_cosine", cos_wrong), energy, cosines, t.cpu())
