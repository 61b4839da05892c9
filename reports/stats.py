"""Paired differences between two table rows: mean Δ over the (seed, teacher_seed) pairs
both rows measured, with a Student-t confidence interval, and whether it is a claim
(interval excludes 0 and |Δ| exceeds the measured no-op noise).

The t quantile is computed here (regularised incomplete beta + bisection) because the
project has no scipy; `tests/test_reports.py` checks it against tabulated values.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from reports.protocol import CI_LEVEL


@dataclass(frozen=True)
class PairedDelta:
    pairs: tuple[Hashable, ...]  # the keys (seed, teacher_seed) both rows have, sorted
    mean: float
    sd: float  # sample standard deviation of the differences (n - 1); NaN for n < 2
    half_width: float  # CI half-width; NaN for n < 2

    @property
    def n(self) -> int:
        return len(self.pairs)

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def is_claim(self, noise: float | None) -> bool:
        """CI excludes 0 and |Δ| exceeds the no-op noise; never without a measured noise."""
        return noise is not None and self.excludes_zero() and abs(self.mean) > noise


def paired_delta(values: Mapping[Hashable, float], reference: Mapping[Hashable, float],
                 level: float = CI_LEVEL) -> PairedDelta | None:
    """Δ = values − reference over the keys both have; None when they share none."""
    pairs = tuple(sorted(set(values) & set(reference)))
    if not pairs:
        return None
    diffs = [float(values[k]) - float(reference[k]) for k in pairs]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return PairedDelta(pairs, mean, math.nan, math.nan)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return PairedDelta(pairs, mean, sd, t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n))


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with df degrees of freedom (0.5 < p < 1)."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df ≥ 1 (got p={p}, df={df})")
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) = 1 − ½·I_x(df/2, ½) with x = df / (df + t²), for t ≥ 0 (symmetric below)."""
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point
        return 1 - _betainc(b, a, 1 - x)
    return math.exp(log_front) / a * _beta_fraction(a, b, x)


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    out = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            out *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return out
