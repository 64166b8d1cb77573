"""Delivery to other servers: one SMTP connection per destination, reused.

``Destination`` holds the hosts to try for one destination (the relay host,
or a domain's MX hosts, best first; see ``nubo.mail.dns``) and at most one
open connection, made on the first message and reused for the next ones
(RFC 5321 §3.3: a client may send several transactions in one session).
aiosmtplib speaks the protocol; this module decides:

- Hosts are tried in order (RFC 5321 §5.1), each host's addresses in the
  order DNS gives them, until one greets us and accepts EHLO (or HELO, RFC
  5321 §3.2). A failure to connect, a 4yz there, or a lost connection is
  temporary; only when every host refuses with a 5yz is it permanent.
- STARTTLS is used whenever the host offers it (RFC 3207), without checking
  the certificate: opportunistic TLS (RFC 7435 §3) protects against
  listeners, and refusing self-signed certificates would only push the mail
  to plaintext. A failed TLS handshake is retried once without TLS, as RFC
  7435 §6 allows. A relay on port 465 gets implicit TLS (RFC 8314 §3.3).
- Credentials for the relay are sent only over TLS (RFC 4954 §4 leaves it
  to the client); a relay without TLS is a temporary failure naming why.
- MAIL carries SIZE (RFC 1870), BODY=8BITMIME for 8-bit content when
  offered (RFC 6152) and SMTPUTF8 when the envelope or the header needs it
  and it is offered (RFC 6531 §3.4). A message larger than the host's SIZE
  is not sent (552 5.3.4); a UTF-8 address to a host without SMTPUTF8
  fails with 553 5.6.7 (RFC 6531 §3.6.2).
- Each recipient gets its own reply: RCPT's refusal, or DATA's answer.

Limitation: aiosmtplib takes the message as one bytes object, so a message
is in memory while it is sent (at most ``max_message_size`` per
concurrent delivery).
Limitation: 8-bit content goes to a host that does not offer 8BITMIME
as it is, without conversion to 7 bit (RFC 6152 §3 would have it
converted); today's servers accept it.
Limitation: no PIPELINING (RFC 2920): aiosmtplib waits for each reply.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiosmtplib import (
    SMTP,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
)

from nubo.mail.dns import DnsError
from nubo.mail.queue.reply import Reply, clean, from_smtp, no_answer

log = logging.getLogger(__name__)

SMTPS_PORT = 465  # RFC 8314 §7.3

# The connection is gone or unusable; the transaction's outcome is unknown.
_LOST = (SMTPServerDisconnected, TimeoutError, ConnectionError, OSError)


class HostResolver(Protocol):
    """What a destination needs of ``nubo.mail.dns.Resolver``."""

    async def addresses(self, host: str) -> list[str]: ...


@dataclass(frozen=True)
class ClientSettings:
    """How to talk to remote hosts (RFC 5321 §4.5.3.2 for the timeouts)."""

    local_hostname: str  # EHLO argument
    auth: tuple[str, str] | None = None  # relay credentials
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    data_timeout: float = 600.0


def opportunistic_tls() -> ssl.SSLContext:
    """A client context that encrypts but trusts any certificate (RFC 7435)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Destination:
    """The hosts of one destination and the connection to one of them."""

    def __init__(
        self,
        hosts: Sequence[tuple[str, int]],
        resolver: HostResolver,
        settings: ClientSettings,
        tls: ssl.SSLContext,
    ) -> None:
        self.hosts = list(hosts)
        self.resolver = resolver
        self.settings = settings
        self.tls = tls
        self.host = ""  # the host connected to
        self.opened = 0  # connections made, for the log
        self._smtp: SMTP | None = None
        self._failure: Reply | None = None  # why no host could be reached

    # -- sending ----------------------------------------------------------

    async def send(
        self, sender: str, recipients: Sequence[str], raw: bytes
    ) -> dict[str, Reply]:
        """One transaction; a reply for each recipient."""
        if self._smtp is None:
            if self._failure is None:
                self._failure = await self._connect()
            if self._failure is not None:
                return dict.fromkeys(recipients, self._failure)
        assert self._smtp is not None

        replies: dict[str, Reply] = {}
        try:
            await self._transaction(self._smtp, sender, recipients, raw, replies)
        except _LOST as exc:
            self._drop()
            lost = no_answer("4.4.2", f"connection lost: {_describe(exc)}", self.host)
            # Refusals already heard stand; every other outcome is unknown.
            return {r: replies.get(r, lost) for r in recipients}
        return replies

    async def _transaction(
        self,
        smtp: SMTP,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        replies: dict[str, Reply],
    ) -> None:
        host = self.host
        refused = self._refusal(smtp, sender, recipients, raw)
        if refused is not None:
            replies.update(dict.fromkeys(recipients, refused))
            return

        options = self._mail_options(smtp, sender, recipients, raw)
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        try:
            await smtp.mail(sender, options=options, encoding=encoding)
        except SMTPResponseException as exc:
            replies.update(
                dict.fromkeys(recipients, from_smtp(exc.code, exc.message, host))
            )
            await self._reset(smtp)
            return
        except ValueError:
            replies.update(dict.fromkeys(recipients, _bad_address("sender")))
            await self._reset(smtp)
            return

        accepted = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, encoding=encoding)
            except SMTPRecipientRefused as exc:
                replies[recipient] = from_smtp(exc.code, exc.message, host)
                continue
            except ValueError:
                replies[recipient] = _bad_address("recipient")
                continue
            accepted.append(recipient)
        if not accepted:
            await self._reset(smtp)
            return

        try:
            response = await smtp.data(raw, timeout=self.settings.data_timeout)
        except SMTPDataError as exc:
            replies.update(
                dict.fromkeys(accepted, from_smtp(exc.code, exc.message, host))
            )
            await self._reset(smtp)
            return
        replies.update(
            dict.fromkeys(accepted, from_smtp(response.code, response.message, host))
        )

    def _refusal(
        self, smtp: SMTP, sender: str, recipients: Sequence[str], raw: bytes
    ) -> Reply | None:
        """Why the message must not be offered to this host at all."""
        limit = smtp.esmtp_extensions.get("size", "").strip()
        if limit.isdigit() and 0 < int(limit) < len(raw):
            text = f"message larger than the {limit} octets {self.host} accepts"
            return Reply(552, "5.3.4", text, self.host)
        utf8_envelope = not all(a.isascii() for a in (sender, *recipients))
        if utf8_envelope and not smtp.supports_extension("smtputf8"):
            text = f"{self.host} does not accept UTF-8 addresses (no SMTPUTF8)"
            return Reply(553, "5.6.7", text, self.host)
        return None

    @staticmethod
    def _mail_options(
        smtp: SMTP, sender: str, recipients: Sequence[str], raw: bytes
    ) -> list[str]:
        options = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(raw)}")
        eight_bit = not raw.isascii()
        if eight_bit and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        utf8_envelope = not all(a.isascii() for a in (sender, *recipients))
        if (utf8_envelope or eight_bit) and smtp.supports_extension("smtputf8"):
            options.append("SMTPUTF8")
        return options

    async def _reset(self, smtp: SMTP) -> None:
        """RSET after a failed transaction, so the next one starts clean."""
        try:
            await smtp.rset()
        except (SMTPException, *_LOST):
            self._drop()

    # -- connecting -------------------------------------------------------

    async def _connect(self) -> Reply | None:
        """Connect to the first host that answers; the failure otherwise."""
        temporary: Reply | None = None
        permanent: Reply | None = None
        for host, port in self.hosts:
            for failure in await self._try_host(host, port):
                if failure is None:
                    return None
                if failure.permanent:
                    permanent = failure
                else:
                    temporary = failure
        return temporary or permanent or no_answer("4.4.4", "no host to deliver to")

    async def _try_host(self, host: str, port: int) -> list[Reply | None]:
        """Each address of ``host`` in turn; stops at the first that works."""
        try:
            addresses = [host] if _is_ip(host) else await self.resolver.addresses(host)
        except DnsError as exc:
            return [no_answer("4.4.3", f"cannot resolve {host}: {exc}", host)]
        if not addresses:
            return [no_answer("4.4.4", f"{host} has no address", host)]

        failures: list[Reply | None] = []
        for address in addresses:
            outcome = await self._open(host, address, port, starttls=True)
            if isinstance(outcome, SMTP):
                self._smtp, self.host = outcome, host
                self.opened += 1
                return [None]
            failures.append(outcome)
        return failures

    async def _open(
        self, host: str, address: str, port: int, *, starttls: bool
    ) -> SMTP | Reply:
        settings = self.settings
        smtp = SMTP(
            hostname=address,
            port=port,
            local_hostname=settings.local_hostname,
            timeout=settings.command_timeout,
            use_tls=port == SMTPS_PORT,
            start_tls=False,
            tls_context=self.tls,
        )
        try:
            await smtp.connect(timeout=settings.connect_timeout)
            await _hello(smtp)
            if starttls and port != SMTPS_PORT and smtp.supports_extension("starttls"):
                try:
                    await smtp.starttls(server_hostname=host, tls_context=self.tls)
                    await _hello(smtp)
                except (ssl.SSLError, SMTPException, *_LOST) as exc:
                    smtp.close()
                    log.warning(
                        "starttls failed host=%s error=%s; trying without tls",
                        host,
                        _describe(exc),
                    )
                    return await self._open(host, address, port, starttls=False)
            encrypted = smtp.get_transport_info("sslcontext") is not None
            if settings.auth is not None:
                refused = await self._authenticate(smtp, host, encrypted)
                if refused is not None:
                    smtp.close()
                    return refused
        except SMTPResponseException as exc:
            smtp.close()
            return from_smtp(exc.code, exc.message, host)
        except (SMTPException, ssl.SSLError, *_LOST) as exc:
            smtp.close()
            return no_answer(
                "4.4.1", f"cannot connect to {host}: {_describe(exc)}", host
            )
        log.info("outbound connection host=%s port=%d tls=%s", host, port, encrypted)
        return smtp

    async def _authenticate(
        self, smtp: SMTP, host: str, encrypted: bool
    ) -> Reply | None:
        """AUTH at the relay; a refusal is temporary: the operator must act."""
        assert self.settings.auth is not None
        if not encrypted:
            return no_answer(
                "4.7.0", f"{host} offers no TLS; relay credentials not sent", host
            )
        username, password = self.settings.auth
        try:
            await smtp.login(username, password)
        except SMTPResponseException as exc:
            text = f"authentication at {host} refused: {exc.code} {clean(exc.message)}"
            return no_answer("4.7.0", text, host)
        except SMTPException as exc:
            return no_answer("4.7.0", f"cannot authenticate at {host}: {exc}", host)
        return None

    # -- closing ----------------------------------------------------------

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def abort(self) -> None:
        """Close at once, without QUIT: the delivery was cut."""
        self._drop()

    async def close(self) -> None:
        """QUIT politely, then close; errors at this point change nothing."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            await smtp.quit(timeout=self.settings.connect_timeout)
        except (SMTPException, *_LOST):
            pass
        finally:
            smtp.close()


async def _hello(smtp: SMTP) -> None:
    """EHLO, or HELO for a host that refuses it (RFC 5321 §3.2)."""
    try:
        await smtp.ehlo()
    except SMTPHeloError:
        await smtp.helo()


def _bad_address(which: str) -> Reply:
    # RFC 3463 §3.2: X.1.3 (recipient) and X.1.7 (sender) bad address syntax.
    status = "5.1.7" if which == "sender" else "5.1.3"
    return Reply(553, status, f"the {which} address cannot be sent over SMTP")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    return clean(str(exc)) or type(exc).__name__
