"""nubo.mail.authcheck against a loopback DNS server: SPF, DKIM, DMARC and the
Authentication-Results field, including DNS failures and garbage input."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from authres import AuthenticationResultsHeader  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization

from nubo.config import load
from nubo.mail.authcheck import MAX_SIGNATURES, AuthResults, verify
from nubo.mail.dkim import DkimKey, dns_record, generate_key, sign
from nubo.mail.dns import Resolver
from tests.mail.dnsserver import DROP, SERVFAIL, DnsServer, serve_dns

MESSAGES = Path(__file__).parent / "messages"

# RFC 8301 §3.2: keys under 1024 bits must not be accepted. A test key only.
WEAK_PEM = """\
-----BEGIN RSA PRIVATE KEY-----
MIIBOgIBAAJBAMOKuYe6ho8oORw+0pJ8hDqsWBpXvK65GYb16ckdx889ZpA9rjPn
d0k95mi5ox7deMZ3y1a5w54wWZa6u+P+llsCAwEAAQJBALTYINxRes79UUw5IcBO
nnAxIk5CpIMnN1+lITFadIfJUKZWev2fwo7mKlKRWXDJviwOzu6y1Ifs7NP81e9c
k+ECIQDitbfPiHeQUY0PvGowH3v+/LuJiR9GY6VdAc4DRZD9qwIhANzOJaY5a6ta
IfffRSf3zYEc2Ts6nwqTCPd3nkAMrzoRAiAW6EGgaKucG4FjW6hnIGdJBoR0izRr
ylnFIg+M6RSTbQIgQTlH1804Z9ptFEpIpGDHvK7n4F4VossCKA+WmHbmv/ECIEOy
urbCRviLv8jt+6/mDPmtX9bgve9Ffx7I33NIATQa
-----END RSA PRIVATE KEY-----
"""
GOOD_IP = "192.0.2.1"
OTHER_IP = "198.51.100.7"


@pytest.fixture(scope="module")
def key() -> DkimKey:
    return generate_key(1, "sel")


@pytest.fixture(scope="module")
def other_key() -> DkimKey:
    return generate_key(2, "sel")


@pytest.fixture(scope="module")
def weak_key() -> DkimKey:
    private = serialization.load_pem_private_key(WEAK_PEM.encode(), None)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = base64.b64encode(spki).decode()
    return DkimKey(3, "sel", "rsa-sha256", WEAK_PEM, public, datetime.now(UTC))


@pytest.fixture(scope="module")
def records(key: DkimKey, other_key: DkimKey, weak_key: DkimKey) -> dict[str, Any]:
    return {
        "sel._domainkey.weak.example": {"TXT": [dns_record(weak_key)]},
        # The author's domain: SPF, DKIM key, DMARC p=reject with sp=quarantine.
        "example.org": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        "sel._domainkey.example.org": {"TXT": [dns_record(key)]},
        "_dmarc.example.org": {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]},
        "sub.example.org": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        "bounces.example.org": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        # Strict alignment.
        "strict.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        "_dmarc.strict.example": {"TXT": ["v=DMARC1; p=reject; adkim=s; aspf=s"]},
        "sub.strict.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        # Someone else, who signs and sends too.
        "other.example": {"TXT": [f"v=spf1 ip4:{OTHER_IP} -all"]},
        "sel._domainkey.other.example": {"TXT": [dns_record(other_key)]},
        # SPF variety.
        "soft.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} ~all"]},
        "neutral.example": {"TXT": ["v=spf1 ?all"]},
        "nospf.example": {"TXT": ["google-site-verification=abc"]},
        "perm.example": {"TXT": ["v=spf1 ip4:192.0.2.x -all"]},
        "twice.example": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
        "temp.example": SERVFAIL,
        "slow.example": DROP,
        "include.example": {"TXT": ["v=spf1 include:example.org -all"]},
        "mx.example": {
            "TXT": ["v=spf1 mx -all"],
            "MX": [(10, "mail.mx.example")],
        },
        "mail.mx.example": {"A": [GOOD_IP], "AAAA": ["2001:db8::25"]},
        "mail.example.org": {"A": [GOOD_IP]},
        # A domain without DMARC.
        "nodmarc.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        # A DMARC record whose key lookup fails.
        "brokenkey.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        "sel._domainkey.brokenkey.example": SERVFAIL,
        "badkey.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
        "sel._domainkey.badkey.example": {"TXT": ["v=DKIM1; k=rsa; p=bm90IGEga2V5"]},
        "_dmarc.tempdmarc.example": SERVFAIL,
        "tempdmarc.example": {"TXT": [f"v=spf1 ip4:{GOOD_IP} -all"]},
    }


@pytest.fixture(scope="module")
def dns_address(records: dict[str, Any]) -> Iterator[str]:
    with serve_dns(records) as address:
        yield address


@pytest.fixture
def resolver(dns_address: str) -> Resolver:
    config = load(environ={}).replace(dns_servers=dns_address, dns_timeout=1.0)
    return Resolver.from_config(config)


def message(author: str = "alice@example.org", body: str = "Hello.") -> bytes:
    return (
        f"From: Alice <{author}>\r\n"
        "To: bob@example.net\r\n"
        "Subject: hello\r\n"
        "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
        "Message-ID: <1@example.org>\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def signed(raw: bytes, key: DkimKey, domain: str = "example.org") -> bytes:
    return sign(raw, key, domain) + raw


async def check(
    resolver: Resolver,
    raw: bytes,
    *,
    ip: str = GOOD_IP,
    mail_from: str = "alice@example.org",
    helo: str = "mail.example.org",
) -> AuthResults:
    return await verify(
        raw,
        client_ip=ip,
        helo=helo,
        mail_from=mail_from,
        resolver=resolver,
        authserv_id="mx.example.net",
    )


# -- SPF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail_from", "ip", "expected"),
    [
        ("alice@example.org", GOOD_IP, "pass"),
        ("alice@example.org", OTHER_IP, "fail"),
        ("alice@soft.example", OTHER_IP, "softfail"),
        ("alice@neutral.example", OTHER_IP, "neutral"),
        ("alice@nospf.example", GOOD_IP, "none"),
        ("alice@missing.example", GOOD_IP, "none"),
        ("alice@perm.example", GOOD_IP, "permerror"),
        ("alice@twice.example", GOOD_IP, "permerror"),
        ("alice@temp.example", GOOD_IP, "temperror"),
        ("alice@include.example", GOOD_IP, "pass"),
        ("alice@mx.example", GOOD_IP, "pass"),
        ("alice@mx.example", "2001:db8::25", "pass"),
        ("alice@mx.example", OTHER_IP, "fail"),
        ("<alice@example.org>", f"::ffff:{GOOD_IP}", "pass"),
    ],
)
async def test_spf(resolver: Resolver, mail_from: str, ip: str, expected: str) -> None:
    results = await check(resolver, message(), ip=ip, mail_from=mail_from)
    assert results.spf == expected
    assert results.spf_identity == "mailfrom"


async def test_spf_of_a_null_sender_checks_helo(resolver: Resolver) -> None:
    results = await check(resolver, message(), mail_from="<>", helo="example.org")
    assert (results.spf, results.spf_identity) == ("pass", "helo")
    assert "smtp.helo=example.org" in results.header()


async def test_spf_of_an_invalid_client_address(resolver: Resolver) -> None:
    results = await check(resolver, message(), ip="not an address")
    assert results.spf == "permerror"


# -- DKIM ------------------------------------------------------------------------


async def test_dkim_pass(resolver: Resolver, key: DkimKey) -> None:
    results = await check(resolver, signed(message(), key))
    assert results.dkim == "pass"
    (signature,) = results.signatures
    assert (signature.domain, signature.selector) == ("example.org", "sel")
    assert len(signature.b) == 8


async def test_dkim_fails_when_the_body_changed(
    resolver: Resolver, key: DkimKey
) -> None:
    raw = signed(message(), key).replace(b"Hello.", b"Hello!")
    results = await check(resolver, raw)
    assert results.dkim == "fail"
    assert results.signatures[0].reason == "body hash mismatch"


async def test_dkim_fails_when_a_signed_field_changed(
    resolver: Resolver, key: DkimKey
) -> None:
    raw = signed(message(), key).replace(b"Subject: hello", b"Subject: HELLO there")
    results = await check(resolver, raw)
    assert results.dkim == "fail"
    assert results.signatures[0].reason == "signature did not verify"


async def test_dkim_without_key_is_permerror(resolver: Resolver, key: DkimKey) -> None:
    raw = signed(message(), key, "nodmarc.example")  # no key published there
    results = await check(resolver, raw)
    assert results.dkim == "permerror"
    assert results.signatures[0].reason == "no key"


async def test_dkim_with_a_bad_key_is_permerror(
    resolver: Resolver, key: DkimKey
) -> None:
    results = await check(resolver, signed(message(), key, "badkey.example"))
    assert results.dkim == "permerror"
    assert results.signatures[0].reason == "bad key"


async def test_dkim_with_a_weak_key_is_permerror(
    resolver: Resolver, weak_key: DkimKey
) -> None:
    results = await check(resolver, signed(message(), weak_key, "weak.example"))
    assert results.dkim == "permerror"
    assert results.signatures[0].reason == "bad key"


async def test_dkim_key_lookup_failing_is_temperror(
    resolver: Resolver, key: DkimKey
) -> None:
    results = await check(resolver, signed(message(), key, "brokenkey.example"))
    assert results.dkim == "temperror"


@pytest.mark.parametrize(
    "field",
    [
        b"DKIM-Signature: garbage\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; h=from; "
        b"bh=AAAA; b=AAAA; c=bogus/bogus\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=ex\xffample.org; s=sel; h=from; "
        b"bh=AAAA; b=AAAA\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; h=from; "
        b"bh=AAAA; b=AAAA; x=1\r\n",
    ],
)
async def test_broken_signatures_are_permerror_or_fail(
    resolver: Resolver, field: bytes
) -> None:
    results = await check(resolver, field + message())
    assert results.dkim in ("permerror", "fail")
    assert results.dmarc == "pass"  # SPF still aligns


async def test_many_signatures_are_bounded(resolver: Resolver, key: DkimKey) -> None:
    raw = message()
    signature = sign(raw, key, "example.org")
    results = await check(resolver, signature * 50 + raw)
    assert len(results.signatures) == MAX_SIGNATURES
    assert results.dkim == "pass"


async def test_many_signatures_make_few_lookups(records: dict[str, Any]) -> None:
    fields = b"".join(
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel%d; h=from; "
        b"bh=AAAA; b=AAAA\r\n" % number
        for number in range(50)
    )
    with DnsServer(records) as server:
        config = load(environ={}).replace(dns_servers=server.address)
        results = await check(Resolver.from_config(config), fields + message())
    assert len(results.signatures) == MAX_SIGNATURES
    key_lookups = [name for name, _type in server.queries if "._domainkey." in name]
    assert len(key_lookups) == MAX_SIGNATURES


async def test_one_good_signature_among_bad_ones(
    resolver: Resolver, key: DkimKey
) -> None:
    raw = message()
    broken = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=none\r\n"
    results = await check(resolver, broken + sign(raw, key, "example.org") + raw)
    assert [s.result for s in results.signatures] == ["permerror", "pass"]
    assert results.dkim == "pass"


# -- DMARC -----------------------------------------------------------------------


async def test_dmarc_pass_by_both(resolver: Resolver, key: DkimKey) -> None:
    results = await check(resolver, signed(message(), key))
    assert (results.dmarc, results.dmarc_policy, results.from_domain) == (
        "pass",
        "reject",
        "example.org",
    )


async def test_dmarc_pass_by_aligned_spf_alone(resolver: Resolver) -> None:
    results = await check(resolver, message(), mail_from="bounce@bounces.example.org")
    assert (results.spf, results.dkim, results.dmarc) == ("pass", "none", "pass")


async def test_dmarc_pass_by_aligned_dkim_alone(
    resolver: Resolver, key: DkimKey
) -> None:
    # Forwarded: SPF fails, the author's signature survives.
    results = await check(resolver, signed(message(), key), ip=OTHER_IP)
    assert (results.spf, results.dkim, results.dmarc) == ("fail", "pass", "pass")


async def test_dmarc_fail_when_nothing_aligns(
    resolver: Resolver, other_key: DkimKey
) -> None:
    # Sent by other.example, which passes its own SPF and DKIM, as
    # ceo@example.org: neither identifier aligns with the From domain.
    raw = signed(message("ceo@example.org"), other_key, "other.example")
    results = await check(resolver, raw, ip=OTHER_IP, mail_from="x@other.example")
    assert (results.spf, results.dkim) == ("pass", "pass")
    assert (results.dmarc, results.dmarc_policy) == ("fail", "reject")


async def test_dmarc_relaxed_alignment_and_subdomain_policy(
    resolver: Resolver, key: DkimKey
) -> None:
    # From a subdomain without its own record: the organizational domain's
    # record applies with its sp= policy, and d=example.org aligns relaxed.
    raw = signed(message("alice@sub.example.org"), key)
    results = await check(resolver, raw, ip=OTHER_IP)
    assert (results.dmarc, results.dmarc_policy) == ("pass", "quarantine")
    assert results.from_domain == "sub.example.org"


async def test_dmarc_subdomain_fail_uses_sp(resolver: Resolver) -> None:
    results = await check(resolver, message("alice@sub.example.org"), ip=OTHER_IP)
    assert (results.dmarc, results.dmarc_policy) == ("fail", "quarantine")


async def test_dmarc_strict_alignment(resolver: Resolver) -> None:
    # aspf=s: SPF passes for sub.strict.example, the author is strict.example.
    raw = message("alice@strict.example")
    results = await check(resolver, raw, mail_from="b@sub.strict.example")
    assert results.spf == "pass"
    assert results.dmarc == "fail"
    exact = await check(resolver, raw, mail_from="b@strict.example")
    assert exact.dmarc == "pass"


async def test_dmarc_none_without_a_record(resolver: Resolver) -> None:
    results = await check(
        resolver, message("a@nodmarc.example"), mail_from="a@nodmarc.example"
    )
    assert (results.dmarc, results.dmarc_policy) == ("none", "")


async def test_dmarc_temperror_when_its_lookup_fails(resolver: Resolver) -> None:
    results = await check(resolver, message("a@tempdmarc.example"))
    assert results.dmarc == "temperror"


async def test_dmarc_without_from_is_permerror(resolver: Resolver) -> None:
    raw = b"To: bob@example.net\r\nSubject: no author\r\n\r\nHi\r\n"
    results = await check(resolver, raw)
    assert results.dmarc == "permerror"


# -- DNS that does not answer ------------------------------------------------------


async def test_no_answer_at_all_is_temperror_everywhere(key: DkimKey) -> None:
    with DnsServer({}, drop_all=True) as server:
        config = load(environ={}).replace(dns_servers=server.address, dns_timeout=0.5)
        results = await check(Resolver.from_config(config), signed(message(), key))
    assert (results.spf, results.dkim, results.dmarc) == (
        "temperror",
        "temperror",
        "temperror",
    )


async def test_a_slow_check_does_not_hold_up_another(
    dns_address: str, key: DkimKey
) -> None:
    config = load(environ={}).replace(dns_servers=dns_address, dns_timeout=10.0)
    resolver = Resolver.from_config(config)
    slow = asyncio.ensure_future(
        check(resolver, signed(message(), key), mail_from="a@slow.example")
    )
    try:
        quick = await check(resolver, signed(message(), key))
        assert quick.spf == "pass"
        assert not slow.done()
    finally:
        # Cancelled, the check lets its SPF thread go at once.
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)


# -- garbage ---------------------------------------------------------------------


GARBAGE = [
    b"",
    b"\x00\xff\xfe",
    b"no header at all",
    b"From: \r\n\r\n",
    b"From: <@>\r\nFrom: a@b@c\r\n\r\n",
    b"From: " + b"a" * 5000 + b"@example.org\r\n\r\n",
    b" leading continuation\r\nFrom: a@example.org\r\n\r\n",
    b"From: =?utf-8?q?=FF?= <a@\xff\xfe.example>\r\n\r\nbody",
    b"\r\n\r\n\r\n",
]


@pytest.mark.parametrize("raw", GARBAGE)
async def test_garbage_never_raises(resolver: Resolver, raw: bytes) -> None:
    results = await check(resolver, raw)
    assert results.dkim in ("none", "permerror")
    parse_header(results.header())


@pytest.mark.parametrize(
    "path", sorted(MESSAGES.glob("*.eml")), ids=lambda path: path.name
)
async def test_malformed_real_world_messages(resolver: Resolver, path: Path) -> None:
    results = await check(resolver, await asyncio.to_thread(path.read_bytes))
    assert results.spf == "pass"
    parse_header(results.header())


@pytest.mark.parametrize(
    ("helo", "mail_from"),
    [
        ("", ""),
        ("\x00\r\n", "\r\n"),
        ("[192.0.2.1]", "<>"),
        ("a" * 300, "b" * 300 + "@example.org"),
        ("mail.example.org", "not an address"),
        ("mail.example.org", "@example.org"),
        ("mail.example.org", "user@"),
    ],
)
async def test_garbage_envelope(resolver: Resolver, helo: str, mail_from: str) -> None:
    results = await check(resolver, message(), helo=helo, mail_from=mail_from)
    assert results.spf in ("none", "permerror", "pass", "fail")
    parse_header(results.header())


# -- the header field --------------------------------------------------------------


def parse_header(field: str) -> Any:
    """Check the folding and the syntax (with authres, an independent parser)."""
    assert field.startswith("Authentication-Results: ")
    assert field.endswith("\r\n")
    lines = field[:-2].split("\r\n")
    assert all(len(line) <= 78 or " " not in line.strip() for line in lines)
    assert all(line[:1] in (" ", "\t") for line in lines[1:])
    assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", field[:-2].replace("\r\n ", ""))
    return AuthenticationResultsHeader.parse(field.replace("\r\n", "\n").rstrip())


async def test_header_says_everything(resolver: Resolver, key: DkimKey) -> None:
    results = await check(resolver, signed(message(), key))
    field = results.header()
    assert field.startswith("Authentication-Results: mx.example.net;\r\n")
    parsed = parse_header(field)
    assert parsed.authserv_id == "mx.example.net"
    found = {
        result.method: (
            result.result,
            {f"{p.type}.{p.name}": p.value for p in result.properties},
        )
        for result in parsed.results
    }
    assert found["spf"] == ("pass", {"smtp.mailfrom": "alice@example.org"})
    assert found["dkim"][0] == "pass"
    assert found["dkim"][1]["header.d"] == "example.org"
    assert found["dkim"][1]["header.s"] == "sel"
    assert found["dmarc"] == ("pass", {"header.from": "example.org"})
    assert "(p=reject)" in field


async def test_header_resists_injection(resolver: Resolver) -> None:
    results = await check(
        resolver,
        message(),
        mail_from='x"\r\nX-Injected: yes\r\n@example.org',
        helo="h\r\nX-Also: yes",
    )
    field = results.header()
    assert "\r\nX-" not in field
    parse_header(field)


async def test_header_of_a_failed_signature_gives_a_reason(
    resolver: Resolver, key: DkimKey
) -> None:
    raw = signed(message(), key).replace(b"Hello.", b"Hello!")
    field = (await check(resolver, raw)).header()
    assert 'dkim=fail reason="body hash mismatch"' in field.replace("\r\n ", "")
    parse_header(field)
