"""nubo.mail.dkim: keys made once per domain, signatures dkimpy verifies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import dkim as dkimpy
import dns.resolver
import pytest
from sqlalchemy import func, select

from nubo.accounts import Accounts
from nubo.config import load
from nubo.mail.dkim import (
    SIGNED_FIELDS,
    DkimKey,
    SigningError,
    check_selector,
    dns_name,
    dns_record,
    domain_key,
    ensure_key,
    generate_key,
    sign,
    sign_async,
)
from nubo.store.database import Database
from nubo.store.schema import dkim_keys
from tests.mail.dnsserver import serve_dns

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: lunch\r\n"
    b"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"At noon?\r\n"
)


@pytest.fixture(scope="module")
def key() -> DkimKey:
    return generate_key(1, "nubo")


@pytest.fixture(scope="module")
def records(key: DkimKey) -> dict[str, Any]:
    return {dns_name(key, "example.org"): {"TXT": [dns_record(key)]}}


@pytest.fixture(scope="module")
def txt_lookup(records: dict[str, Any]) -> Iterator[Callable[..., bytes | None]]:
    """A dkimpy dnsfunc asking the loopback DNS server (blocking: use a thread)."""
    with serve_dns(records) as address:
        host, port = address.split(":")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(port)
        resolver.lifetime = 2.0

        def lookup(name: bytes, timeout: float = 5) -> bytes | None:
            try:
                answer = resolver.resolve(name.decode(), "TXT")
            except dns.resolver.NXDOMAIN:
                return None
            return b"".join(answer[0].strings)

        yield lookup


async def verifies(message: bytes, lookup: Callable[..., bytes | None]) -> bool:
    result = await asyncio.to_thread(dkimpy.verify, message, dnsfunc=lookup)
    return bool(result)


# -- signing -------------------------------------------------------------------


async def test_signature_verifies_with_dkimpy(
    key: DkimKey, txt_lookup: Callable[..., bytes | None]
) -> None:
    signed = sign(MESSAGE, key, "example.org") + MESSAGE
    assert await verifies(signed, txt_lookup)


async def test_sign_async_verifies(
    key: DkimKey, txt_lookup: Callable[..., bytes | None]
) -> None:
    signed = await sign_async(MESSAGE, key, "example.org") + MESSAGE
    assert await verifies(signed, txt_lookup)


async def test_altered_body_fails(
    key: DkimKey, txt_lookup: Callable[..., bytes | None]
) -> None:
    signed = sign(MESSAGE, key, "example.org") + MESSAGE
    assert not await verifies(signed.replace(b"At noon?", b"At one?"), txt_lookup)


@pytest.mark.parametrize(
    "added",
    [b"From: mallory@example.com\r\n", b"Reply-To: mallory@example.com\r\n"],
)
async def test_added_fields_break_the_signature(
    key: DkimKey, txt_lookup: Callable[..., bytes | None], added: bytes
) -> None:
    signature = sign(MESSAGE, key, "example.org")
    head, body = MESSAGE.split(b"\r\n\r\n", 1)
    tampered = signature + head + b"\r\n" + added + b"\r\n" + body
    assert not await verifies(tampered, txt_lookup)


async def test_relays_may_add_trace_fields(
    key: DkimKey, txt_lookup: Callable[..., bytes | None]
) -> None:
    signature = sign(MESSAGE, key, "example.org")
    received = b"Received: from mx.example.org by mx.example.net; Sun, 1 Mar 2026\r\n"
    assert await verifies(received + signature + MESSAGE, txt_lookup)


def test_signature_names_the_fields_relaxed(key: DkimKey) -> None:
    fields = dict(
        dkimpy.util.parse_tag_value(sign(MESSAGE, key, "Example.ORG").split(b":", 1)[1])
    )
    assert fields[b"c"] == b"relaxed/relaxed"
    assert fields[b"a"] == b"rsa-sha256"
    assert fields[b"d"] == b"example.org"
    assert fields[b"s"] == b"nubo"
    signed = [name.strip() for name in fields[b"h"].split(b":")]
    # Present fields once more than they occur, absent ones once.
    assert signed.count(b"from") == 2
    assert signed.count(b"reply-to") == 1
    assert {name.lower().encode() for name in SIGNED_FIELDS} == set(signed)


def test_signature_lines_fit(key: DkimKey) -> None:
    signature = sign(MESSAGE, key, "example.org")
    assert signature.startswith(b"DKIM-Signature: ")
    assert signature.endswith(b"\r\n")
    lines = signature[:-2].split(b"\r\n")
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith((b" ", b"\t")) for line in lines[1:])


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"no colon in this header line\r\n\r\nbody\r\n",
        b"\x00\xff: \x80\r\n\r\n",
        b" continuation first\r\nFrom: a\r\n\r\n",
        b"X" * 10_000,
    ],
)
def test_garbage_is_a_signing_error(key: DkimKey, garbage: bytes) -> None:
    with pytest.raises(SigningError) as caught:
        sign(garbage, key, "example.org")
    assert "XXX" not in str(caught.value)  # no message content in the error


def test_dns_record_is_a_key_dkimpy_reads(key: DkimKey) -> None:
    record = dns_record(key)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    _pk, bits, ktag, _tlsrpt = dkimpy.evaluate_pk(b"x", record.encode())
    assert (bits, ktag) == (2048, b"rsa")
    assert dns_name(key, "Example.org.") == "nubo._domainkey.example.org"


@pytest.mark.parametrize("selector", ["nubo", "2026-03", "a.b", "S1"])
def test_selectors(selector: str) -> None:
    assert check_selector(selector) == selector.lower()


@pytest.mark.parametrize("selector", ["", "-x", "x-", "a..b", "a b", "x" * 64, "é"])
def test_bad_selectors(selector: str) -> None:
    with pytest.raises(ValueError):
        check_selector(selector)


# -- keys in the store ---------------------------------------------------------


@pytest.fixture
async def domain_id(database: Database) -> int:
    accounts = Accounts(database, load(environ={}))
    return (await accounts.add_domain("example.org")).id


async def test_ensure_key_is_idempotent(database: Database, domain_id: int) -> None:
    first = await ensure_key(database, domain_id, "nubo")
    again = await ensure_key(database, domain_id, "other")
    assert again == first
    assert first.selector == "nubo"
    assert first.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")


async def test_ensure_key_races_end_with_one_key(
    database: Database, domain_id: int
) -> None:
    keys = await asyncio.gather(
        *(ensure_key(database, domain_id, "nubo") for _ in range(6))
    )
    assert len({key.private_key for key in keys}) == 1
    async with database.read() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(dkim_keys))
        ).scalar()
    assert count == 1


async def test_domain_key_by_name(database: Database, domain_id: int) -> None:
    key = await domain_key(database, "EXAMPLE.org.", "nubo")
    assert key is not None
    assert key.domain_id == domain_id
    assert await domain_key(database, "example.net", "nubo") is None


async def test_stored_key_signs(
    database: Database,
    domain_id: int,
    txt_lookup: Callable[..., bytes | None],
    records: dict[str, Any],
) -> None:
    key = await ensure_key(database, domain_id, "nubo")
    # Its own d= domain, so the module's key at example.org stays published.
    records[dns_name(key, "stored.example")] = {"TXT": [dns_record(key)]}
    signed = await sign_async(MESSAGE, key, "stored.example") + MESSAGE
    assert await verifies(signed, txt_lookup)
