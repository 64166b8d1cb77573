"""The IMAP listeners of ``nubo serve``: ``imap`` (``imap_port``, STARTTLS,
RFC 3501 §6.2.1) and ``imaps`` (``imaps_port``, TLS from the first byte,
RFC 8314 §3.2).

Each connection becomes a ``Session``; a client address that holds
``imap_max_connections_per_address`` connections already gets ``* BYE``.
``stop`` refuses new connections, tells every session ``* BYE`` (RFC 3501
§7.1.5) and gives them the grace to finish the command they run, then cuts
what is left.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from nubo.accounts.network import client_network
from nubo.config import Config
from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.session import ImapServices, Session, SessionLimits

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
HANDSHAKE_SECONDS = 30.0


def session_limits(config: Config) -> SessionLimits:
    """Bounds from the settings: APPEND takes what SMTP takes."""
    return SessionLimits(
        parser=Limits(max_append=config.values["max_message_size"]),
        max_per_address=config.values["imap_max_connections_per_address"],
    )


@dataclass
class ImapListener:
    """One IMAP port and its sessions."""

    name: str
    sock: socket.socket
    services: ImapServices
    implicit_tls: bool = False
    _server: asyncio.Server | None = None
    _sessions: dict[Session, asyncio.Task[None]] = field(default_factory=dict)
    _handshaking: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    async def _connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else ""
        counts = self.services.connections
        if counts[address] >= self.services.limits.max_per_address:
            # A client opening connections without end would hold the
            # process's file descriptors; Dovecot limits them per address too.
            log.warning(
                "imap connection refused, too many network=%s",
                client_network(address),
            )
            if self.implicit_tls:
                writer.close()  # nothing can be said before the handshake
            else:
                await _refuse(writer)
            return
        counts[address] += 1
        task = asyncio.current_task()
        assert task is not None
        self._handshaking.add(task)
        try:
            # Counted before the TLS handshake, which asyncio's ssl= would
            # do before calling us: connections that never finish it count.
            if self.implicit_tls and not await self._handshake(writer):
                return
            self._handshaking.discard(task)
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()  # ``stop`` during the handshake
        finally:
            self._handshaking.discard(task)
            counts[address] -= 1
            if not counts[address]:
                del counts[address]

    async def _handshake(self, writer: asyncio.StreamWriter) -> bool:
        """TLS from the first byte (RFC 8314 §3.2); False, closed, if the
        client does not complete it within ``HANDSHAKE_SECONDS``."""
        context = self.services.tls_context
        assert context is not None
        try:
            await writer.start_tls(context, ssl_handshake_timeout=HANDSHAKE_SECONDS)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError) as exc:
            log.info("imap tls handshake failed reason=%s", type(exc).__name__)
            writer.close()
            return False
        return True

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = Session(
            self.services,
            reader,
            writer,
            listener=self.name,
            implicit_tls=self.implicit_tls,
        )
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        try:
            await session.run()
        except asyncio.CancelledError:
            # Only ``stop`` cancels a session, and it has said BYE; the
            # stream callback would log a cancelled task as an error.
            pass
        finally:
            self._sessions.pop(session, None)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connected, sock=self.sock, limit=MAX_LINE
        )

    async def stop(self, grace: float) -> None:
        if self._server is None:
            self.sock.close()
            return
        self._server.close()
        for task in list(self._handshaking):
            task.cancel()
        # A session waiting for the client (or in IDLE) is told BYE now; one
        # running a command finishes it first, within the grace.
        for session, task in list(self._sessions.items()):
            session.closing = True
            if session.waiting:
                task.cancel()
        if self._sessions:
            tasks = set(self._sessions.values())
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        log.info("imap listener stopped name=%s", self.name)


async def _refuse(writer: asyncio.StreamWriter) -> None:
    """``* BYE`` at once (RFC 3501 §7.1.5), then close."""
    try:
        writer.write(b"* BYE Too many connections from your address\r\n")
        await asyncio.wait_for(writer.drain(), 5.0)
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    writer.close()


def imap_listeners(
    config: Config,
    services: ImapServices,
    sockets: dict[str, socket.socket],
    tls_context: ssl.SSLContext,
) -> list[ImapListener]:
    del config, tls_context  # both reach the sessions through ``services``
    return [
        ImapListener("imap", sockets["imap"], services),
        ImapListener("imaps", sockets["imaps"], services, implicit_tls=True),
    ]
