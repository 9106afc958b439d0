r"""Bootstrap intervals for means over images, and paired differences between methods.

A measure of an explanation gives one value per image; the course reports their mean with the
number of images ``n`` and a **percentile bootstrap** interval (Efron 1979): draw ``B`` resamples
of the ``n`` images with replacement, take the mean of each resample, and report the empirical
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those ``B`` means (2.5 % and 97.5 % for
the default ``level=0.95``; quantiles by linear interpolation, as :func:`torch.quantile`).

Two methods scored on the **same** images are compared through the per-image differences
``d_i = a_i - b_i``: the resamples draw images, not values of each method separately, so the
variation between images that both methods share cancels. The two methods are called different
only when the interval of the mean difference excludes 0 (:attr:`Interval.excludes_zero`).

A :class:`Bootstrap` draws its resamples once (seeded, as a ``(B, n)`` matrix of counts) and
reuses them for every column it is given, so one matrix product gives the intervals of a whole
table and the differences between its columns are consistent with the columns themselves.
Exact properties (checked by ``tests/test_statistics.py``, docs/math.md 10.19): identical values
give an interval of zero width at that value; a column compared with itself gives ``[0, 0]``;
the interval of ``a v + c`` with ``a > 0`` is ``a`` times the interval of ``v`` plus ``c``; the
result is determined by the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "RESAMPLES",
    "Interval",
    "Bootstrap",
    "mean_interval",
    "paired_difference",
]

#: Default number of bootstrap resamples ``B``.
RESAMPLES: int = 2000


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its bootstrap interval ``[low, high]`` at ``level``."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a difference that is resolved)."""
        return self.low > 0.0 or self.high < 0.0

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return self.low <= value <= self.high

    def format(self, digits: int = 3, n: bool = True) -> str:
        """``"0.256 [0.249, 0.262] (n=500)"``; ``n=False`` leaves out the count."""
        text = f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        return f"{text} (n={self.n})" if n else text

    def __str__(self) -> str:
        return self.format()


def _as_columns(values: object) -> tuple[Tensor, bool]:
    """``values`` as a float64 (n, k) tensor; whether the input was one column."""
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(values)
    elif not isinstance(values, Tensor):
        values = torch.as_tensor(values, dtype=torch.float64)
    if values.is_complex():
        raise TypeError("values must be real numbers, one per image; got complex values.")
    v = values.detach().to(device="cpu", dtype=torch.float64)
    single = v.ndim == 1
    if single:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(
            f"values must be one value per image, shape (n,), or one column per method, shape (n, k); "
            f"got shape {tuple(values.shape)}."
        )
    if v.shape[0] == 0:
        raise ValueError("no values: an interval needs at least one image.")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(
            "values contain NaN or infinity; a measure must give a finite number for every image "
            "(drop or fix the images it could not score before asking for an interval)."
        )
    return v, single


