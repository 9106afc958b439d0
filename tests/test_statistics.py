"""camlib.statistics: percentile bootstrap intervals and paired differences (docs/math.md 10.19)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camlib.statistics import Bootstrap, Interval, mean_interval, paired_difference


def test_identical_values_give_a_zero_width_interval_at_that_value():
    for value in (0.1, 0.3, -2.5, 1e6):
        iv = mean_interval(torch.full((37,), value, dtype=torch.float64))
        assert iv.mean == value and iv.low == value and iv.high == value and iv.width == 0.0
        assert iv.n == 37


def test_a_method_against_itself_gives_exactly_zero():
    v = torch.rand(200, generator=torch.Generator().manual_seed(1))
    d = paired_difference(v, v.clone())
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.excludes_zero


def test_affine_map_moves_the_interval_with_it():
    v = torch.rand(150, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    base = mean_interval(v, seed=5)
    for a, c in ((3.0, -1.0), (0.25, 7.0)):
        moved = mean_interval(a * v + c, seed=5)
        assert moved.mean == pytest.approx(a * base.mean + c, abs=1e-12)
        assert moved.low == pytest.approx(a * base.low + c, abs=1e-12)
        assert moved.high == pytest.approx(a * base.high + c, abs=1e-12)


def test_the_seed_determines_the_result():
    v = torch.randn(80, generator=torch.Generator().manual_seed(3))
    assert mean_interval(v, seed=11) == mean_interval(v, seed=11)
    assert mean_interval(v, seed=11) != mean_interval(v, seed=12)


def test_interval_contains_the_mean_and_matches_a_direct_bootstrap():
    gen = np.random.default_rng(0)
    v = torch.from_numpy(gen.exponential(size=120))
    boot = Bootstrap(120, resamples=4000, seed=0)
    iv = boot.interval(v)
    assert iv.low < iv.mean < iv.high
    assert iv.mean == pytest.approx(float(v.mean()), abs=1e-12)
    # the matrix product equals resampling the values directly with the same counts
    means = boot.resampled_means(v)
    assert means.shape == (4000,)
    direct = (boot.weights * v[None]).sum(1)
    assert torch.allclose(means, direct, atol=1e-12)
    # and the interval's half-width is close to 1.96 standard errors (the normal approximation)
    se = float(v.std()) / np.sqrt(120)
    assert iv.width == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_paired_difference_uses_the_same_images_for_both_methods():
    gen = torch.Generator().manual_seed(4)
    shared = 5.0 * torch.randn(300, generator=gen, dtype=torch.float64)  # varies a lot between images
    a = shared + 0.10 + 0.05 * torch.randn(300, generator=gen, dtype=torch.float64)
    b = shared + 0.05 * torch.randn(300, generator=gen, dtype=torch.float64)
    d = paired_difference(a, b)
    assert d.excludes_zero and d.low > 0  # paired: the shared variation cancels
    unpaired_a, unpaired_b = mean_interval(a), mean_interval(b)
    assert unpaired_a.low < unpaired_b.high  # unpaired intervals overlap: they cannot resolve it
    boot = Bootstrap(300)
    table = boot.table({"a": a, "b": b})
    assert boot.difference(a, b).mean == pytest.approx(table["a"].mean - table["b"].mean, abs=1e-12)


def test_coverage_is_close_to_95_percent_on_simulated_data():
    gen = np.random.default_rng(2024)
    hits, trials, n = 0, 300, 60
    for t in range(trials):
        sample = torch.from_numpy(gen.normal(loc=0.3, scale=1.0, size=n))
        hits += mean_interval(sample, resamples=1000, seed=t).contains(0.3)
    coverage = hits / trials
    assert 0.89 <= coverage <= 0.99, coverage


def test_intervals_of_several_columns_share_the_resamples():
    v = torch.rand(50, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    boot = Bootstrap(50, seed=3)
    cols = boot.intervals(v)
    assert [c.mean for c in cols] == pytest.approx(v.mean(0).tolist(), abs=1e-12)
    one = boot.interval(v[:, 1])
    assert (cols[1].mean, cols[1].low, cols[1].high) == pytest.approx((one.mean, one.low, one.high), abs=1e-12)


def test_format_and_properties():
    iv = Interval(0.25612, 0.2491, 0.2623, 500)
    assert iv.format() == "0.256 [0.249, 0.262] (n=500)"
    assert iv.format(2, n=False) == "0.26 [0.25, 0.26]"
    assert str(iv) == iv.format()
    assert iv.excludes_zero and Interval(0.0, -0.1, 0.2, 10).excludes_zero is False


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.tensor([0.1, float("nan")]), ValueError, "NaN"),
        (torch.tensor([]), ValueError, "at least one"),
        (torch.zeros(2, 2, 2), ValueError, "one value per image"),
    ],
)
def test_bad_values_get_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        mean_interval(bad)


def test_mismatched_lengths_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="same images"):
        paired_difference(torch.rand(5), torch.rand(6))
    with pytest.raises(ValueError, match="n = 5"):
        Bootstrap(5).interval(torch.rand(6))
    with pytest.raises(ValueError, match="level"):
        Bootstrap(5, level=95)
    with pytest.raises(ValueError, match="positive int"):
        Bootstrap(0)


def test_one_image_gives_its_value():
    iv = mean_interval(torch.tensor([0.7], dtype=torch.float64))
    assert (iv.mean, iv.low, iv.high, iv.n) == (0.7, 0.7, 0.7, 1)
