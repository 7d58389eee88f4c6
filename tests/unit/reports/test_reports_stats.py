"""reports.stats: nearest-rank p95, Theil–Sen with Sen's interval, forecasts that admit ignorance."""

import math
import random

import pytest

from reports import stats
from reports.stats import ForecastStatus


def test_p95_is_the_nearest_rank_value():
    values = list(range(1, 101))  # 1..100
    assert stats.p95(values) == 95
    assert stats.p95([3.0]) == 3.0
    assert stats.p95([]) is None
    # 20 values: ceil(0.95*20)=19th smallest
    values = [float(v) for v in range(20, 0, -1)]
    assert stats.p95(values) == 19.0


def test_p95_is_always_an_observed_value():
    rng = random.Random(4)
    values = [rng.random() for _ in range(37)]
    assert stats.p95(values) in values
    assert stats.percentile(values, 100) == max(values)


def test_mean_and_ratio_handle_empty_and_zero():
    assert stats.mean([]) is None
    assert stats.mean([1, 2, 3, 6]) == 3
    assert stats.ratio(8, 4) == 2
    assert stats.ratio(8, 0) is None
    assert stats.ratio(None, 4) is None


def test_theil_sen_recovers_an_exact_line():
    xs = [float(i) for i in range(10)]
    trend = stats.theil_sen(xs, [2.0 + 0.5 * x for x in xs])
    assert trend.slope == pytest.approx(0.5)
    assert trend.intercept == pytest.approx(2.0)
    assert trend.slope_low == pytest.approx(0.5) and trend.slope_high == pytest.approx(0.5)


def test_theil_sen_ignores_a_few_wild_outliers():
    xs = [float(i) for i in range(30)]
    ys = [10 + 2 * x for x in xs]
    ys[5] = 1000
    ys[17] = -500
    ys[25] = 0
    trend = stats.theil_sen(xs, ys)
    assert trend.slope == pytest.approx(2.0, abs=0.05)


def test_sen_interval_covers_the_true_slope_in_most_noisy_samples():
    rng = random.Random(7)
    covered = 0
    for _ in range(200):
        xs = [float(i) for i in range(30)]
        ys = [5 + 0.3 * x + rng.gauss(0, 2) for x in xs]
        trend = stats.theil_sen(xs, ys)
        assert trend.slope_low <= trend.slope <= trend.slope_high
        covered += trend.slope_low <= 0.3 <= trend.slope_high
    assert covered / 200 > 0.88  # nominal 95 %


def test_theil_sen_refuses_too_many_points():
    with pytest.raises(ValueError):
        stats.theil_sen(list(range(stats.MAX_TREND_POINTS + 1)), list(range(stats.MAX_TREND_POINTS + 1)))


def test_forecast_gives_a_date_with_a_range_for_clear_growth():
    rng = random.Random(1)
    xs = [float(i) for i in range(60)]
    ys = [50 + 0.5 * x + rng.gauss(0, 1) for x in xs]
    result = stats.forecast(xs, ys, 100.0, now=59.0)
    assert result.status == ForecastStatus.FORECAST
    assert result.earliest <= result.when <= result.latest
    assert 90 <= result.when <= 110  # true crossing at x=100
    assert result.earliest <= 100 <= result.latest


def test_forecast_says_not_enough_data_for_under_a_week():
    xs = [i / 4 for i in range(20)]  # 5 days
    result = stats.forecast(xs, [float(i) for i in range(20)], 100, now=5)
    assert result.status == ForecastStatus.NOT_ENOUGH_DATA
    assert result.when is None
    assert "Not enough data" in result.reason


def test_forecast_gives_no_date_when_the_slope_interval_includes_zero():
    rng = random.Random(3)
    xs = [float(i) for i in range(30)]
    ys = [50 + rng.gauss(0, 5) for _ in xs]
    result = stats.forecast(xs, ys, 100, now=29)
    assert result.status in (ForecastStatus.NO_GROWTH, ForecastStatus.DECLINING)
    assert result.when is None


def test_forecast_reports_a_limit_already_reached():
    xs = [float(i) for i in range(20)]
    result = stats.forecast(xs, [90 + x for x in xs], 100, now=19)
    assert result.status == ForecastStatus.REACHED


def test_forecast_beyond_the_horizon_has_no_date():
    xs = [float(i) for i in range(30)]
    result = stats.forecast(xs, [10 + 0.001 * x for x in xs], 1000, now=29)
    assert result.status == ForecastStatus.BEYOND
    assert result.when is None and not math.isnan(result.trend.slope)


def test_a_far_away_crossing_gives_no_absurd_dates():
    xs = [20000.0 + i for i in range(30)]
    ys = [10 + 1e-9 * i + (i % 3) * 1e-10 for i in range(30)]
    result = stats.forecast(xs, ys, 1e6, now=xs[-1])
    assert result.when is None
    assert result.earliest is None or result.earliest - xs[-1] <= stats.FORECAST_HORIZON_DAYS
