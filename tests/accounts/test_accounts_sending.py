"""What submission asks of accounts: hosted domains, and who may send as whom."""

from __future__ import annotations

import pytest

from nubo.accounts import Accounts


@pytest.fixture
async def people(accounts: Accounts) -> Accounts:
    """alice and bob at example.org; a team alias; a catch-all to bob."""
    await accounts.add_domain("example.org")
    await accounts.add_user("alice@example.org", "pw")
    await accounts.add_user("bob@example.org", "pw")
    await accounts.add_alias("team@example.org", ["alice@example.org"])
    await accounts.add_alias("@example.org", ["bob@example.org"])
    return accounts


async def test_find_domain_in_any_form(people: Accounts) -> None:
    found = await people.find_domain("EXAMPLE.org.")

    assert found is not None
    assert found.name == "example.org"
    assert await people.find_domain("example.net") is None
    assert await people.find_domain("not a domain!") is None
    assert await people.find_domain("[127.0.0.1]") is None


async def test_own_address_alias_and_tag_are_the_users(people: Accounts) -> None:
    alice = await people.get_user("alice@example.org")

    for address in (
        "alice@example.org",
        "Alice@EXAMPLE.ORG",
        "alice+lists@example.org",
        "team@example.org",
        "team+x@example.org",
    ):
        assert await people.may_send_as(alice.id, address), address


async def test_others_and_the_catch_all_are_not(people: Accounts) -> None:
    alice = await people.get_user("alice@example.org")
    bob = await people.get_user("bob@example.org")

    assert not await people.may_send_as(alice.id, "bob@example.org")
    assert not await people.may_send_as(bob.id, "team@example.org")
    # bob holds the catch-all, which reaches him but is no licence to spoof.
    assert await people.resolve("nobody@example.org") == [bob]
    assert not await people.may_send_as(bob.id, "nobody@example.org")
    assert not await people.may_send_as(alice.id, "alice@example.net")
    assert not await people.may_send_as(alice.id, "not an address")
