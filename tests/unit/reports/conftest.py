"""Seeded histories at a fixed time, so periods and forecasts are reproducible."""

from datetime import UTC, datetime

import pytest

SEED_NOW = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, midnight
# Custom periods inside the seeded history (end date inclusive).
LONG = {"period": "custom", "start": "2026-02-16", "end": "2026-03-01"}  # 14 days → hourly roll-ups
SHORT = {"period": "custom", "start": "2026-02-28", "end": "2026-03-01"}  # 2 days → 5-minute roll-ups


@pytest.fixture(scope="module")
def module_seed(django_db_setup, django_db_blocker):
    """One realistic history per test module (committed; removed again at the end of the module)."""
    from reports.seed import delete_demo_data, seed_history

    with django_db_blocker.unblock():
        result = seed_history(hosts=2, guests=40, days=35, seed=11, fine_days=3, now=SEED_NOW)
    yield result
    with django_db_blocker.unblock():
        delete_demo_data()


@pytest.fixture
def seeded(module_seed, db):
    return module_seed


@pytest.fixture
def small_seed(db):
    """A tiny history for permission tests (fast, rolled back with the test)."""
    from reports.seed import seed_history

    return seed_history(hosts=2, guests=10, days=10, seed=5, fine_days=1, now=SEED_NOW)
