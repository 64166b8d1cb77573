"""Authentication: ok, failed, and no way to tell an unknown address apart."""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from nubo.accounts import Accounts, AuthResult, AuthStatus, ManualClock
from nubo.accounts.passwords import Passwords
from nubo.config import Config, load
from nubo.store.database import Database
from nubo.store.schema import known_networks, users

CLIENT = "192.0.2.10"


class VerifySpy:
    """Counts Argon2 verifications and the hashes they were against."""

    def __init__(self, passwords: Passwords) -> None:
        self.real = passwords.verify
        self.hashes: list[str] = []

    async def __call__(self, encoded: str, password: str) -> bool:
        self.hashes.append(encoded)
        return await self.real(encoded, password)


@pytest.fixture
def spy(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> VerifySpy:
    spy = VerifySpy(accounts.passwords)
    monkeypatch.setattr(accounts.passwords, "verify", spy)
    return spy


async def stored_hash(accounts: Accounts, address: str) -> str:
    async with accounts.db.read() as conn:
        query = select(users.c.password_hash).where(users.c.address == address)
        value: str = (await conn.execute(query)).scalar_one()
    return value


async def test_the_password_signs_in_and_is_recorded(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    result = await accounts.authenticate("ALICE@Example.org", "correct horse", CLIENT)

    assert result.ok and result.status is AuthStatus.OK
    assert result.user is not None and result.user.address == alice
    assert result.app_password is None
    assert result.user.last_login_at == clock.now()
    assert (await accounts.get_user(alice)).last_login_at == clock.now()
    async with accounts.db.read() as conn:
        rows = (await conn.execute(select(known_networks.c.network))).scalars()
        assert list(rows) == ["192.0.2.0/24"]


async def test_unknown_address_wrong_password_and_disabled_answer_alike(
    accounts: Accounts, alice: str, spy: VerifySpy
) -> None:
    await accounts.add_user("dora@example.org", "right")
    await accounts.set_disabled("dora@example.org", True)

    unknown = await accounts.authenticate("ghost@example.org", "x", "192.0.2.1")
    wrong = await accounts.authenticate(alice, "x", "198.51.100.1")
    disabled = await accounts.authenticate("dora@example.org", "right", "203.0.113.1")
    garbage = await accounts.authenticate("not an address", "x", "10.0.0.1")

    assert unknown == wrong == disabled == garbage == AuthResult(AuthStatus.FAILED)
    # Each did exactly one Argon2 verification; the unknown ones against the
    # dummy hash, which has the same cost as a real one.
    assert len(spy.hashes) == 4
    dummy = await accounts.passwords.dummy_hash()
    assert spy.hashes[0] == spy.hashes[3] == dummy
    assert spy.hashes[1] == await stored_hash(accounts, alice)
    assert dummy.split("$")[:4] == spy.hashes[1].split("$")[:4]


async def test_timing_of_unknown_and_wrong_is_similar_not_asserted(
    accounts: Accounts, alice: str, clock: ManualClock, spy: VerifySpy
) -> None:
    """Measured and printed (``pytest -rP``) only: DESIGN asserts no timing.

    What is asserted is the work done: one verification per attempt.
    """
    samples: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for round_ in range(20):
        for side, (kind, address) in enumerate(
            (("unknown", "ghost@example.org"), ("wrong", alice))
        ):
            clock.advance(timedelta(days=2).total_seconds())  # forget failures
            start = time.perf_counter()
            await accounts.authenticate(address, "nope", f"10.{round_}.{side}.1")
            samples[kind].append(time.perf_counter() - start)

    assert len(spy.hashes) == 40
    for kind, values in samples.items():
        print(f"median {kind}: {statistics.median(values) * 1e3:.2f} ms")


async def test_garbage_input_fails_without_an_error(
    accounts: Accounts, alice: str
) -> None:
    for address, secret, client in [
        ("alice\x00@example.org", "x", CLIENT),
        ("\udcff@example.org", "\udcff", CLIENT),
        ("a" * 100_000, "x", CLIENT),
        (alice, "x" * 10_000, "not an ip"),
        ("", "", ""),
    ]:
        result = await accounts.authenticate(address, secret, client)
        assert result.status is AuthStatus.FAILED


async def test_passwords_match_whatever_the_unicode_composition(
    accounts: Accounts, alice: str
) -> None:
    await accounts.set_password(alice, "caf\u00e9")

    result = await accounts.authenticate(alice, "cafe\u0301", CLIENT)

    assert result.ok


async def test_a_changed_cost_rehashes_at_the_next_sign_in(
    database: Database, config: Config, clock: ManualClock, alice: str
) -> None:
    stronger = Accounts(database, config.replace(password_time_cost=2), clock=clock)
    assert "t=1" in await stored_hash(stronger, alice)

    assert (await stronger.authenticate(alice, "correct horse", CLIENT)).ok

    rehashed = await stored_hash(stronger, alice)
    assert rehashed.startswith("$argon2id$v=19$m=8,t=2,p=1$")
    assert (await stronger.authenticate(alice, "correct horse", CLIENT)).ok
    assert await stored_hash(stronger, alice) == rehashed


async def test_the_real_default_cost(database: Database, clock: ManualClock) -> None:
    """Once with the production cost (t=3, 64 MiB, 4 lanes), not the test one."""
    accounts = Accounts(database, load(environ={}), clock=clock)
    await accounts.add_domain("example.org")
    await accounts.add_user("alice@example.org", "correct horse")

    assert (
        await accounts.authenticate("alice@example.org", "correct horse", CLIENT)
    ).ok
    assert not (await accounts.authenticate("alice@example.org", "wrong", CLIENT)).ok
    encoded = await stored_hash(accounts, "alice@example.org")
    assert encoded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_logs_name_the_network_but_not_the_address_or_secret(
    accounts: Accounts, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="nubo.accounts")

    for _ in range(6):
        await accounts.authenticate(alice, "s3cret-guess", "192.0.2.77")
    await accounts.authenticate("ghost@example.org", "s3cret-guess", "192.0.2.77")
    await accounts.authenticate(alice, "correct horse", "2001:db8:5:6::1")

    text = caplog.text
    assert "network=192.0.2.0/24" in text and "network=2001:db8:5::/48" in text
    assert "192.0.2.77" not in text
    for private in ("alice", "ghost", "example.org", "s3cret", "correct horse"):
        assert private not in text
    levels = {r.levelname for r in caplog.records if "failed" in r.getMessage()}
    assert levels == {"INFO", "WARNING"}
