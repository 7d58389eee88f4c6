"""A small seeded history at a fixed time, so periods and forecasts are reproducible."""

from datetime import UTC, datetime

import pytest

SEED_NOW = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, midnight
# Custom periods inside the seeded history (end date inclusive).
LONG = {"period": "custom", "start": "2026-02-16", "end": "2026-03-01"}  # 14 days → hourly roll-ups
SHORT = {"period": "custom", "start": "2026-02-28", "end": "2026-03-01"}  # 2 days → 5-minute roll-ups


@pytest.fixture
def seeded(db):
    from reports.seed import seed_history

    return seed_history(hosts=2, guests=40, days=35, seed=11, fine_days=3, now=SEED_NOW)
