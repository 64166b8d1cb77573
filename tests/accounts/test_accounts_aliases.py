"""Delivery resolution: exact user, alias, plus-addressing, catch-all."""

from __future__ import annotations

import re

import pytest

from nubo.accounts import (
    Accounts,
    AlreadyExists,
    InvalidAddress,
    InvalidInput,
    NoSuchAlias,
    NoSuchDomain,
    NoSuchUser,
)


@pytest.fixture
async def people(accounts: Accounts) -> Accounts:
    """alice and bob at example.org; carol at example.net."""
    await accounts.add_domain("example.org")
    await accounts.add_domain("example.net")
    for address in ("alice@example.org", "bob@example.org", "carol@example.net"):
        await accounts.add_user(address, "pw")
    return accounts


async def reached(accounts: Accounts, address: str) -> list[str]:
    return [user.address for user in await accounts.resolve(address)]


async def test_a_user_address_reaches_the_user(people: Accounts) -> None:
    assert await reached(people, "Alice@EXAMPLE.org") == ["alice@example.org"]


async def test_an_alias_reaches_each_target_once(people: Accounts) -> None:
    alias = await people.add_alias(
        "Team@example.org",
        ["bob@example.org", "alice@example.org", "ALICE@example.org"],
    )

    assert alias.address == "team@example.org"
    assert alias.targets == ("alice@example.org", "bob@example.org")
    assert await reached(people, "team@example.org") == [
        "alice@example.org",
        "bob@example.org",
    ]


async def test_plus_addressing_reaches_the_user_or_alias(people: Accounts) -> None:
    await people.add_alias("team@example.org", ["carol@example.net"])

    assert await reached(people, "alice+news@example.org") == ["alice@example.org"]
    assert await reached(people, "alice+a+b@example.org") == ["alice@example.org"]
    assert await reached(people, "team+x@example.org") == ["carol@example.net"]
    assert await reached(people, "+x@example.org") == []


async def test_the_catch_all_takes_what_nothing_else_claims(
    people: Accounts,
) -> None:
    catch_all = await people.add_alias("@Example.org", ["bob@example.org"])

    assert catch_all.is_catch_all and catch_all.address == "@example.org"
    assert await reached(people, "anyone@example.org") == ["bob@example.org"]
    assert await reached(people, "nobody+tag@example.org") == ["bob@example.org"]
    assert await reached(people, "alice@example.org") == ["alice@example.org"]
    assert await reached(people, "anyone@example.net") == []


async def test_disabled_users_receive_nothing(people: Accounts) -> None:
    await people.add_alias("team@example.org", ["alice@example.org", "bob@example.org"])
    await people.add_alias("only-alice@example.org", ["alice@example.org"])
    await people.add_alias("@example.org", ["bob@example.org"])
    await people.set_disabled("alice@example.org", True)

    assert await reached(people, "team@example.org") == ["bob@example.org"]
    # Neither falls through to the catch-all: disabling an account must not
    # send its mail to whoever holds the catch-all.
    assert await reached(people, "alice@example.org") == []
    assert await reached(people, "alice+tag@example.org") == []
    assert await reached(people, "only-alice@example.org") == []


@pytest.mark.parametrize(
    "address", ["", "garbage", "a@", "x\x00@example.org", "a" * 5000 + "@x.org"]
)
async def test_garbage_resolves_to_no_one(people: Accounts, address: str) -> None:
    assert await people.resolve(address) == []


async def test_alias_errors(people: Accounts) -> None:
    with pytest.raises(NoSuchDomain):
        await people.add_alias("x@nowhere.example", ["alice@example.org"])
    with pytest.raises(NoSuchUser, match=re.escape("ghost@example.org")):
        await people.add_alias("x@example.org", ["ghost@example.org"])
    with pytest.raises(
        AlreadyExists,
        match=re.escape("alice@example.org is a user's address; an alias cannot"),
    ):
        await people.add_alias("alice@example.org", ["bob@example.org"])
    with pytest.raises(InvalidAddress):
        await people.add_alias("x+y@example.org", ["bob@example.org"])
    with pytest.raises(InvalidInput, match="at least one target"):
        await people.add_alias("x@example.org", [])
    with pytest.raises(NoSuchAlias, match=re.escape("no such alias: x@example.org")):
        await people.remove_alias("x@example.org")

    await people.add_alias("x@example.org", ["bob@example.org"])
    with pytest.raises(AlreadyExists, match=re.escape("alias x@example.org")):
        await people.add_alias("X@example.org", ["alice@example.org"])


async def test_aliases_are_listed_and_removed(people: Accounts) -> None:
    await people.add_alias("@example.net", ["carol@example.net"])
    await people.add_alias("team@example.org", ["bob@example.org"])

    every = [a.address for a in await people.list_aliases()]
    in_net = [a.address for a in await people.list_aliases("example.net")]

    assert every == ["@example.net", "team@example.org"]
    assert in_net == ["@example.net"]
    assert await people.remove_alias("@EXAMPLE.net") == "@example.net"
    assert await reached(people, "anyone@example.net") == []
