"""Storage quotas: sizes as people write them (``5G``, ``500M``) and as bytes.

Units are K, M, G, T and P, binary, as the default quota is (``5G`` is
5 × 1024³ bytes); ``B``, ``iB`` and ``KB``-style suffixes are accepted and
mean the same. A number without a unit is a whole number of bytes; with a
unit it may have a fraction, rounded up to a whole byte, so that only 0 means
unlimited. Digits are ASCII only.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from nubo.accounts.errors import InvalidQuota

UNLIMITED = 0

# The largest value a BIGINT column holds.
MAX_BYTES = 2**63 - 1

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
# A sign is read so that "-5G" is refused as negative, not as unreadable.
_SIZE = re.compile(
    r"([-+]?)([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*(?:([kmgtp])(?:i?b)?|(b?))",
    re.IGNORECASE | re.ASCII,
)


def parse_size(text: str) -> int:
    """Bytes for ``"5G"``, ``"1.5 GiB"``, ``"500M"``, ``"1048576"`` or ``"0"``."""
    shown = text.strip()[:40]
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidQuota(
            f"invalid size {shown!r}: use bytes or a number with K, M, G, T or "
            "P, such as 500M or 5G"
        )
    sign, number, unit, _bytes = match.groups()
    if not unit and "." in number:
        raise InvalidQuota(
            f"invalid size {shown!r}: bytes are whole; use a unit for a "
            "fraction, such as 1.5G"
        )
    size = math.ceil(Decimal(number) * _UNITS[(unit or "").lower()])
    return check_quota(-size if sign == "-" else size)


def check_quota(size: int) -> int:
    """The quota if a BIGINT holds it and it is not negative."""
    if size < 0:
        raise InvalidQuota("a quota cannot be negative")
    if size > MAX_BYTES:
        raise InvalidQuota("the quota is too large")
    return size


def format_size(size: int) -> str:
    """``"5G"``, ``"1.5G"`` (rounded), ``"123"`` bytes, or ``"unlimited"``."""
    if size == UNLIMITED:
        return "unlimited"
    for unit in ("P", "T", "G", "M", "K"):
        factor = _UNITS[unit.lower()]
        if size < factor:
            continue
        # "8192P", not "8192.0P", when rounding gives a whole number.
        rounded = f"{size / factor:.1f}".removesuffix(".0")
        return f"{rounded}{unit}"
    return str(size)
