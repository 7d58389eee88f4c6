"""Statistics for capacity reports: pure Python, no Django, no numpy.

Definitions (the tests compute the same figures independently with these definitions):

- **average**: arithmetic mean of the values.
- **p95**: nearest-rank percentile: the smallest value v in the sample such that at least
  95 % of the values are ≤ v, i.e. ``sorted(values)[ceil(0.95 * n) - 1]``. It is always one of
  the observed values (no interpolation), so "p95 of CPU" is a level the guest really reached.
- **overcommit ratio**: allocated / physical (vCPUs per hardware thread, allocated memory per
  byte of RAM, volume capacity per byte of pool capacity). None when physical is 0.
- **trend**: Theil–Sen slope (median of the slopes of all pairs of points with distinct x) with
  Sen's rank-based confidence interval: with N pair slopes sorted, and
  ``C = z * sqrt(n (n - 1) (2n + 5) / 18)`` (the standard deviation of Kendall's S, no tie
  correction), the bounds are the slopes of rank ``(N - C) / 2`` and ``(N + C) / 2 + 1``
  (Gilbert 1987, ch. 16). The intercept of each line is ``median(y - slope * x)``. Robust to
  outliers (breakdown point 29 %) and to non-normal noise.
- **forecast**: the x where a trend line reaches the limit. The estimate uses the Theil–Sen
  slope; the earliest date uses the upper slope bound, the latest the lower one. When the span
  is under ``min_span`` or the slope's interval includes 0, the honest answer is
  "not enough data" / "no significant growth" and no date is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median

MIN_FORECAST_SPAN_DAYS = 7.0
MIN_FORECAST_POINTS = 7
FORECAST_HORIZON_DAYS = 5 * 365.0
MAX_TREND_POINTS = 800  # pairs grow as n²: callers aggregate (daily) before fitting


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float = 95.0) -> float | None:
    """Nearest-rank percentile (see module docstring); None for no values."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100.0 * len(ordered))
    return ordered[max(rank, 1) - 1]


def p95(values: Sequence[float]) -> float | None:
    return percentile(values, 95.0)


def ratio(allocated: float | None, physical: float | None) -> float | None:
    """Overcommit ratio allocated/physical; None when either is missing or physical is 0."""
    if allocated is None or not physical:
        return None
    return allocated / physical


@dataclass(frozen=True)
class Trend:
    """A Theil–Sen line y = intercept + slope·x with the slope's confidence interval."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    intercept_low: float  # intercept of the line with slope_low
    intercept_high: float  # intercept of the line with slope_high
    n: int
    confidence: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x

    def low_at(self, x: float) -> float:
        return self.intercept_low + self.slope_low * x

    def high_at(self, x: float) -> float:
        return self.intercept_high + self.slope_high * x

    @property
    def significant_growth(self) -> bool:
        return self.slope_low > 0

    @property
    def significant_decline(self) -> bool:
        return self.slope_high < 0


def _pair_slopes(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    slopes = []
    n = len(xs)
    for i in range(n):
        xi, yi = xs[i], ys[i]
        for j in range(i + 1, n):
            dx = xs[j] - xi
            if dx:
                slopes.append((ys[j] - yi) / dx)
    return slopes


def theil_sen(xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95) -> Trend | None:
    """Theil–Sen fit with Sen's rank-based interval; None with fewer than 3 points or one x."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    if n < 3:
        return None
    if n > MAX_TREND_POINTS:
        raise ValueError(f"too many points for a Theil–Sen fit ({n} > {MAX_TREND_POINTS}): aggregate first")
    slopes = _pair_slopes(xs, ys)
    if not slopes:
        return None
    slopes.sort()
    count = len(slopes)
    slope = median(slopes)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lower_rank = int(math.floor((count - c) / 2.0))  # 1-based ranks, clamped into the list
    upper_rank = int(math.ceil((count + c) / 2.0)) + 1
    slope_low = slopes[min(max(lower_rank, 1), count) - 1]
    slope_high = slopes[min(max(upper_rank, 1), count) - 1]

    def intercept(b: float) -> float:
        return median([y - b * x for x, y in zip(xs, ys, strict=True)])

    return Trend(slope=slope, intercept=intercept(slope), slope_low=slope_low, slope_high=slope_high,
                 intercept_low=intercept(slope_low), intercept_high=intercept(slope_high), n=n,
                 confidence=confidence)


