"""Checks for the exercises of notebook 08 (evaluating explanations).

* :func:`check_pointing_hits` -- pointing game: is the (first) maximum of each map inside its mask?
* :func:`check_energy_inside` -- share of the positive map mass that falls inside the mask,
  ``sum(relu(M) * mask) / sum(relu(M))`` (0 for a map with no positive value).
* :func:`check_curve_auc` -- area under a deletion / insertion curve sampled at ``T`` equally spaced
  fractions of [0, 1], by the trapezoidal rule: ``(sum_t s_t - s_0/2 - s_{T-1}/2) / (T - 1)``.
* :func:`check_paired_interval` -- the 95 % paired percentile bootstrap interval of ``mean(a - b)``.
* :func:`check_substrate_design` (design) -- a fill for removed pixels that passes the known-answer
  check of deletion (the object mask must beat a random map, the centre prior and the inverted mask).
* :func:`check_black_counterexample` (counterexample) -- maps that know nothing about the object
  and still do as well as the object mask on black-fill deletion.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor

from ._check import ExerciseError, compare_outputs, passed

__all__ = [
    "check_pointing_hits",
    "check_energy_inside",
    "check_curve_auc",
    "check_paired_interval",
    "check_substrate_design",
    "check_black_counterexample",
]


def _on_one_thread(check: Callable[..., None]) -> Callable[..., None]:
    """Run a check that scores deletion curves on one thread (see ``camlib.evaluation._one_thread``)."""

    @functools.wraps(check)
    def wrapped(*args, **kwargs):
        from ..evaluation import _one_thread

        with _one_thread():
            return check(*args, **kwargs)

    return wrapped


def _close(a: Tensor, b: Tensor) -> bool:
    a = torch.as_tensor(a)
    return a.shape == b.shape and bool(torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=1e-7))


def _as_float(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Wrap a function returning booleans so that its answer can be compared numerically."""

    def wrapped(*case):
        answer = fn(*case)
        if isinstance(answer, (list, tuple)):
            answer = torch.as_tensor(answer)
        if isinstance(answer, Tensor):
            return answer.to(torch.float64)
        return answer

    return wrapped


# --------------------------------------------------------------------------- pointing game


def _hits_reference(maps: Tensor, masks: Tensor) -> Tensor:
    n = maps.shape[0]
    flat_index = maps.reshape(n, -1).argmax(dim=1)
    return masks.reshape(n, -1).gather(1, flat_index[:, None])[:, 0].bool()


def _hits_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(7)
    cases = []
    for n, h, w in [(12, 6, 6), (10, 4, 7), (9, 8, 5)]:
        maps = torch.rand(n, h, w, generator=generator, dtype=torch.float64)
        masks = torch.zeros(n, h, w, dtype=torch.bool)
        for i in range(n):
            top = int(torch.randint(0, h - 2, (1,), generator=generator))
            left = int(torch.randint(0, w - 2, (1,), generator=generator))
            masks[i, top : top + 3, left : left + 2] = True
            if i % 2 == 0:  # half of the maps peak inside the mask
                maps[i, top + 2, left + 1] = 2.0
            else:  # the other half peak somewhere outside it
                outside = (~masks[i]).nonzero()
                pick = outside[int(torch.randint(0, len(outside), (1,), generator=generator))]
                maps[i, pick[0], pick[1]] = 2.0
        cases.append((maps, masks))
    return cases


