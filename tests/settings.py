"""Settings for the test suite: a file database that live processes (worker, watcher, web) share.

VIRTDASH_TEST_ID isolates concurrent test runs on one machine (own database folder and channel-layer
prefix); give each its own REDIS_URL database too (default 9; emptied at session start). CI uses
the defaults.
"""

import os
import tempfile
from pathlib import Path

_TEST_ID = os.environ.setdefault("VIRTDASH_TEST_ID", "main")
_REPO = Path(__file__).resolve().parent.parent
_VAR = Path(os.environ.setdefault("VIRTDASH_VAR_DIR", str(_REPO / "var" / f"test-{_TEST_ID}")))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_VAR / 'test.sqlite3'}")

from virtdash.settings import *
from virtdash.settings import CHANNEL_LAYERS, DATABASES, VIRTDASH_POOL_PATHS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]  # ports do not matter; origin checks stay real
# pytest-django must create the test database at the very path the live processes open.
DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"vdtest-{_TEST_ID}"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
VIRTDASH_STALE_JOB_SECONDS = int(os.environ.get("VIRTDASH_STALE_JOB_SECONDS", "20"))
# Test pools live in temp folders (tests/integration/conftest.py scratch_pool): operators may use them.
VIRTDASH_POOL_PATHS = (*VIRTDASH_POOL_PATHS, os.path.normpath(tempfile.gettempdir()))
