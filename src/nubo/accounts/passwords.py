"""Password hashing (Argon2id) and the secrets of app passwords.

A member's password is hashed with Argon2id (RFC 9106) at the cost the
settings name. Hashing and verifying take tens of milliseconds and tens of
megabytes on purpose, so they run in worker threads, never on the event loop,
and at most ``concurrency`` at once so that a burst of logins cannot exhaust
memory.

Passwords are compared after Unicode NFC normalization, as the OpaqueString
profile asks (RFC 8265 §4.2.2), so the same password typed on two keyboards
that compose accents differently is the same password.

App passwords are random, so they need no slow hash: the store keeps the
SHA-256 of their canonical form, and comparison is constant-time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from nubo.accounts.errors import InvalidPassword

MAX_PASSWORD_CHARS = 1024

# The shortest password a member may choose (nubo.config says it too, for
# admin_password). Signing in checks no length: older passwords still work.
MIN_PASSWORD_CHARS = 8

# RFC 9106 §4 recommends 4 lanes; Argon2 needs 8 KiB of memory per lane, so a
# tiny test cost gets fewer.
_LANES = 4

# 160 random bits: far past the 128 bits below which guessing becomes a plan.
APP_SECRET_BYTES = 20
_APP_SECRET_GROUP = 4


class Passwords:
    """Argon2id hashing at one cost, off the event loop."""

    def __init__(
        self, time_cost: int, memory_kib: int, *, concurrency: int | None = None
    ) -> None:
        lanes = max(1, min(_LANES, memory_kib // 8))
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=lanes,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(concurrency or min(os.cpu_count() or 2, 8))
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """The encoded Argon2id hash of ``password`` (salt included)."""
        text = _normalize(password)
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, text)

    async def verify(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matches; a malformed hash never matches."""
        text = _normalize(password)
        async with self._slots:
            return await asyncio.to_thread(self._verify, encoded, text)

    def _verify(self, encoded: str, text: bytes) -> bool:
        try:
            return self._hasher.verify(encoded, text)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether ``encoded`` was made at another cost than the current one."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    async def dummy_hash(self) -> str:
        """A hash of a random password, verified in place of a missing user's.

        It is made at the current cost, so verifying against it takes as long
        as verifying a real user's password.
        """
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(32))
        return self._dummy


def check_password(password: str) -> str:
    """The password if a member may choose it, else InvalidPassword."""
    if not password:
        raise InvalidPassword("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidPassword(
            f"the password is longer than {MAX_PASSWORD_CHARS} characters"
        )
    # SASL PLAIN separates fields with NUL and line-based protocols end at a
    # line break: such a password could never be typed into a mail client.
    if any(unicodedata.category(char) == "Cc" for char in password):
        raise InvalidPassword("the password contains control characters")
    return password


def check_new_password(password: str) -> str:
    """``check_password``, and long enough to be chosen today."""
    check_password(password)
    if not password.strip():
        raise InvalidPassword("the password is only spaces")
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidPassword(
            f"the password is shorter than {MIN_PASSWORD_CHARS} characters"
        )
    return password


def _normalize(password: str) -> bytes:
    # surrogatepass: a client's undecodable bytes must fail to match, not crash.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def generate_password() -> str:
    """A strong password for a first administrator: 144 random bits."""
    return secrets.token_urlsafe(18)


def new_app_secret() -> str:
    """A fresh app password, grouped for reading: ``abcd-efgh-…`` (32 letters)."""
    raw = base64.b32encode(secrets.token_bytes(APP_SECRET_BYTES)).decode("ascii")
    text = raw.rstrip("=").lower()
    groups = [
        text[i : i + _APP_SECRET_GROUP] for i in range(0, len(text), _APP_SECRET_GROUP)
    ]
    return "-".join(groups)


def app_secret_hash(secret: str) -> str:
    """SHA-256 (hex) of the canonical form: dashes, spaces and case ignored.

    People retype app passwords on phones; leaving out the dashes or typing
    capitals must not make a correct secret fail.
    """
    canonical = "".join(secret.split()).replace("-", "").lower()
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def find_matching(candidate: str, stored: Iterable[str]) -> int | None:
    """Index of the stored hash equal to ``candidate``, compared in constant time.

    Every stored hash is compared, even after a match, so the time taken does
    not tell which one matched.
    """
    found: int | None = None
    for index, value in enumerate(stored):
        if hmac.compare_digest(candidate, value) and found is None:
            found = index
    return found
