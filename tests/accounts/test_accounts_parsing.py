"""The I/O-free rules: client networks, sizes, addresses, app secrets."""

from __future__ import annotations

import pytest

from nubo.accounts import InvalidQuota, client_network, format_size, parse_size
from nubo.accounts.addresses import Address, parse_address, parse_alias_address
from nubo.accounts.passwords import app_secret_hash, find_matching


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.7", "192.0.2.0/24"),
        (" 192.0.2.255 ", "192.0.2.0/24"),
        ("192.0.2.7:993", "192.0.2.0/24"),
        ("2001:db8:1:2:3::4", "2001:db8:1::/48"),
        ("[2001:db8:1::1]:993", "2001:db8:1::/48"),
        ("[2001:db8:1::1]", "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::1", "::/48"),
        ("", "unknown"),
        ("garbage", "unknown"),
        ("999.0.0.1", "unknown"),
        ("192.0.2.7:port", "unknown"),
        ("[::1", "unknown"),
    ],
)
def test_client_network(address: str, network: str) -> None:
    assert client_network(address) == network


def test_client_network_of_a_non_string_is_unknown() -> None:
    assert client_network(None) == "unknown"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("500M", 500 * 1024**2),
        ("5G", 5 * 1024**3),
        ("5g", 5 * 1024**3),
        ("5GB", 5 * 1024**3),
        ("1.5 GiB", 3 * 1024**3 // 2),
        ("2T", 2 * 1024**4),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "5X", "G", "1,5G", "9" * 30, "five"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(InvalidQuota):
        parse_size(text)


def test_sizes_are_shown_short() -> None:
    shown = [format_size(n) for n in (0, 512, 5 * 1024**3, 3 * 1024**3 // 2)]

    assert shown == ["unlimited", "512", "5G", "1.5G"]


def test_tags_and_catch_alls() -> None:
    tagged = parse_address("Alice+Lists+X@Example.org")

    assert tagged.without_tag() == Address("alice", "example.org")
    assert parse_address("alice@example.org").without_tag() is None
    assert parse_alias_address("@Example.org") == Address("", "example.org")
    assert str(tagged.catch_all()) == "@example.org"


def test_app_secret_matching_ignores_layout_and_checks_every_hash() -> None:
    stored = [app_secret_hash("aaaa-bbbb"), app_secret_hash("cccc-dddd")]

    assert find_matching(app_secret_hash("CCCCDDDD"), stored) == 1
    assert find_matching(app_secret_hash("cccc dddd"), stored) == 1
    assert find_matching(app_secret_hash("eeee"), stored) is None
    assert find_matching(app_secret_hash("x"), []) is None