class Bootstrap:
    """Percentile bootstrap over ``n`` images, with resamples drawn once and reused.

    ``Bootstrap(n, resamples=2000, seed=0, level=0.95)`` draws a ``(B, n)`` matrix of counts
    (how often each image occurs in each resample) from a ``torch.Generator`` seeded with
    ``seed``. :meth:`intervals` and :meth:`interval` turn per-image values into :class:`Interval` objects;
    :meth:`difference` gives the paired interval of ``mean(a - b)``. Every call on the same object
    uses the same resamples.
    """

    def __init__(self, n: int, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n (the number of images) must be a positive int, got {n!r}.")
        if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 1:
            raise ValueError(f"resamples must be a positive int, got {resamples!r}.")
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must lie strictly between 0 and 1 (e.g. 0.95), got {level!r}.")
        self.n = n
        self.resamples = resamples
        self.seed = int(seed)
        self.level = float(level)
        gen = torch.Generator().manual_seed(self.seed)
        draws = torch.randint(0, n, (resamples, n), generator=gen)
        counts = torch.zeros(resamples, n, dtype=torch.float64)
        counts.scatter_add_(1, draws, torch.ones(resamples, n, dtype=torch.float64))
        #: (B, n) weights of each image in each resample (counts / n; each row sums to 1)
        self.weights = counts / n

    def _check(self, v: Tensor) -> None:
        if v.shape[0] != self.n:
            raise ValueError(
                f"this Bootstrap resamples n = {self.n} images but got {v.shape[0]} values; make one "
                "Bootstrap per set of images (Bootstrap(len(values)))."
            )

    def resampled_means(self, values: object) -> Tensor:
        """The ``(B, k)`` means of each column over each resample (``(B,)`` for one column).

        Computed as ``v_0 + weights @ (v - v_0)`` with ``v_0`` the first value of each column, so
        a constant column gives exactly that constant in every resample.
        """
        v, single = _as_columns(values)
        self._check(v)
        anchor = v[:1]
        means = anchor + self.weights @ (v - anchor)
        return means[:, 0] if single else means

    def intervals(self, values: object) -> list[Interval]:
        """One :class:`Interval` per column of ``values`` (n, k), or a one-element list for (n,)."""
        v, _ = _as_columns(values)
        self._check(v)
        anchor = v[:1]
        centred = v - anchor
        means = anchor + self.weights @ centred
        q = torch.tensor([(1.0 - self.level) / 2.0, (1.0 + self.level) / 2.0], dtype=torch.float64)
        low, high = torch.quantile(means, q, dim=0)
        centre = anchor[0] + centred.mean(dim=0)
        return [
            Interval(float(c), float(lo), float(hi), self.n, self.level)
            for c, lo, hi in zip(centre, low, high)
        ]

    def interval(self, values: object) -> Interval:
        """The :class:`Interval` of the mean of one column of per-image values (n,)."""
        v, single = _as_columns(values)
        if not single and v.shape[1] != 1:
            raise ValueError("interval() takes one value per image (n,); use intervals() for (n, k).")
        return self.intervals(v)[0]

    def difference(self, a: object, b: object) -> Interval:
        """Paired interval of ``mean(a - b)``: both columns are resampled by the same images."""
        va, sa = _as_columns(a)
        vb, sb = _as_columns(b)
        if not (sa and sb):
            raise ValueError("difference() compares two columns of per-image values, each of shape (n,).")
        if va.shape != vb.shape:
            raise ValueError(
                f"paired values must come from the same images: got {va.shape[0]} and {vb.shape[0]} values."
            )
        return self.interval((va - vb)[:, 0])

    def table(self, columns: Mapping[str, object]) -> dict[str, Interval]:
        """Intervals of several named columns of the same ``n`` images, in one matrix product."""
        names = list(columns)
        if not names:
            return {}
        stacked = torch.stack([_as_columns(columns[k])[0][:, 0] for k in names], dim=1)
        return dict(zip(names, self.intervals(stacked)))


def mean_interval(
    values: object, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> Interval:
    """Mean of per-image ``values`` (n,) with its percentile bootstrap interval and ``n``.

    Same as ``Bootstrap(len(values), resamples, seed, level).interval(values)``.
    """
    v, single = _as_columns(values)
    if not single:
        raise ValueError("mean_interval() takes one value per image, shape (n,).")
    return Bootstrap(v.shape[0], resamples, seed, level).interval(v[:, 0])


def paired_difference(
    a: object, b: object, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> Interval:
    """Mean of the per-image differences ``a - b`` with its paired bootstrap interval.

    ``a`` and ``b`` are one value per image for two methods (or two maps) on the **same** images,
    in the same order. The two are called different only when the interval excludes 0.
    """
    va, sa = _as_columns(a)
    if not sa:
        raise ValueError("paired_difference() takes one value per image for each method, shape (n,).")
    return Bootstrap(va.shape[0], resamples, seed, level).difference(va[:, 0], b)

