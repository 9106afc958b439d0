"""The checks of notebook 08 accept the reference answers and reject typical mistakes with a hint."""

import pytest
import torch

from camlib.exercises import nb08
from camlib.exercises._check import ExerciseError


def _reject(check, wrong, message):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    text = str(info.value)
    assert "Hint" in text, text
    assert message in text, text


# ----------------------------------------------------------------------------- pointing game


def hits_solution(maps, masks):
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    return masks[torch.arange(n), flat // w, flat % w]


def hits_swapped(maps, masks):
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    row, col = flat // w, flat % w
    return torch.tensor([bool(masks[i, c, r]) if c < h and r < w else False for i, (r, c) in enumerate(zip(row, col))])


def test_hits_accepts_reference(capsys):
    assert nb08.check_pointing_hits(hits_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda maps, masks: maps.argmax(dim=1), "one axis only"),
        (lambda maps, masks: masks.reshape(-1)[maps.reshape(-1).argmax()], "whole batch"),
        (lambda maps, masks: hits_solution(-maps, masks), "minimum"),
        (hits_swapped, "swapped"),
    ],
    ids=["one-axis", "whole-batch", "argmin", "rows-columns-swapped"],
)
def test_hits_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_pointing_hits, wrong, message)


# ----------------------------------------------------------------------------- energy inside the mask


def energy_solution(maps, masks):
    positive = torch.relu(maps)
    total = positive.sum(dim=(1, 2))
    inside = (positive * masks).sum(dim=(1, 2))
    return torch.where(total > 0, inside / total.clamp(min=1e-300), torch.zeros_like(total))


def test_energy_accepts_reference(capsys):
    assert nb08.check_energy_inside(energy_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda maps, masks: (maps * masks).sum(dim=(1, 2)) / maps.sum(dim=(1, 2)), "positive part"),
        (lambda maps, masks: masks.double().mean(dim=(1, 2)), "share of pixels"),
        (lambda maps, masks: (torch.relu(maps) * masks).sum(dim=(1, 2)) / masks.sum(dim=(1, 2)).clamp(min=1), "averaged the map over the mask"),
        (lambda maps, masks: (torch.relu(maps) * masks).sum(dim=(1, 2)) / torch.relu(maps).sum(dim=(1, 2)), "0/0"),
        (lambda maps, masks: energy_solution(maps, masks)[None], "shape (N,)"),
    ],
    ids=["no-relu", "pixel-share", "mean-in-mask", "nan-on-empty-map", "wrong-shape"],
)
def test_energy_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_energy_inside, wrong, message)


# ----------------------------------------------------------------------------- AUC


def auc_solution(curves):
    t = curves.shape[-1]
    step = 1.0 / (t - 1)
    return step * (curves[..., 1:] + curves[..., :-1]).sum(dim=-1) / 2


def test_auc_accepts_reference(capsys):
    assert nb08.check_curve_auc(auc_solution) is None
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c: c.mean(dim=-1), "count half"),
        (lambda c: (c.sum(dim=-1) - c[..., 0] / 2 - c[..., -1] / 2) / c.shape[-1], "not T"),
        (lambda c: c.sum(dim=-1), "spacing"),
        (lambda c: c.mean(dim=0), "one area per curve"),
    ],
    ids=["plain-mean", "divide-by-T", "plain-sum", "wrong-axis"],
)
def test_auc_rejects_typical_mistakes(wrong, message):
    _reject(nb08.check_curve_auc, wrong, message)


def test_auc_matches_numpy_trapezoid():
    curves = torch.rand(3, 9, dtype=torch.float64)
    import numpy as np

    expected = np.trapezoid(curves.numpy(), dx=1 / 8, axis=-1) if hasattr(np, "trapezoid") else np.trapz(curves.numpy(), dx=1 / 8, axis=-1)
    assert torch.allclose(nb08._auc_reference(curves), torch.as_tensor(expected))


# ----------------------------------------------------------------------------- paired bootstrap interval


