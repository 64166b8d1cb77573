"""The trace header each SMTP server prepends: ``Received`` (RFC 5321 §4.4).

Its parts: ``from`` the name the client gave in EHLO or HELO and its address
in brackets (no reverse DNS: a lookup per connection costs time and says
little); ``by`` this server's name; ``with`` the protocol in RFC 3848's words
(ESMTP, plus S for TLS and A for AUTH; UTF8SMTP for SMTPUTF8, RFC 6531
§3.7.3); ``id`` a token naming the transaction in the logs; then the date.
Submission names the listener instead of the client's EHLO name and omits
its address: where a member sends from is none of the recipients' business,
and mail clients often say their own address in EHLO (RFC 5321 §4.4 asks
for both with SHOULD, not MUST).

Also here: ``message_token``, the id, and ``address_literal``.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

# What survives of a client's EHLO name: the characters of a domain or an
# address literal. Anything else (parentheses, semicolons, UTF-8) could
# change how the header reads, so it becomes "?".
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-:\[\]_]")
MAX_HELO = 255


def message_token() -> str:
    """A short random id for one transaction (Received id, logs)."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def address_literal(ip: str) -> str:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 §4.1.3)."""
    try:
        parsed = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "[unknown]"
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    if parsed.version == 6:
        return f"[IPv6:{parsed.compressed}]"
    return f"[{parsed}]"


def with_protocol(*, esmtp: bool, tls: bool, auth: bool, utf8: bool) -> str:
    """RFC 3848 §2 (and RFC 6531 §3.7.3 for UTF8): SMTP, ESMTPS, ESMTPSA..."""
    if not esmtp:
        return "SMTP"
    name = "UTF8SMTP" if utf8 else "ESMTP"
    return name + ("S" if tls else "") + ("A" if auth else "")


def received(
    *,
    helo: str,
    client_ip: str | None,
    hostname: str,
    protocol: str,
    token: str,
    when: datetime | None = None,
) -> bytes:
    """The ``Received`` field, folded, ending in CRLF."""
    name = _UNSAFE.sub("?", helo[:MAX_HELO]) or "unknown"
    source = name if client_ip is None else f"{name} ({address_literal(client_ip)})"
    date = format_datetime(when or datetime.now(UTC))
    field = (
        f"Received: from {source}\r\n"
        f"\tby {hostname} with {protocol} id {token};\r\n"
        f"\t{date}\r\n"
    )
    return field.encode("ascii", "replace")
