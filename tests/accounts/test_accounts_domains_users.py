"""Domains and users: normalization, existence checks, duplicates, changes."""

from __future__ import annotations

import re

import pytest

from nubo.accounts import (
    Accounts,
    AlreadyExists,
    DomainNotEmpty,
    InvalidAddress,
    InvalidDomain,
    InvalidName,
    InvalidPassword,
    InvalidQuota,
    ManualClock,
    NoSuchDomain,
    NoSuchUser,
)
from nubo.config import Config


async def test_domain_names_are_stored_lowercase_as_a_labels(
    accounts: Accounts,
) -> None:
    await accounts.add_domain("Example.ORG")
    domain = await accounts.add_domain("Bücher.Example.")

    assert domain.name == "xn--bcher-kva.example"
    assert domain.display_name == "bücher.example"
    names = [d.name for d in await accounts.list_domains()]
    assert names == ["example.org", "xn--bcher-kva.example"]


async def test_a_domain_given_in_either_form_is_one_domain(accounts: Accounts) -> None:
    await accounts.add_domain("bücher.example")

    with pytest.raises(AlreadyExists, match="already exists"):
        await accounts.add_domain("XN--BCHER-KVA.example")


@pytest.mark.parametrize(
    "name", ["", "exa_mple.org", "-x.org", "a..b", "192.0.2.1", "x" * 64 + ".org"]
)
async def test_invalid_domain_names_are_refused(accounts: Accounts, name: str) -> None:
    with pytest.raises(InvalidDomain):
        await accounts.add_domain(name)


async def test_localhost_is_a_domain_for_trying_nubo(accounts: Accounts) -> None:
    domain = await accounts.add_domain("localhost")

    assert domain.name == "localhost"


async def test_a_domain_with_users_or_aliases_is_not_removed(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_alias("team@example.org", [alice])

    with pytest.raises(DomainNotEmpty, match="1 user and 1 alias"):
        await accounts.remove_domain("example.org")

    await accounts.remove_alias("team@example.org")
    await accounts.remove_user(alice)
    assert await accounts.remove_domain("EXAMPLE.org") == "example.org"
    assert await accounts.list_domains() == []


async def test_removing_a_missing_domain_says_so(accounts: Accounts) -> None:
    with pytest.raises(
        NoSuchDomain, match=re.escape("no such domain: nowhere.example")
    ):
        await accounts.remove_domain("nowhere.example")


async def test_domain_list_counts_users_and_aliases(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_user("bob@example.org", "pw")
    await accounts.add_alias("@example.org", [alice])

    [domain] = await accounts.list_domains()

    assert (domain.users, domain.aliases) == (2, 1)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Alice.Smith@EXAMPLE.org", "alice.smith@example.org"),
        ("  bob@example.org ", "bob@example.org"),
        ("José@Bücher.Example", "josé@xn--bcher-kva.example"),
        ("ÉLODIE@xn--bcher-kva.example", "élodie@xn--bcher-kva.example"),
        ("用户@bücher.example", "用户@xn--bcher-kva.example"),
    ],
)
async def test_addresses_are_normalized(
    accounts: Accounts, given: str, stored: str
) -> None:
    await accounts.add_domain("example.org")
    await accounts.add_domain("bücher.example")

    user = await accounts.add_user(given, "pw")

    assert user.address == stored
    assert (await accounts.get_user(stored.upper())).id == user.id


async def test_a_decomposed_accent_is_the_same_address(accounts: Accounts) -> None:
    await accounts.add_domain("example.org")
    composed = await accounts.add_user("jos\u00e9@example.org", "pw")

    with pytest.raises(AlreadyExists):
        await accounts.add_user("jose\u0301@example.org", "pw")
    assert (await accounts.get_user("JOSE\u0301@example.org")).id == composed.id


@pytest.mark.parametrize(
    "address",
    [
        "no-at-sign",
        "@example.org",
        "a b@example.org",
        "a..b@example.org",
        '"quoted"@example.org',
        "x" * 65 + "@example.org",
        "a@exa_mple.org",
        "a\x00b@example.org",
        "tag+ged@example.org",
    ],
)
async def test_invalid_addresses_are_refused(accounts: Accounts, address: str) -> None:
    await accounts.add_domain("example.org")

    with pytest.raises(InvalidAddress):
        await accounts.add_user(address, "pw")


