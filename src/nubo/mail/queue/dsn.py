"""Delivery status notifications: the bounce and delay reports sent back.

Bytes in, bytes out, no I/O. ``build_dsn`` writes one report per message
and pass, in the form of RFC 3464 inside a multipart/report (RFC 6522): a
human-readable part, the machine-readable ``message/delivery-status`` with
one block of fields per recipient (Final-Recipient, Action, Status,
Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and the
original message's header as ``text/rfc822-headers``. It comes from
``MAILER-DAEMON@<hostname>``, marked ``Auto-Submitted: auto-replied``
(RFC 3834 §5), and is sent with an empty envelope sender (RFC 5321 §4.5.5)
so that it is never itself bounced.

When an address or the original header holds UTF-8, the report uses the
internationalized types of RFC 6533 (``utf-8`` address type,
``message/global-delivery-status``, ``message/global-headers``).

Limitation: the original message's body is never returned (RET=HDRS, as if
RFC 3461 RET were always HDRS) and ENVID/ORCPT are not kept, because the
submission side does not take RFC 3461 parameters.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from nubo.mail.mime.scan import Scanner
from nubo.mail.queue.reply import Reply
from nubo.mail.queue.schedule import Report

# The original header returned is cut, at a line end, past this many octets.
MAX_HEADER = 64 * 1024


@dataclass(frozen=True)
class DsnEntry:
    """One recipient's block in a report."""

    recipient: str
    report: Report
    reply: Reply
    last_attempt: datetime
    retry_until: datetime | None = None  # for a delay
    expired: bool = False  # failed because retrying ran out of time


def build_dsn(
    *,
    hostname: str,
    sender: str,
    arrival: datetime,
    entries: Sequence[DsnEntry],
    original: bytes,
    now: datetime,
) -> bytes:
    """The report, as the bytes of a message to ``sender``."""
    header = original_header(original)
    utf8 = _non_ascii(sender, *(e.recipient for e in entries)) or not header.isascii()
    failed = any(e.report is Report.FAILED for e in entries)
    boundary = f"dsn-{secrets.token_hex(12)}"

    subject = (
        "Undelivered Mail Returned to Sender"
        if failed
        else "Delayed Mail (still being retried)"
    )
    top = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{sender}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f' boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
    ]
    status_type = (
        "message/global-delivery-status" if utf8 else "message/delivery-status"
    )
    header_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    parts = [
        _part(
            f"text/plain; charset={'utf-8' if utf8 else 'us-ascii'}",
            _lines(_human(hostname, entries, failed)),
        ),
        _part(status_type, _lines(_status(hostname, arrival, entries))),
        _part(header_type, header),
    ]

    out = bytearray(_lines(top))
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def original_header(raw: bytes) -> bytes:
    """The header section of ``raw`` with CRLF line ends and its empty line
    dropped, cut at a line end past ``MAX_HEADER`` octets."""
    found = Scanner(raw).empty_line(0)
    header = raw if found is None else raw[: found[0]]
    if len(header) > MAX_HEADER:
        cut = header.rfind(b"\n", 0, MAX_HEADER)
        header = header[: cut + 1 if cut >= 0 else MAX_HEADER]
    lines = header.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def _human(hostname: str, entries: Sequence[DsnEntry], failed: bool) -> list[str]:
    lines = [f"This is the mail system at {hostname}.", ""]
    if failed:
        lines += [
            "Your message could not be delivered to one or more recipients.",
            "The details follow; the header of your message is attached.",
        ]
    else:
        lines += [
            "Your message has not been delivered yet to one or more",
            "recipients. It will be retried; you need do nothing now.",
        ]
    lines.append("")
    for entry in entries:
        lines.append(f"<{entry.recipient}>: {_explain(entry)}")
    return lines


def _explain(entry: DsnEntry) -> str:
    reason = str(entry.reply) or "no reason given"
    if entry.reply.remote_mta:
        reason = f"{entry.reply.remote_mta} said: {reason}"
    if entry.expired:
        return f"gave up retrying; last failure: {reason}"
    if entry.report is Report.DELAYED and entry.retry_until is not None:
        until = format_datetime(entry.retry_until)
        return f"delayed ({reason}); retried until {until}"
    return reason


def _status(hostname: str, arrival: datetime, entries: Sequence[DsnEntry]) -> list[str]:
    # RFC 3464 §2.2: per-message fields, then a block per recipient (§2.3).
    lines = [
        f"Reporting-MTA: dns; {hostname}",
        f"Arrival-Date: {format_datetime(arrival)}",
    ]
    for entry in entries:
        reply = entry.reply
        address_type = "utf-8" if _non_ascii(entry.recipient) else "rfc822"
        lines += [
            "",
            f"Final-Recipient: {address_type}; {entry.recipient}",
            f"Action: {entry.report.value}",
            f"Status: {reply.status}",
        ]
        if reply.remote_mta:
            lines.append(f"Remote-MTA: dns; {reply.remote_mta}")
        if reply.code:
            lines.append(f"Diagnostic-Code: smtp; {reply}")
        lines.append(f"Last-Attempt-Date: {format_datetime(entry.last_attempt)}")
        if entry.report is Report.DELAYED and entry.retry_until is not None:
            lines.append(f"Will-Retry-Until: {format_datetime(entry.retry_until)}")
    return lines


def _part(content_type: str, body: bytes) -> bytes:
    # The line end before a boundary belongs to the boundary (RFC 2046
    # §5.1.1), so every body ends with one of its own.
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return f"Content-Type: {content_type}\r\n\r\n".encode() + body


def _lines(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def _non_ascii(*texts: str) -> bool:
    return not all(text.isascii() for text in texts)
