"""Shared fixtures: the reference data folder and external tools.

Acceptance tests use ``../shared/data`` and skip with a reason when it is absent. Tests that need
an external program (stilts, chromium, a PostgreSQL server) skip on a developer's machine that
lacks it, but fail under CI (``CI=true``), where ``.ci/run`` installs them: a green CI run has
really exercised them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SKYSENSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

os.environ.setdefault("SKYSENSE_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the public reference data (``../shared/data``); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def need(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false, except under CI where it fails instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def stilts() -> str:
    """Path of the ``stilts`` command."""
    path = shutil.which("stilts")
    need(path is not None, "stilts is not installed (apt-get install stilts)")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(path is not None, "chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of a PostgreSQL server for tests (``SKYSENSE_TEST_PG``, set by .ci/run)."""
    dsn = os.environ.get("SKYSENSE_TEST_PG")
    need(bool(dsn), "no PostgreSQL server: set SKYSENSE_TEST_PG (bash scripts/start-postgres)")
    return dsn