async def test_a_user_needs_an_existing_domain(accounts: Accounts) -> None:
    with pytest.raises(NoSuchDomain, match=re.escape("no such domain: example.org")):
        await accounts.add_user("alice@example.org", "pw")
    with pytest.raises(NoSuchDomain):
        await accounts.check_new_user("alice@example.org")


async def test_duplicate_users_are_refused_in_any_case(
    accounts: Accounts, alice: str
) -> None:
    with pytest.raises(
        AlreadyExists, match=re.escape("user alice@example.org already exists")
    ):
        await accounts.add_user("ALICE@example.org", "other")
    with pytest.raises(AlreadyExists):
        await accounts.check_new_user("Alice@Example.org")


async def test_a_user_cannot_take_an_alias_address(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_alias("team@example.org", [alice])

    with pytest.raises(AlreadyExists, match=re.escape("alias team@example.org")):
        await accounts.add_user("Team@example.org", "pw")


async def test_new_users_get_the_default_quota_and_dates(
    accounts: Accounts, config: Config, clock: ManualClock, alice: str
) -> None:
    user = await accounts.get_user(alice)

    assert user.quota_bytes == config.default_quota == 5 * 1024**3
    assert user.created_at == clock.now()
    assert user.last_login_at is None
    assert not user.is_admin and not user.disabled


async def test_user_fields_are_stored(accounts: Accounts) -> None:
    await accounts.add_domain("example.org")

    user = await accounts.add_user(
        "root@example.org",
        "pw",
        display_name="  Root of All  ",
        quota_bytes=0,
        is_admin=True,
    )

    assert (user.display_name, user.quota_bytes, user.is_admin) == (
        "Root of All",
        0,
        True,
    )


async def test_bad_passwords_names_and_quotas_are_refused(
    accounts: Accounts,
) -> None:
    await accounts.add_domain("example.org")

    with pytest.raises(InvalidPassword, match="empty"):
        await accounts.add_user("a@example.org", "")
    with pytest.raises(InvalidPassword, match="control"):
        await accounts.add_user("a@example.org", "new\nline")
    with pytest.raises(InvalidName):
        await accounts.add_user("a@example.org", "pw", display_name="x" * 201)
    with pytest.raises(InvalidQuota):
        await accounts.add_user("a@example.org", "pw", quota_bytes=-1)
    assert await accounts.list_users() == []


async def test_password_quota_and_disable_changes(
    accounts: Accounts, alice: str
) -> None:
    await accounts.set_password(alice, "new password")
    await accounts.set_quota(alice, 1024)
    disabled = await accounts.set_disabled("ALICE@example.org", True)

    assert (disabled.quota_bytes, disabled.disabled) == (1024, True)
    assert not (await accounts.set_disabled(alice, False)).disabled
    ok = await accounts.authenticate(alice, "new password", "192.0.2.1")
    assert ok.ok


async def test_changes_to_a_missing_user_say_so(accounts: Accounts) -> None:
    await accounts.add_domain("example.org")

    for change in (
        accounts.set_password("ghost@example.org", "pw"),
        accounts.set_quota("ghost@example.org", 1),
        accounts.set_disabled("ghost@example.org", True),
        accounts.remove_user("ghost@example.org"),
        accounts.get_user("ghost@example.org"),
    ):
        with pytest.raises(
            NoSuchUser, match=re.escape("no such user: ghost@example.org")
        ):
            await change


async def test_users_are_listed_by_address_and_domain(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_domain("example.net")
    await accounts.add_user("zoe@example.org", "pw")
    await accounts.add_user("bob@example.net", "pw")

    every = [u.address for u in await accounts.list_users()]
    in_org = [u.address for u in await accounts.list_users("EXAMPLE.org")]

    assert every == ["alice@example.org", "bob@example.net", "zoe@example.org"]
    assert in_org == ["alice@example.org", "zoe@example.org"]
    with pytest.raises(NoSuchDomain):
        await accounts.list_users("nowhere.example")


async def test_removing_a_user_removes_aliases_left_without_target(
    accounts: Accounts, alice: str
) -> None:
    await accounts.add_user("bob@example.org", "pw")
    await accounts.add_alias("solo@example.org", [alice])
    await accounts.add_alias("pair@example.org", [alice, "bob@example.org"])
    await accounts.add_app_password(alice, "phone")

    removed = await accounts.remove_user(alice)

    assert removed == ["solo@example.org"]
    [pair] = await accounts.list_aliases()
    assert pair.targets == ("bob@example.org",)
