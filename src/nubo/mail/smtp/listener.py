"""The SMTP listeners of ``nubo serve``: the MX, submission, submissions.

Each serves ``SmtpProtocol`` sessions on a socket ``nubo serve`` bound,
with one handler for all of them:

- ``smtp`` (MX, ``smtp_port``): STARTTLS offered, never required, no AUTH.
- ``submission`` (``submission_port``, RFC 6409): STARTTLS; AUTH only over
  TLS (aiosmtpd answers ``538 5.7.11`` before it) and required before MAIL
  (``530 5.7.0``).
- ``submissions`` (``submissions_port``, RFC 8314 §3.3): TLS from the first
  byte, AUTH required.

``stop`` refuses new connections, tells idle sessions ``421`` and lets a
message being stored finish within the grace, then cuts what is left.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from nubo.config import Config
from nubo.mail.smtp.handler import Handler, Services
from nubo.mail.smtp.mx import MxHandler
from nubo.mail.smtp.protocol import Limits, SmtpProtocol
from nubo.mail.smtp.submission import SubmissionHandler

log = logging.getLogger(__name__)


@dataclass
class SmtpListener:
    """One SMTP port: its socket, its role's handler and its sessions."""

    name: str
    sock: socket.socket
    handler: Handler
    limits: Limits
    hostname: str
    tls_context: ssl.SSLContext
    implicit_tls: bool = False
    auth_required: bool = False
    sessions: set[SmtpProtocol] = field(default_factory=set)
    _server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def _session(self) -> SmtpProtocol:
        return SmtpProtocol(
            self.handler,
            listener=self.name,
            hostname=self.hostname,
            limits=self.limits,
            tls_context=self.tls_context,
            implicit_tls=self.implicit_tls,
            auth_required=self.auth_required,
            sessions=self.sessions,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.implicit_tls:
            self._server = await loop.create_server(
                self._session,
                sock=self.sock,
                ssl=self.tls_context,
                ssl_handshake_timeout=self.limits.command_timeout,
            )
        else:
            self._server = await loop.create_server(self._session, sock=self.sock)

    async def stop(self, grace: float) -> None:
        if self._server is None:
            return
        self._server.close()  # no new connections; the socket is closed
        sessions = list(self.sessions)
        for session in sessions:
            session.request_close()
        if not sessions:
            return
        _done, pending = await asyncio.wait(
            [session.ended for session in sessions], timeout=grace
        )
        if pending:
            log.warning(
                "smtp sessions cut at shutdown listener=%s count=%d",
                self.name,
                len(pending),
            )
            for session in sessions:
                if isinstance(session.transport, asyncio.WriteTransport):
                    session.transport.abort()


def smtp_listeners(
    config: Config,
    services: Services,
    sockets: Mapping[str, socket.socket],
    tls_context: ssl.SSLContext,
) -> list[SmtpListener]:
    """The MX, submission and submissions listeners on their bound sockets."""
    # aiosmtpd logs every command, addresses and all, at INFO and DEBUG; its
    # errors are enough, and nubo logs sessions and messages itself.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    limits = Limits.from_config(config)
    common = {"limits": limits, "hostname": config.hostname, "tls_context": tls_context}
    return [
        SmtpListener("smtp", sockets["smtp"], MxHandler(services), **common),
        SmtpListener(
            "submission",
            sockets["submission"],
            SubmissionHandler(services, "submission"),
            auth_required=True,
            **common,
        ),
        SmtpListener(
            "submissions",
            sockets["submissions"],
            SubmissionHandler(services, "submissions"),
            implicit_tls=True,
            auth_required=True,
            **common,
        ),
    ]
