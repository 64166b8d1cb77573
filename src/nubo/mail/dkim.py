"""DKIM keys of the hosted domains, and signing outgoing mail (RFC 6376).

One key per domain in the ``dkim_keys`` table: RSA 2048 with rsa-sha256
(RFC 8301 §3.2 asks for at least 1024 bits, 2048 is what receivers
expect), made with ``cryptography``. ``ensure_key`` makes it the first time
it is needed, safely when several processes ask at once: each may generate
a key, one INSERT wins (ON CONFLICT DO NOTHING) and every process reads
back that one. ``nubo domain dns`` and the first signing call it, so a
domain has its key before its records are published.

Signing is dkimpy's, relaxed/relaxed canonicalization (RFC 6376 §3.4), over
the header fields that say who wrote what to whom (``SIGNED_FIELDS``); each
is listed once more than it occurs, so that a field added in transit (a
second From, a new Reply-To) breaks the signature (RFC 6376 §8.15). A
signature costs 15 to 25 ms of CPU: ``sign_async`` runs it in a worker
thread.

# Limitation: dkimpy does the RSA operation in pure Python, two modular
# exponentiations of about 6 ms each that hold the GIL, so the event loop
# can pause that long while a message is signed. Signing the header hash
# with ``cryptography`` (which releases the GIL, about 1 ms) would lift it.
# Limitation: no key rotation yet; a new key means deleting the row and
# publishing the new record under the same selector.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import asdict, dataclass
from datetime import datetime

import dkim as dkimpy  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts import InvalidDomain, domains
from nubo.accounts.addresses import normalize_domain
from nubo.store.database import Database
from nubo.store.schema import dkim_keys, utcnow

ALGORITHM = "rsa-sha256"
KEY_BITS = 2048

# RFC 6376 §5.4.1 lists what SHOULD be signed; these are the fields that
# carry the message's meaning and that relays leave alone.
SIGNED_FIELDS = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "In-Reply-To",
    "References",
)

# A selector is a dot-separated list of DNS labels (RFC 6376 §3.1).
_SELECTOR = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


class SigningError(Exception):
    """The message could not be signed (its header section does not parse)."""


@dataclass(frozen=True)
class DkimKey:
    """A domain's signing key, as stored."""

    domain_id: int
    selector: str
    algorithm: str
    private_key: str  # PEM, PKCS#1 ("RSA PRIVATE KEY"), as dkimpy reads it
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the p= tag
    created_at: datetime


def check_selector(selector: str) -> str:
    """The selector in lowercase, or ValueError if DNS cannot hold it."""
    lowered = selector.strip().lower()
    if not _SELECTOR.fullmatch(lowered):
        raise ValueError(f"not a valid DKIM selector: {selector!r}")
    return lowered


def generate_key(domain_id: int, selector: str) -> DkimKey:
    """A new RSA key; CPU-bound (tens of milliseconds), so call it in a thread."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return DkimKey(
        domain_id=domain_id,
        selector=selector,
        algorithm=ALGORITHM,
        private_key=pem.decode("ascii"),
        public_key=base64.b64encode(spki).decode("ascii"),
        created_at=utcnow(),
    )


async def ensure_key(db: Database, domain_id: int, selector: str) -> DkimKey:
    """The domain's key, made now if it has none.

    A domain has one key: if it already has one under another selector,
    that one is returned (its ``selector`` says which).
    """
    selector = check_selector(selector)
    async with db.read() as conn:
        found = await _load(conn, domain_id)
    if found is not None:
        return found

    # Generate outside the transaction: SQLite holds its write lock for the
    # whole transaction, and a key takes tens of milliseconds to make.
    key = await asyncio.to_thread(generate_key, domain_id, selector)
    insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    statement = (
        insert(dkim_keys)
        .values(**asdict(key))
        .on_conflict_do_nothing(index_elements=["domain_id"])
    )
    async with db.write() as conn:
        await conn.execute(statement)
        stored = await _load(conn, domain_id)
    assert stored is not None  # inserted now, or by whoever won the race
    return stored


async def domain_key(db: Database, domain: str, selector: str) -> DkimKey | None:
    """The key of hosted domain ``domain`` (Unicode or A-labels), made if
    needed; None when the domain is not hosted here.
    """
    try:
        name = normalize_domain(domain)
    except InvalidDomain:
        return None
    async with db.read() as conn:
        domain_id = await domains.find_id(conn, name)
    if domain_id is None:
        return None
    return await ensure_key(db, domain_id, selector)


async def _load(conn: AsyncConnection, domain_id: int) -> DkimKey | None:
    query = select(dkim_keys).where(dkim_keys.c.domain_id == domain_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return DkimKey(**row._mapping)


# -- signing -----------------------------------------------------------------


def sign(message: bytes, key: DkimKey, domain: str) -> bytes:
    """The ``DKIM-Signature:`` field to prepend, folded, ending in CRLF.

    ``domain`` is the d= domain (the From domain, in A-labels). Raises
    SigningError when the header section cannot be parsed.
    """
    if not message:
        raise SigningError("cannot sign an empty message")
    try:
        signer = dkimpy.DKIM(message, signature_algorithm=key.algorithm.encode())
        present = [name.lower() for name, _value in signer.headers]
        fields = [
            name.lower().encode("ascii")
            for name in SIGNED_FIELDS
            for _ in range(present.count(name.lower().encode("ascii")) + 1)
        ]
        signature: bytes = signer.sign(
            key.selector.encode("ascii"),
            domain.lower().encode("ascii"),
            key.private_key.encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=fields,
        )
    # dkimpy reports some malformed input with built-in exceptions; its
    # messages quote the header, which must not reach a log.
    except (
        dkimpy.DKIMException,
        UnicodeError,
        TypeError,
        ValueError,
        IndexError,
    ) as exc:
        reason = type(exc).__name__
        raise SigningError(
            f"cannot sign: header section does not parse ({reason})"
        ) from None
    return signature


async def sign_async(message: bytes, key: DkimKey, domain: str) -> bytes:
    """``sign`` in a worker thread, so that the event loop keeps serving."""
    return await asyncio.to_thread(sign, message, key, domain)


# -- publishing ----------------------------------------------------------------


def dns_name(key: DkimKey, domain: str) -> str:
    """Where the key's record lives: ``selector._domainkey.domain``."""
    return f"{key.selector}._domainkey.{domain.lower().rstrip('.')}"


def dns_record(key: DkimKey) -> str:
    """The TXT record value to publish (RFC 6376 §3.6.1)."""
    return f"v=DKIM1; k=rsa; p={key.public_key}"
