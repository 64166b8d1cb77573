"""Storage quotas: sizes as people write them (``5G``, ``500M``) and as bytes.

Units are binary, as the default quota is (``5G`` is 5 × 1024³ bytes); ``B``,
``iB`` and ``KB``-style suffixes are accepted and mean the same. A quota of 0
means unlimited.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from nubo.accounts.errors import InvalidQuota

UNLIMITED = 0

# The largest value a BIGINT column holds.
MAX_BYTES = 2**63 - 1

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes for ``"5G"``, ``"1.5 GiB"``, ``"500M"``, ``"1048576"`` or ``"0"``."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidQuota(
            f"invalid size {text.strip()[:40]!r}: use bytes or a number with "
            "K, M, G or T, such as 500M or 5G"
        )
    number, unit = match.groups()
    try:
        size = int(Decimal(number) * _UNITS[unit.lower()])
    except InvalidOperation:
        raise InvalidQuota(f"invalid size {text.strip()[:40]!r}") from None
    return check_quota(size)


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
        if size % factor == 0:
            return f"{size // factor}{unit}"
        return f"{size / factor:.1f}{unit}"
    return str(size)
