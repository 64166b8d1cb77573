"""``nubo domain dns`` and the mail commands (``nubo queue``).

``nubo domain dns DOMAIN`` prints the DNS records a hosted domain needs, one
per line in zone-file form (RFC 1035 §5.1), ready to paste into the
domain's zone; lines starting with ";" are zone-file comments. It makes the
domain's DKIM key if it has none yet. The records:

- MX: the domain's mail goes to this server's hostname (RFC 5321 §5.1).
- SPF (RFC 7208): "v=spf1 mx -all", only this domain's MX hosts send for it.
- DKIM (RFC 6376 §3.6.2): the public key at ``<selector>._domainkey``.
- DMARC (RFC 7489 §6.3): quarantine what fails, aggregate reports to the
  domain's postmaster.
- autoconfig and autodiscover CNAMEs, which Thunderbird and Outlook try.
- SRV records for mail clients (RFC 6186, RFC 8314 §5.1): submission and
  IMAP, implicit TLS preferred; POP3 marked as not offered ("." target).
  They carry the standard ports 587, 465, 143 and 993, which clients
  expect in production, whatever ports nubo listens on; a comment says so
  when they differ.

``nubo queue list`` prints one line per queued message: its id, envelope
sender ("<>" for a report), recipients still to deliver, attempts so far,
next attempt and the last reply; an empty queue prints "queue empty", so
no output never has to be guessed at. ``nubo queue retry [ID]`` makes one
message (or all) due now; ``nubo queue delete ID`` drops one without
telling its sender. An unknown id ends the command with "no such queued
message"; an id that is not a number from 1 to 2**63 - 1 is a usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nubo.accounts import AccountsError
from nubo.accounts.addresses import normalize_domain
from nubo.cli.common import CommandError, runtime
from nubo.config import Config
from nubo.mail.dkim import DkimKey, check_selector, dns_name, dns_record, domain_key
from nubo.mail.queue import MAX_QUEUE_ID, Outbound, QueueEntry, QueueError
from nubo.store.database import describe_error

TTL = 3600

# (service, priority, port): RFC 8314 §5.1 has clients prefer implicit TLS.
SRV_SERVICES = (
    ("_submissions._tcp", 0, 465),
    ("_submission._tcp", 10, 587),
    ("_imaps._tcp", 0, 993),
    ("_imap._tcp", 10, 143),
)
NOT_OFFERED = ("_pop3s._tcp", "_pop3._tcp")  # RFC 6186 §4: target "."
STANDARD_PORTS = {
    "submissions_port": 465,
    "submission_port": 587,
    "imaps_port": 993,
    "imap_port": 143,
}


def register(commands: Any) -> None:
    """Top-level mail commands (``nubo queue ...``)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "queue", help="outgoing mail waiting for delivery"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("list", help="list queued messages").set_defaults(
        handler=_queue_list
    )
    retry = actions.add_parser("retry", help="make queued messages due now")
    retry.add_argument(
        "id", nargs="?", type=_queue_id, help="one message; all if absent"
    )
    retry.set_defaults(handler=_queue_retry)
    delete = actions.add_parser("delete", help="drop a message, telling no one")
    delete.add_argument("id", type=_queue_id)
    delete.set_defaults(handler=_queue_delete)


