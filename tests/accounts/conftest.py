"""Fixtures of the account tests: a service on each backend, cheap Argon2."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nubo.accounts import Accounts, ManualClock
from nubo.config import Config, load
from nubo.store.database import Database

# The real Argon2 cost takes tens of milliseconds per hash; tests that do not
# look at the cost use the cheapest one Argon2 allows.
CHEAP = {"password_time_cost": 1, "password_memory_kib": 8}


@pytest.fixture
def config() -> Config:
    return load(environ={}).replace(**CHEAP)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def accounts(database: Database, config: Config, clock: ManualClock) -> Accounts:
    return Accounts(database, config, clock=clock)


@pytest.fixture
async def alice(accounts: Accounts) -> str:
    """A domain example.org with one user, alice@example.org."""
    await accounts.add_domain("example.org")
    user = await accounts.add_user("alice@example.org", "correct horse")
    return user.address