def paired_solution(a, b, resamples=2000, seed=0):
    d = (a - b).double()
    gen = torch.Generator().manual_seed(seed)
    means = d[torch.randint(0, len(d), (resamples, len(d)), generator=gen)].mean(dim=1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return low.item(), high.item()


def paired_unpaired(a, b, resamples=2000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ia = torch.randint(0, len(a), (resamples, len(a)), generator=gen)
    ib = torch.randint(0, len(b), (resamples, len(b)), generator=gen)
    means = a.double()[ia].mean(1) - b.double()[ib].mean(1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return low.item(), high.item()


def paired_spread(a, b, resamples=2000, seed=0):
    d = (a - b).double()
    return (d.mean() - 1.96 * d.std()).item(), (d.mean() + 1.96 * d.std()).item()


def paired_narrow(a, b, resamples=2000, seed=0):
    d = (a - b).double()
    gen = torch.Generator().manual_seed(seed)
    means = d[torch.randint(0, len(d), (resamples, len(d)), generator=gen)].mean(dim=1)
    low, high = torch.quantile(means, torch.tensor([0.25, 0.75], dtype=torch.float64))
    return low.item(), high.item()


def test_paired_interval_accepts_reference(capsys):
    nb08.check_paired_interval(paired_solution)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (paired_unpaired, "exactly [0, 0]"),
        (paired_spread, "spread of the per-image differences"),
        (paired_narrow, "too narrow"),
    ],
    ids=["unpaired", "spread-not-mean", "50-percent"],
)
def test_paired_interval_rejects_typical_mistakes_with_a_hint(wrong, message):
    _reject(nb08.check_paired_interval, wrong, message)


@pytest.mark.parametrize(
    "wrong, message",
    [(lambda a, b, r, s: paired_solution(a, b, r, s)[::-1], "is above high"), (lambda a, b, r, s: 0.5, "two numbers")],
    ids=["reversed", "one-number"],
)
def test_paired_interval_rejects_malformed_answers(wrong, message):
    _raises(nb08.check_paired_interval, wrong, message)


def _raises(check, wrong, message):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    assert message in str(info.value), str(info.value)


# ----------------------------------------------------------------------------- designing a substrate


def fill_kept_mean(x, removed):
    kept = (~removed)[:, None].float()
    colour = (x * kept).sum(dim=(2, 3), keepdim=True) / kept.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    return colour.expand_as(x).clone()


def test_substrate_design_accepts_a_fill_without_outline(capsys):
    nb08.check_substrate_design(fill_kept_mean)
    out = capsys.readouterr().out
    assert "Correct" in out and "n=48" in out


def test_substrate_design_rejects_black_with_a_hint_about_the_outline():
    _reject(nb08.check_substrate_design, lambda x, removed: torch.zeros_like(x), "outline")


def test_substrate_design_rejects_a_wrong_shape():
    _raises(nb08.check_substrate_design, lambda x, removed: x[:, :1], "input's shape")


# ----------------------------------------------------------------------------- the black-fill counterexample


def test_black_counterexample_accepts_a_map_that_knows_nothing(capsys):
    nb08.check_black_counterexample(torch.rand(48, 64, 64, generator=torch.Generator().manual_seed(1)))
    out = capsys.readouterr().out
    assert "Correct" in out and "mean-colour fill" in out


def test_black_counterexample_rejects_maps_on_the_object_and_maps_that_lose():
    import camlib

    masks = camlib.data.test_set().masks[:48]
    _reject(nb08.check_black_counterexample, masks.float(), "at most 20 %")
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    corner = (-(rows + cols)).float().expand(48, 64, 64).clone()  # removes one corner first: a clean black blob
    _reject(nb08.check_black_counterexample, corner, "scattered")
    _raises(nb08.check_black_counterexample, torch.rand(3, 64, 64), "one map per image")


# ----------------------------------------------------------------------------- an unanswered exercise


@pytest.mark.parametrize(
    "check, arity",
    [(nb08.check_pointing_hits, 2), (nb08.check_paired_interval, 4), (nb08.check_substrate_design, 2)],
    ids=["pointing_hits", "paired_interval", "substrate_design"],
)
def test_an_unanswered_exercise_stops_with_not_implemented(check, arity):
    """The student version's stub raises NotImplementedError; the check lets it through unchanged."""

    def stub(*args):
        assert len(args) == arity
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check(stub)
