"""The trace fields of RFC 5321 §4.4: ``Return-Path`` and ``Received``.

Shared by the SMTP listeners (``nubo.mail.smtp``) and the outbound queue's
local delivery (``nubo.mail.queue.local``); pure functions, no I/O.

``Return-Path`` is added once, by the server that does the final delivery:
the MX for what it stores at once, the queue for what goes into a local
mailbox later (a submitted message to a member of this server, a retry
the MX handed over, a DSN). It holds the envelope sender, ``<>`` for none.

``Received``, which each server (and each hop within it) prepends, has
these parts: ``from`` the name the client gave in EHLO or HELO and its address
in brackets (no reverse DNS: a lookup per connection costs time and says
little); ``by`` this server's name; ``with`` the protocol in RFC 3848's words
(ESMTP, plus S for TLS and A for AUTH; UTF8SMTP for SMTPUTF8, RFC 6531
§3.7.3); ``id`` a token naming the transaction in the logs; then the date.
Submission names the listener instead of the client's EHLO name and omits
its address: where a member sends from is none of the recipients' business,
and mail clients often say their own address in EHLO (RFC 5321 §4.4 asks
for both with SHOULD, not MUST).

The queue's local delivery is a hop of its own: ``from queue`` (the
component that hands the message over), no ``with`` (no protocol carried
it), and the queue id as ``id``.

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


def return_path(sender: str) -> bytes:
    """``Return-Path: <sender>`` ending in CRLF; ``<>`` for the null sender."""
    path = "" if sender == "<>" else sender
    return f"Return-Path: <{path}>\r\n".encode("utf-8", "surrogateescape")


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
    protocol: str | None,
    token: str,
    when: datetime | None = None,
) -> bytes:
    """The ``Received`` field, folded, ending in CRLF; ``protocol`` None
    leaves out the ``with`` clause (optional in RFC 5321 §4.4's Opt-info)."""
    name = _UNSAFE.sub("?", helo[:MAX_HELO]) or "unknown"
    source = name if client_ip is None else f"{name} ({address_literal(client_ip)})"
    date = format_datetime(when or datetime.now(UTC))
    via = "" if protocol is None else f" with {protocol}"
    field = (
        f"Received: from {source}\r\n\tby {hostname}{via} id {token};\r\n\t{date}\r\n"
    )
    return field.encode("ascii", "replace")