def register_domain(actions: Any) -> None:
    """Actions added to the ``nubo domain`` group built in cli/accounts.py."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "dns", help="print the DNS records to publish for a domain"
    )
    parser.add_argument("name", help="a hosted domain")
    parser.set_defaults(handler=_domain_dns)


async def _domain_dns(args: argparse.Namespace, config: Config) -> int:
    try:
        domain = normalize_domain(args.name)
    except AccountsError as exc:
        raise CommandError(str(exc)) from None
    try:
        selector = check_selector(config.dkim_selector)
    except ValueError as exc:
        raise CommandError(f"setting dkim_selector: {exc}") from None

    async with runtime(config) as rt:
        key = await domain_key(rt.db, domain, selector)
    if key is None:
        raise CommandError(f"no such domain: {domain}")

    if _not_a_public_name(config.hostname):
        print(
            f"nubo: warning: hostname is {config.hostname!r}; set NUBO_HOSTNAME to "
            "the name the MX record must point to",
            file=sys.stderr,
        )
    for line in zone_lines(domain, config, key):
        print(line)
    return 0


def zone_lines(domain: str, config: Config, key: DkimKey) -> list[str]:
    """The records of ``domain`` (A-labels) in zone-file form."""
    host = _absolute(config.hostname)
    lines = [
        _record(domain, "MX", f"10 {host}"),
    ]
    if config.relay_host:
        lines.append(
            "; relay_host is set: add the relay's own SPF mechanism "
            "(such as include:...) before -all"
        )
    lines += [
        _record(domain, "TXT", _quoted("v=spf1 mx -all")),
        _record(dns_name(key, domain), "TXT", _quoted(dns_record(key))),
        _record(
            f"_dmarc.{domain}",
            "TXT",
            _quoted(f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"),
        ),
        _record(f"autoconfig.{domain}", "CNAME", host),
        _record(f"autodiscover.{domain}", "CNAME", host),
    ]
    moved = [
        f"{name}={config.values[name]}"
        for name, port in STANDARD_PORTS.items()
        if config.values[name] != port
    ]
    if moved:
        lines.append(
            "; SRV records give the standard ports; nubo listens on "
            + ", ".join(moved)
            + ": forward the standard ports to them"
        )
    for service, priority, port in SRV_SERVICES:
        lines.append(
            _record(f"{service}.{domain}", "SRV", f"{priority} 1 {port} {host}")
        )
    for service in NOT_OFFERED:
        lines.append(_record(f"{service}.{domain}", "SRV", "0 0 0 ."))
    return lines


def _record(name: str, rtype: str, data: str) -> str:
    return f"{_absolute(name):<40} {TTL} IN {rtype:<5} {data}"


def _absolute(name: str) -> str:
    return name.rstrip(".") + "."


def _quoted(value: str) -> str:
    """A TXT value as character-strings of at most 255 octets (RFC 1035 §3.3)."""
    raw = value.encode("utf-8")
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join(f'"{_escaped(chunk)}"' for chunk in chunks)


def _escaped(chunk: bytes) -> str:
    """Zone-file escapes: \\" and \\\\, and \\DDD outside printable ASCII."""
    out = []
    for octet in chunk:
        if octet in (0x22, 0x5C):
            out.append("\\" + chr(octet))
        elif 0x20 <= octet < 0x7F:
            out.append(chr(octet))
        else:
            out.append(f"\\{octet:03d}")
    return "".join(out)


def _not_a_public_name(hostname: str) -> bool:
    if hostname in ("localhost", "") or "." not in hostname:
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


# -- queue -------------------------------------------------------------------


def _queue_id(text: str) -> int:
    # ASCII digits only (int() also reads other scripts' digits), and no
    # more than the id column holds.
    try:
        value = int(text) if text.isascii() and text.isdigit() else 0
    except ValueError:  # more digits than int() converts
        value = 0
    if not 1 <= value <= MAX_QUEUE_ID:
        raise argparse.ArgumentTypeError(f"not a queue id: {text!r}")
    return value


@asynccontextmanager
async def _outbound(config: Config) -> AsyncIterator[Outbound]:
    # The command says what it did; the service's INFO lines would repeat it.
    if config.log_level.lower() != "debug":
        logging.getLogger("nubo.mail.queue").setLevel(logging.WARNING)
    async with runtime(config) as rt:
        yield Outbound.for_runtime(rt)


async def _queue_list(_args: argparse.Namespace, config: Config) -> int:
    async with _queue_errors(), _outbound(config) as outbound:
        entries = await outbound.list()
    for entry in entries:
        print(_queue_line(entry))
    if not entries:
        print("queue empty")
    return 0


def _queue_line(entry: QueueEntry) -> str:
    count = f"{entry.recipients} recipient{'' if entry.recipients == 1 else 's'}"
    attempts = f"{entry.attempts} attempt{'' if entry.attempts == 1 else 's'}"
    return "  ".join(
        [
            str(entry.id),
            entry.sender or "<>",
            count,
            attempts,
            f"next {entry.next_attempt_at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            f"last {entry.last_reply or 'none'}",
        ]
    )


async def _queue_retry(args: argparse.Namespace, config: Config) -> int:
    async with _queue_errors(), _outbound(config) as outbound:
        count = await outbound.retry(args.id)
    if args.id is not None:
        print(f"message {args.id} due now")
    else:
        print(f"{count} message{'' if count == 1 else 's'} due now")
    return 0


async def _queue_delete(args: argparse.Namespace, config: Config) -> int:
    async with _queue_errors(), _outbound(config) as outbound:
        pending = await outbound.delete(args.id)
    were = "recipient was" if pending == 1 else "recipients were"
    print(f"message {args.id} deleted; {pending} {were} still waiting")
    return 0


@asynccontextmanager
async def _queue_errors() -> AsyncIterator[None]:
    try:
        yield
    except QueueError as exc:
        raise CommandError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise CommandError(f"store error: {describe_error(exc)}") from None
