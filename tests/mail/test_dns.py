"""nubo.mail.dns against a DNS server on loopback: answers, errors, settings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from nubo.config import ConfigError, load
from nubo.mail.dns import (
    DnsError,
    NullMx,
    NxDomain,
    Resolver,
    parse_host_port,
    parse_mx_override,
    parse_servers,
)
from tests.mail.dnsserver import DROP, SERVFAIL, DnsServer, free_udp_port, serve_dns

LONG_TXT = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(60)) + " -all"

RECORDS: dict[str, Any] = {
    "example.org": {
        "MX": [
            (20, "mx2.example.org"),
            (10, "mx1.example.org"),
            (20, "mx3.example.org"),
        ],
        "TXT": ["v=spf1 mx -all", ["part one ", "part two"]],
    },
    "mx1.example.org": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
    "long.example.org": {"TXT": [LONG_TXT]},
    "implicit.example": {"A": ["192.0.2.7"]},
    "implicit6.example": {"AAAA": ["2001:db8::7"]},
    "null.example": {"MX": [(0, ".")], "A": ["192.0.2.8"]},
    "nomail.example": {"TXT": ["nothing here"]},
    "broken.example": SERVFAIL,
    "slow.example": DROP,
    "half.example": {"A": ["192.0.2.9"], "AAAA": SERVFAIL},
    "alias.example": {"CNAME": "mx1.example.org"},
}


@pytest.fixture(scope="module")
def dns_address() -> Iterator[str]:
    with serve_dns(RECORDS) as address:
        yield address


@pytest.fixture
def resolver(dns_address: str) -> Resolver:
    host, port = parse_host_port(dns_address, 53)
    return Resolver([(host, port)], timeout=1.0)


async def test_mx_sorted_by_preference(resolver: Resolver) -> None:
    hosts = await resolver.mx("example.org")
    assert hosts[0] == (10, "mx1.example.org")
    assert sorted(hosts[1:]) == [(20, "mx2.example.org"), (20, "mx3.example.org")]


async def test_mx_accepts_trailing_dot_and_case(resolver: Resolver) -> None:
    hosts = await resolver.mx("Example.ORG.")
    assert hosts[0] == (10, "mx1.example.org")


async def test_no_mx_falls_back_to_the_address(resolver: Resolver) -> None:
    # RFC 5321 §5.1: the domain itself is the implicit MX.
    assert await resolver.mx("implicit.example") == [(0, "implicit.example")]
    assert await resolver.mx("implicit6.example") == [(0, "implicit6.example")]


async def test_null_mx_says_no_mail(resolver: Resolver) -> None:
    with pytest.raises(NullMx) as caught:
        await resolver.mx("null.example")
    assert caught.value.temporary is False
    assert isinstance(caught.value, DnsError)


async def test_no_mx_and_no_address_is_permanent(resolver: Resolver) -> None:
    with pytest.raises(DnsError) as caught:
        await resolver.mx("nomail.example")
    assert caught.value.temporary is False


async def test_nxdomain_is_permanent(resolver: Resolver) -> None:
    with pytest.raises(NxDomain) as caught:
        await resolver.mx("missing.example")
    assert caught.value.temporary is False


async def test_servfail_is_temporary(resolver: Resolver) -> None:
    with pytest.raises(DnsError) as caught:
        await resolver.txt("broken.example")
    assert caught.value.temporary is True
    assert not isinstance(caught.value, NxDomain)


async def test_timeout_is_temporary(resolver: Resolver) -> None:
    with pytest.raises(DnsError) as caught:
        await resolver.mx("slow.example")
    assert caught.value.temporary is True
    assert "timeout" in str(caught.value)


async def test_no_server_listening_is_temporary() -> None:
    resolver = Resolver([("127.0.0.1", free_udp_port())], timeout=0.5)
    with pytest.raises(DnsError) as caught:
        await resolver.addresses("example.org")
    assert caught.value.temporary is True


async def test_addresses_both_families(resolver: Resolver) -> None:
    assert await resolver.addresses("mx1.example.org") == ["192.0.2.1", "2001:db8::1"]


async def test_addresses_forgive_one_failing_family(resolver: Resolver) -> None:
    assert await resolver.addresses("half.example") == ["192.0.2.9"]


async def test_addresses_follow_cname(resolver: Resolver) -> None:
    assert await resolver.addresses("alias.example") == ["192.0.2.1", "2001:db8::1"]


async def test_addresses_of_a_name_without_any(resolver: Resolver) -> None:
    assert await resolver.addresses("nomail.example") == []


async def test_txt_joins_strings(resolver: Resolver) -> None:
    found = await resolver.txt("example.org")
    assert sorted(found) == ["part one part two", "v=spf1 mx -all"]


async def test_long_txt_comes_whole_over_tcp(resolver: Resolver) -> None:
    # Longer than 255 octets (several strings) and than 512 (truncated on UDP).
    assert await resolver.txt("long.example.org") == [LONG_TXT]


async def test_txt_of_name_without_txt_is_empty(resolver: Resolver) -> None:
    assert await resolver.txt("mx1.example.org") == []


@pytest.mark.parametrize(
    "name", ["a..b.example", "x" * 64 + ".example", "", "bad name\x00.example"]
)
async def test_invalid_names_are_permanent_errors(
    resolver: Resolver, name: str
) -> None:
    with pytest.raises(DnsError) as caught:
        await resolver.txt(name)
    assert caught.value.temporary is False


async def test_a_slow_lookup_does_not_hold_up_others(resolver: Resolver) -> None:
    slow = asyncio.ensure_future(resolver.txt("slow.example"))
    try:
        assert await resolver.txt("nomail.example") == ["nothing here"]
        assert not slow.done()
    finally:
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)


async def test_answers_are_cached(dns_address: str) -> None:
    records: dict[str, Any] = {"cached.example": {"TXT": ["one"]}}
    with DnsServer(records) as server:
        host, port = parse_host_port(server.address, 53)
        resolver = Resolver([(host, port)], timeout=1.0)
        assert await resolver.txt("cached.example") == ["one"]
        assert await resolver.txt("cached.example") == ["one"]
        assert server.queries == [("cached.example", "TXT")]


# -- where outgoing mail goes ------------------------------------------------


async def test_outbound_hosts_use_mx_and_outbound_port(dns_address: str) -> None:
    config = load(environ={}).replace(dns_servers=dns_address, outbound_port=2525)
    resolver = Resolver.from_config(config)
    hosts = await resolver.outbound_hosts("example.org")
    assert hosts[0] == ("mx1.example.org", 2525)
    assert len(hosts) == 3


async def test_outbound_hosts_prefer_override_then_star(dns_address: str) -> None:
    config = load(environ={}).replace(
        dns_servers=dns_address,
        mx_override="example.org=127.0.0.1:2526, *=[::1]:2527",
    )
    resolver = Resolver.from_config(config)
    assert await resolver.outbound_hosts("EXAMPLE.org") == [("127.0.0.1", 2526)]
    assert await resolver.outbound_hosts("missing.example") == [("::1", 2527)]


async def test_outbound_hosts_relay_wins(dns_address: str) -> None:
    config = load(environ={}).replace(
        dns_servers=dns_address,
        mx_override="*=127.0.0.1:2526",
        relay_host="smarthost.example.net",
        outbound_port=587,
    )
    resolver = Resolver.from_config(config)
    assert await resolver.outbound_hosts("example.org") == [
        ("smarthost.example.net", 587)
    ]


async def test_outbound_hosts_pass_null_mx_on(resolver: Resolver) -> None:
    with pytest.raises(NullMx):
        await resolver.outbound_hosts("null.example")


# -- settings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mx.example.org", ("mx.example.org", 25)),
        ("MX.example.org:2525", ("mx.example.org", 2525)),
        ("127.0.0.1:53", ("127.0.0.1", 53)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
        ("[::1]", ("::1", 25)),
        ("2001:db8::1", ("2001:db8::1", 25)),
        (" host ", ("host", 25)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text, 25) == expected


@pytest.mark.parametrize(
    "text",
    ["", ":25", "host:", "host:0", "host:65536", "host:x", "[::1", "[x]:1", "[::1]:"],
)
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text, 25)


def test_parse_servers() -> None:
    assert parse_servers("") == []
    assert parse_servers("127.0.0.1, 127.0.0.2:5353,[::1]:53") == [
        ("127.0.0.1", 53),
        ("127.0.0.2", 5353),
        ("::1", 53),
    ]
    with pytest.raises(ValueError):
        parse_servers("dns.example.org")


def test_parse_mx_override() -> None:
    assert parse_mx_override("a.example=h:2525,*=127.0.0.1", 25) == {
        "a.example": ("h", 2525),
        "*": ("127.0.0.1", 25),
    }
    for bad in ("a.example", "=h:25", "a.example=h:x"):
        with pytest.raises(ValueError):
            parse_mx_override(bad, 25)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("dns_servers", "resolver.example"),
        ("mx_override", "example.org"),
        ("relay_host", "smarthost:99999"),
    ],
)
def test_bad_settings_name_themselves(setting: str, value: str) -> None:
    # The settings are checked as they load, before a resolver is built.
    with pytest.raises(ConfigError, match=setting):
        Resolver.from_config(load(environ={}).replace(**{setting: value}))
