"""What the MX and the submission handlers share: services, EHLO, failures.

A handler holds no business rule: it asks the services (accounts, the
mailstore, the outbound queue, DKIM) and turns their answers into replies.
Its hooks are aiosmtpd's (``handle_MAIL``, ``handle_RCPT``, ``handle_DATA``);
each may raise ``Refusal`` (``nubo.mail.smtp.replies``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiosmtpd.smtp import Envelope, Session

from nubo.accounts.service import Accounts
from nubo.config import Config
from nubo.mail.dns import Resolver
from nubo.mail.mailstore import Mailstore
from nubo.mail.queue.outbound import Outbound
from nubo.mail.smtp.protocol import SmtpProtocol, Transaction
from nubo.mail.smtp.replies import Refusal, reply
from nubo.mail.trace import message_token
from nubo.store.database import Database

log = logging.getLogger(__name__)

# What nubo adds to aiosmtpd's EHLO answer (SIZE, 8BITMIME, SMTPUTF8,
# STARTTLS and AUTH come from aiosmtpd).
EXTENSIONS = ("PIPELINING", "ENHANCEDSTATUSCODES")  # RFC 2920, RFC 2034


@dataclass(frozen=True)
class Services:
    """The services both SMTP roles call."""

    config: Config
    db: Database
    accounts: Accounts
    mailstore: Mailstore
    resolver: Resolver
    outbound: Outbound


class Handler:
    """Hooks common to the MX and submission."""

    listener = "smtp"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.config

    async def handle_EHLO(
        self,
        server: SmtpProtocol,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's EHLO answer and nubo's extensions (RFC 5321 §4.1.1.1)."""
        session.host_name = hostname
        *lines, last = responses
        # aiosmtpd writes "AUTH" with no mechanism when none is offered.
        lines = [line for line in lines if line.rstrip() != "250-AUTH"]
        return [*lines, *(f"250-{name}" for name in EXTENSIONS), last]

    async def handle_RSET(
        self, server: SmtpProtocol, session: Session, envelope: Envelope
    ) -> str:
        return reply(250, "2.0.0", "OK")

    async def handle_NOOP(
        self, server: SmtpProtocol, session: Session, envelope: Envelope, arg: str
    ) -> str:
        return reply(250, "2.0.0", "OK")

    async def handle_VRFY(
        self, server: SmtpProtocol, session: Session, envelope: Envelope, arg: str
    ) -> str:
        # RFC 5321 §3.5.3: 252 says neither yes nor no, so VRFY cannot be
        # used to list the members.
        return reply(252, "2.5.0", "Cannot VRFY user, but will try delivery")

    async def handle_exception(self, error: Exception) -> str:
        """A fault of nubo's, not the client's: log it, ask to retry later."""
        log.error(
            "smtp command failed listener=%s error=%s",
            self.listener,
            type(error).__name__,
            exc_info=error,
        )
        return reply(451, "4.3.0", "Local error in processing, try again later")


def accept_sender(envelope: Envelope, address: str, options: list[str]) -> str:
    """Start the transaction of MAIL FROM (RFC 5321 §4.1.1.2); its 250."""
    tx = transaction(envelope)
    tx.mail_from = address  # "<>" for the null sender, as aiosmtpd has it
    tx.mail_options.extend(options)
    tx.declared_size = parse_size(options)
    tx.token = message_token()
    return reply(250, "2.1.0", "Sender OK")


def accept_recipient(envelope: Envelope, address: str, options: list[str]) -> str:
    """Add a recipient (RFC 5321 §4.1.1.3); its 250."""
    envelope.rcpt_tos.append(address)
    envelope.rcpt_options.extend(options)
    return reply(250, "2.1.5", "Recipient OK")


def transaction(envelope: Envelope) -> Transaction:
    assert isinstance(envelope, Transaction)
    return envelope


def parse_size(options: list[str]) -> int | None:
    """The SIZE= parameter of MAIL FROM (RFC 1870 §6); aiosmtpd checked it."""
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None


def domain_of(address: str) -> str:
    """The domain of a path's address, or a 501 for one without."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise Refusal(501, "5.1.3", "Bad address syntax")
    return domain


def check_recipient_count(server: SmtpProtocol, envelope: Envelope) -> None:
    """RFC 5321 §4.5.3.1.8: past the limit, 452 and the client sends later."""
    if len(envelope.rcpt_tos) >= server.limits.max_recipients:
        raise Refusal(452, "4.5.3", "Too many recipients")
