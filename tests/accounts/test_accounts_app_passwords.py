"""App passwords: shown once, stored hashed, usable to sign in, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from nubo.accounts import (
    Accounts,
    AlreadyExists,
    AuthStatus,
    InvalidName,
    ManualClock,
    NoSuchAppPassword,
    NoSuchUser,
)
from nubo.store.schema import app_passwords

CLIENT = "192.0.2.10"


async def test_the_secret_is_random_long_and_stored_only_hashed(
    accounts: Accounts, alice: str
) -> None:
    created, secret = await accounts.add_app_password(alice, " phone ")
    _, other = await accounts.add_app_password(alice, "laptop")

    assert created.name == "phone" and created.last_used_at is None
    assert re.fullmatch(r"([a-z2-7]{4}-){7}[a-z2-7]{4}", secret)  # 160 bits
    assert secret != other
    async with accounts.db.read() as conn:
        stored = set(
            (await conn.execute(select(app_passwords.c.secret_hash))).scalars()
        )
    plain = [s.replace("-", "") for s in (secret, other)]
    assert stored == {hashlib.sha256(p.encode()).hexdigest() for p in plain}
    assert secret not in repr(await accounts.list_app_passwords(alice))


async def test_signing_in_with_an_app_password_records_its_use(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    _, secret = await accounts.add_app_password(alice, "phone")
    clock.advance(60)

    result = await accounts.authenticate("Alice@example.org", secret, CLIENT)

    assert result.ok and result.app_password == "phone"
    assert result.user is not None and result.user.address == alice
    [listed] = await accounts.list_app_passwords(alice)
    assert listed.last_used_at == clock.now()
    assert (await accounts.get_user(alice)).last_login_at == clock.now()


async def test_an_app_password_retyped_without_dashes_or_in_capitals_works(
    accounts: Accounts, alice: str
) -> None:
    _, secret = await accounts.add_app_password(alice, "phone")

    for typed in (secret.replace("-", ""), secret.upper(), secret.replace("-", " ")):
        assert (await accounts.authenticate(alice, typed, CLIENT)).ok


async def test_an_app_password_is_only_its_owners(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_user("bob@example.org", "bob's password")
    _, secret = await accounts.add_app_password(alice, "phone")

    result = await accounts.authenticate("bob@example.org", secret, CLIENT)

    assert result.status is AuthStatus.FAILED


async def test_a_revoked_app_password_no_longer_signs_in(
    accounts: Accounts, alice: str
) -> None:
    _, secret = await accounts.add_app_password(alice, "phone")
    _, kept = await accounts.add_app_password(alice, "laptop")

    await accounts.revoke_app_password(alice, "phone")

    assert not (await accounts.authenticate(alice, secret, CLIENT)).ok
    assert (await accounts.authenticate(alice, kept, CLIENT)).ok
    assert (await accounts.authenticate(alice, "correct horse", CLIENT)).ok
    assert [p.name for p in await accounts.list_app_passwords(alice)] == ["laptop"]


async def test_a_disabled_user_cannot_use_an_app_password(
    accounts: Accounts, alice: str
) -> None:
    _, secret = await accounts.add_app_password(alice, "phone")
    await accounts.set_disabled(alice, True)

    result = await accounts.authenticate(alice, secret, CLIENT)

    assert result.status is AuthStatus.FAILED


async def test_app_password_errors(accounts: Accounts, alice: str) -> None:
    await accounts.add_app_password(alice, "phone")

    with pytest.raises(AlreadyExists, match="'phone' already exists"):
        await accounts.add_app_password(alice, "phone")
    with pytest.raises(InvalidName):
        await accounts.add_app_password(alice, "  ")
    with pytest.raises(NoSuchAppPassword, match="'tablet'"):
        await accounts.revoke_app_password(alice, "tablet")
    with pytest.raises(NoSuchUser):
        await accounts.add_app_password("ghost@example.org", "phone")
    with pytest.raises(NoSuchUser):
        await accounts.list_app_passwords("ghost@example.org")