def check_pointing_hits(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(maps (N,H,W), masks (N,H,W) bool) -> hits (N,) bool``."""
    name = "pointing_hits"
    hints = [
        (
            lambda got, exp, maps, masks: got.shape == (maps.shape[0], maps.shape[2]) or got.shape == (maps.shape[0], maps.shape[1]),
            "you took the maximum along one axis only; flatten each map to one row "
            "(maps.reshape(N, -1)) and take the argmax of that row.",
        ),
        (
            lambda got, exp, maps, masks: got.numel() == 1 or got.ndim == 0,
            "you returned one value for the whole batch: the answer has one hit (True/False) per image.",
        ),
        (
            lambda got, exp, maps, masks: got.shape != exp.shape,
            "return one boolean per image, shape (N,).",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _swapped(maps, masks)),
            "rows and columns are swapped: a flat index f in a map of width W is row f // W, "
            "column f % W.",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _hits_reference(-maps, masks).double()),
            "you located the minimum of the map; the pointing game looks at its maximum.",
        ),
    ]
    compare_outputs(name, _as_float(fn), lambda *c: _hits_reference(*c).double(), _hits_cases(), hints)
    return passed(name)


def _swapped(maps: Tensor, masks: Tensor) -> Tensor:
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    row, col = flat // w, flat % w
    out = torch.zeros(n, dtype=torch.float64)
    for i in range(n):
        if col[i] < h and row[i] < w:
            out[i] = float(masks[i, col[i], row[i]])
    return out


# --------------------------------------------------------------------------- energy inside the mask


def _energy_reference(maps: Tensor, masks: Tensor) -> Tensor:
    positive = torch.relu(maps)
    total = positive.sum(dim=(1, 2))
    inside = (positive * masks).sum(dim=(1, 2))
    safe = torch.where(total == 0, torch.ones_like(total), total)
    return torch.where(total == 0, torch.zeros_like(total), inside / safe)


def _energy_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(70)
    cases = []
    for n, h, w in [(3, 5, 5), (4, 6, 4)]:
        maps = torch.randn(n, h, w, generator=generator, dtype=torch.float64)  # signed, like raw maps
        masks = torch.rand(n, h, w, generator=generator) < 0.3
        cases.append((maps, masks))
    maps = torch.rand(3, 4, 4, generator=generator, dtype=torch.float64)
    maps[1] = -1.0  # a map with no positive value at all
    masks = torch.rand(3, 4, 4, generator=generator) < 0.5
    cases.append((maps, masks))
    return cases


def check_energy_inside(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``fn(maps (N,H,W), masks (N,H,W) bool) -> share (N,)``."""
    name = "energy_inside"

    def _no_relu(maps, masks):
        total = maps.sum(dim=(1, 2))
        return (maps * masks).sum(dim=(1, 2)) / total

    hints = [
        (
            lambda got, exp, maps, masks: bool(torch.isnan(got).any() or torch.isinf(got).any()),
            "a map with no positive value gives 0/0; define the share as 0 for it (torch.where helps).",
        ),
        (
            lambda got, exp, maps, masks: got.shape != exp.shape,
            "return one number per image, shape (N,): sum over dims (1, 2).",
        ),
        (
            lambda got, exp, maps, masks: _close(got, _no_relu(maps, masks)),
            "the maps here are signed; keep only their positive part (torch.relu) before summing, "
            "as the displayed explanation does.",
        ),
        (
            lambda got, exp, maps, masks: _close(got, masks.double().mean(dim=(1, 2))),
            "this is the share of pixels that lie in the mask; weight each pixel by its map value.",
        ),
        (
            lambda got, exp, maps, masks: _close(
                got, (torch.relu(maps) * masks).sum(dim=(1, 2)) / masks.sum(dim=(1, 2)).clamp(min=1)
            ),
            "you averaged the map over the mask; divide by the map's total positive mass instead, so "
            "that the answer is a share between 0 and 1.",
        ),
    ]
    compare_outputs(name, _as_float(fn), _energy_reference, _energy_cases(), hints, rtol=1e-6, atol=1e-9)
    return passed(name)


# --------------------------------------------------------------------------- AUC of a curve


def _auc_reference(curves: Tensor) -> Tensor:
    t = curves.shape[-1]
    return (curves.sum(dim=-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / (t - 1)


def _auc_cases() -> list[tuple[Tensor]]:
    generator = torch.Generator().manual_seed(700)
    return [
        (torch.rand(3, 11, generator=generator, dtype=torch.float64),),
        (torch.linspace(1.0, 0.0, 5, dtype=torch.float64)[None].repeat(2, 1),),
        (torch.rand(4, 3, generator=generator, dtype=torch.float64),),
        (torch.full((1, 6), 0.8, dtype=torch.float64),),
    ]


def check_curve_auc(fn: Callable[[Tensor], Tensor]) -> None:
    """Check ``fn(curves (N,T)) -> auc (N,)``, the trapezoidal area on a uniform grid over [0, 1]."""
    name = "curve_auc"
    hints = [
        (
            lambda got, exp, c: got.shape != exp.shape,
            "return one area per curve, shape (N,): the T samples lie along the last axis.",
        ),
        (
            lambda got, exp, c: _close(got, c.mean(dim=-1)),
            "the plain mean gives the two end points full weight; in the trapezoidal rule they "
            "count half.",
        ),
        (
            lambda got, exp, c: _close(got, (c.sum(dim=-1) - c[..., 0] / 2 - c[..., -1] / 2) / c.shape[-1]),
            "T samples on [0, 1] are 1/(T - 1) apart, so divide by T - 1, not T.",
        ),
        (
            lambda got, exp, c: _close(got, c.sum(dim=-1)),
            "the samples are spaced 1/(T - 1) apart on [0, 1]: multiply the sum by that spacing.",
        ),
    ]
    compare_outputs(name, fn, _auc_reference, _auc_cases(), hints, rtol=1e-9, atol=1e-12)
    return passed(name)


# --------------------------------------------------------------------------- a paired bootstrap interval


def _paired_cases() -> list[tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(808)
    shared = 3.0 * torch.rand(300, generator=gen, dtype=torch.float64)  # large variation between images
    a = shared + 0.05 + 0.1 * torch.randn(300, generator=gen, dtype=torch.float64)
    b = shared + 0.1 * torch.randn(300, generator=gen, dtype=torch.float64)
    return [(a, b), (a[:80], b[:80])]


def check_paired_interval(fn: Callable[..., tuple[float, float]]) -> None:
    """Check ``fn(a, b, resamples, seed) -> (low, high)``, the 95 % paired percentile bootstrap of ``mean(a - b)``.

    The learner's resampling uses its own random numbers, so the interval is compared with
    camlib's up to the bootstrap's own randomness (a quarter of its width); the exact cases
    (identical methods, a constant difference) must come out exactly.
    """
    from ..statistics import Bootstrap

    name = "paired_interval"

    def call(a: Tensor, b: Tensor) -> tuple[float, float]:
        try:
            out = fn(a.clone(), b.clone(), 2000, 0)
            low, high = (float(v) for v in out)
        except NotImplementedError:
            raise
        except Exception as error:
            raise ExerciseError(
                f"{name}: calling your function on two columns of {a.shape[0]} values raised "
                f"{type(error).__name__}: {error}. It must return two numbers (low, high)."
            ) from error
        return low, high

    a, b = _paired_cases()[0]
    low, high = call(a, a)
    if abs(low) > 1e-12 or abs(high) > 1e-12:
        raise ExerciseError(
            f"{name}: a method compared with itself must give exactly [0, 0]; you got [{low:.4g}, {high:.4g}].\n"
            "Hint: resample the per-image *differences* a - b (or resample images and use the same ones "
            "for a and for b): then every resample's mean difference is 0."
        )
    low, high = call(a, a - 0.1)
    if abs(low - 0.1) > 1e-9 or abs(high - 0.1) > 1e-9:
        raise ExerciseError(
            f"{name}: when b = a - 0.1 on every image, every resample's mean difference is exactly 0.1, "
            f"so the interval is [0.1, 0.1]; you got [{low:.4g}, {high:.4g}].\n"
            "Hint: you resampled a and b separately, as if the two methods had been scored on different "
            "images. Draw one set of image indices per resample and use it for both columns."
        )
    for a, b in _paired_cases():
        low, high = call(a, b)
        ref = Bootstrap(a.shape[0], resamples=2000, seed=0).difference(a, b)
        d = a - b
        if low > high:
            raise ExerciseError(f"{name}: low ({low:.4g}) is above high ({high:.4g}); return (low, high).")
        if abs(low - ref.low) <= 0.25 * ref.width and abs(high - ref.high) <= 0.25 * ref.width:
            continue
        spread = 1.96 * float(d.std())
        unpaired = Bootstrap(a.shape[0], 2000, 0).intervals(torch.stack([a, b], 1))
        unpaired_width = unpaired[0].width + unpaired[1].width
        hint = "compare your interval with the mean of a - b and its standard error."
        if not (low <= float(d.mean()) <= high):
            hint = (
                "the mean difference lies outside your interval: take the 2.5 % and 97.5 % quantiles of "
                "the resampled *means* of a - b."
            )
        elif (high - low) > 0.6 * 2 * spread:
            hint = (
                "your interval is about as wide as the spread of the per-image differences: that describes "
                "single images, not their mean. Average each resample, then take the quantiles of the averages."
            )
        elif (high - low) > 0.5 * unpaired_width:
            hint = (
                "your interval is as wide as if the two methods had been measured on different images: "
                "resample the images once and compute both methods' means on the same resample."
            )
        elif (high - low) < 0.5 * ref.width:
            hint = (
                "your interval is too narrow: a 95 % interval spans the 2.5 % to the 97.5 % quantile of the "
                "resampled means, and each resample draws n images with replacement."
            )
        raise ExerciseError(
            f"{name}: on {a.shape[0]} images the paired 95 % interval should be close to "
            f"width {ref.width:.3g} around the mean difference {ref.mean:.3g}; you got "
            f"[{low:.4g}, {high:.4g}].\nHint: {hint}"
        )
    passed(name)


# --------------------------------------------------------------------------- design a substrate


def _known_answer_images(n: int = 48):
    from .. import data, models

    model = models.load_model("gap")
    shapes = data.test_set()[:n]
    return model, shapes.images, shapes.masks, shapes.labels


@_on_one_thread
def check_substrate_design(fn: Callable[[Tensor, Tensor], Tensor], n: int = 48, steps: int = 8) -> None:
    """Check a substrate ``fn(x, removed) -> images`` with the known-answer check of deletion.

    Deletion (most relevant first) with the learner's fill must rank the object mask (the oracle)
    better than a random map, the centre prior and the inverted mask on the first ``n`` held-out
    images, each paired 95 % interval above 0 (:func:`camlib.evaluation.substrate_check`).
    """
    from ..evaluation import substrate_check

    name = "substrate_design"
    model, x, masks, labels = _known_answer_images(n)
    removed = torch.zeros(2, *x.shape[2:], dtype=torch.bool)
    removed[:, 20:40, 20:40] = True
    try:
        out = fn(x[:2].clone(), removed.clone())
    except NotImplementedError:
        raise
    except Exception as error:
        raise ExerciseError(
            f"{name}: your function raised {type(error).__name__}: {error} on two images with a square removed."
        ) from error
    if not isinstance(out, Tensor) or out.shape != x[:2].shape:
        raise ExerciseError(
            f"{name}: return the filled images, a tensor of the input's shape {tuple(x[:2].shape)}; got "
            f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}."
        )
    if not bool(torch.isfinite(out).all()):
        raise ExerciseError(f"{name}: your fill contains NaN or infinite values.")
    check = substrate_check(model, x, masks, labels, substrates=(fn,), orders=("morf",), steps=steps)
    result = next(iter(check.values()))
    margins = ", ".join(f"{k} by {m.format(3, n=False)}" for k, m in result.margins.items())
    if result.passed:
        print(
            f"Correct: {name} passes the known-answer check: deletion ranks the object mask better than "
            f"the {margins} (n={n})."
        )
        return
    oracle, rnd = result.values["oracle"].mean, result.values["random"].mean
    if result.margins["random"].low <= 0:
        hint = (
            "the model still recognises the object once its pixels are filled, so removing the object first "
            "is no worse than removing random pixels. Does your fill keep the object's outline (one colour "
            "for the whole region, different from its surroundings)? Try a fill that blends each removed "
            "region into what surrounds it."
        )
    else:
        hint = (
            "the oracle beats the random map but not the centre prior or the inverted mask: the fill itself "
            "must not change the score much where nothing relevant was removed (compare the substrate image "
            "with the original background)."
        )
    raise ExerciseError(
        f"{name}: with your fill the deletion AUC is {oracle:.3f} for the oracle and {rnd:.3f} for a random "
        f"map; the oracle is better than the {margins} (n={n}), and every interval must lie above 0.\nHint: {hint}"
    )


# --------------------------------------------------------------------------- a counterexample


@_on_one_thread
def check_black_counterexample(maps: Tensor, n: int = 48, steps: int = 8, slack: float = 0.01) -> None:
    """Check a counterexample to "a low black-fill deletion AUC means the map finds what the model uses".

    ``maps`` (n, 64, 64) for the first ``n`` held-out images must put at most 20 % of their
    positive energy on the object and still do no worse than the object mask itself on deletion
    with a black fill: the upper end of the paired 95 % interval of (yours - mask) below
    ``slack``. For contrast the check also reports the same difference with the mean-colour fill.
    """
    from .. import metrics
    from ..statistics import paired_difference

    name = "black_counterexample"
    model, x, masks, labels = _known_answer_images(n)
    if not isinstance(maps, Tensor) or tuple(maps.shape) != (n, *x.shape[2:]):
        raise ExerciseError(
            f"{name}: give one map per image, a tensor of shape {(n, *x.shape[2:])}; got "
            f"{tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}."
        )
    maps = maps.detach().float()
    if not bool(torch.isfinite(maps).all()):
        raise ExerciseError(f"{name}: your maps contain NaN or infinite values.")
    energy = metrics.energy_inside(maps, masks).mean
    if energy > 0.2:
        raise ExerciseError(
            f"{name}: your maps put {100 * energy:.0f} % of their positive energy on the object; a counterexample "
            "must know (almost) nothing about where the object is: at most 20 %.\nHint: the object covers about "
            "11 % of each image, so a map that ignores the object lands near that share."
        )
    kw = {"target": labels, "steps": steps, "batch_size": 500}
    black = paired_difference(
        metrics.deletion(model, x, maps, substrate="black", **kw).values,
        metrics.deletion(model, x, masks.float(), substrate="black", **kw).values,
    )
    if black.high >= slack:
        raise ExerciseError(
            f"{name}: with a black fill your maps' deletion AUC minus the object mask's is {black.format(3)}; the "
            f"whole interval must lie below {slack} (no worse than the mask).\nHint: what makes the probability "
            "fall with a black fill is black scattered over the image, whatever it covers; a map that knows nothing "
            "and scatters its ranking everywhere is enough."
        )
    mean = paired_difference(
        metrics.deletion(model, x, maps, substrate="mean", **kw).values,
        metrics.deletion(model, x, masks.float(), substrate="mean", **kw).values,
    )
    print(
        f"Correct: {name}: {100 * energy:.0f} % of your maps' energy is on the object, yet with a black fill their "
        f"deletion AUC minus the mask's is {black.format(3)}: the measure cannot tell them from the perfect map. "
        f"With the mean-colour fill the same difference is {mean.format(3)}."
    )