class ForecastStatus:
    NOT_ENOUGH_DATA = "not-enough-data"  # too short a history or too few points
    NO_GROWTH = "no-significant-growth"  # the slope's interval includes 0
    DECLINING = "declining"  # significant decline: never, on this trend
    REACHED = "reached"  # already at or above the limit
    BEYOND = "beyond-horizon"  # grows, but reaches the limit after the horizon
    FORECAST = "forecast"  # a date with an earliest/latest range


@dataclass(frozen=True)
class Forecast:
    """When a resource reaches `limit` on its trend; x values are in the caller's unit (days).

    `when`, `earliest` and `latest` are set only for FORECAST (and `latest` may be None when the
    lower slope bound never reaches the limit within the horizon). `reason` says why in words.
    """

    status: str
    limit: float
    trend: Trend | None
    when: float | None = None
    earliest: float | None = None
    latest: float | None = None
    reason: str = ""

    @property
    def has_date(self) -> bool:
        return self.status == ForecastStatus.FORECAST


def _crossing(intercept: float, slope: float, limit: float) -> float | None:
    if slope <= 0:
        return None
    return (limit - intercept) / slope


def forecast(xs: Sequence[float], ys: Sequence[float], limit: float, *, now: float,
             min_span: float = MIN_FORECAST_SPAN_DAYS, horizon: float = FORECAST_HORIZON_DAYS,
             confidence: float = 0.95) -> Forecast:
    """Forecast the x (e.g. day number) at which ys reach `limit`, with its uncertainty."""
    if len(xs) < MIN_FORECAST_POINTS or not xs or max(xs) - min(xs) < min_span:
        span = (max(xs) - min(xs)) if xs else 0.0
        return Forecast(ForecastStatus.NOT_ENOUGH_DATA, limit, None,
                        reason=f"Not enough data: {span:.1f} days of history, at least {min_span:g} needed.")
    trend = theil_sen(xs, ys, confidence)
    if trend is None:
        return Forecast(ForecastStatus.NOT_ENOUGH_DATA, limit, None, reason="Not enough distinct points.")
    if limit <= 0:
        return Forecast(ForecastStatus.NOT_ENOUGH_DATA, limit, trend, reason="No capacity known.")
    if trend.at(now) >= limit or ys[-1] >= limit:
        return Forecast(ForecastStatus.REACHED, limit, trend, when=now, reason="Already at or above the limit.")
    if trend.significant_decline:
        return Forecast(ForecastStatus.DECLINING, limit, trend,
                        reason="Declining: the limit is not reached on this trend.")
    if not trend.significant_growth:
        return Forecast(ForecastStatus.NO_GROWTH, limit, trend,
                        reason=f"Not enough data for a date: the {confidence:.0%} interval of the growth rate "
                        "includes 0.")
    when = _crossing(trend.intercept, trend.slope, limit)
    earliest = _crossing(trend.intercept_high, trend.slope_high, limit)
    latest = _crossing(trend.intercept_low, trend.slope_low, limit)
    if when is None or when - now > horizon:
        earliest = earliest if earliest is not None and earliest - now <= horizon else None
        return Forecast(ForecastStatus.BEYOND, limit, trend, earliest=earliest,
                        reason=f"Grows, but reaches the limit more than {horizon / 365:.0f} years from now.")
    earliest = max(now, min(earliest if earliest is not None else when, when))
    if latest is not None and (latest < when or latest - now > horizon):
        latest = None if latest - now > horizon else max(latest, when)
    return Forecast(ForecastStatus.FORECAST, limit, trend, when=max(when, now), earliest=earliest, latest=latest,
                    reason="Theil–Sen trend; range from its confidence interval.")
