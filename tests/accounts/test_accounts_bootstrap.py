"""The first domain and administrator of an empty store."""

from __future__ import annotations

import pytest

from nubo.accounts import Accounts, InvalidPassword, bootstrap
from nubo.config import Config


async def test_an_empty_store_gets_a_domain_and_an_administrator(
    accounts: Accounts, config: Config
) -> None:
    created = await bootstrap(accounts, config)

    assert created is not None
    address, password = created
    assert address == "admin@localhost"  # the hostname of the embedded mode
    assert password is not None and len(password) >= 24
    admin = await accounts.get_user(address)
    assert admin.is_admin
    assert (await accounts.authenticate(address, password, "127.0.0.1")).ok


async def test_the_settings_name_the_domain_and_administrator(
    accounts: Accounts, config: Config
) -> None:
    settings = config.replace(
        default_domain="Coop.Example",
        admin_address="Boss@Other.Example",
        admin_password="chosen password",
    )

    created = await bootstrap(accounts, settings)

    assert created == ("boss@other.example", None)
    domains = [d.name for d in await accounts.list_domains()]
    assert domains == ["coop.example", "other.example"]
    ok = await accounts.authenticate("boss@other.example", "chosen password", "::1")
    assert ok.ok


async def test_nothing_happens_once_users_exist(
    accounts: Accounts, config: Config, alice: str
) -> None:
    assert await bootstrap(accounts, config) is None
    assert [u.address for u in await accounts.list_users()] == [alice]


async def test_an_existing_domain_is_reused(accounts: Accounts, config: Config) -> None:
    await accounts.add_domain("localhost")

    assert await bootstrap(accounts, config) is not None
    assert await bootstrap(accounts, config) is None


async def test_an_unusable_admin_password_is_refused(
    accounts: Accounts, config: Config
) -> None:
    with pytest.raises(InvalidPassword):
        await bootstrap(accounts, config.replace(admin_password="line\nbreak"))
