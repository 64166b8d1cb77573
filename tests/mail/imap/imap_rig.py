"""The IMAP listeners in the test's own event loop, and a raw client.

``imap_rig(mail, **settings)`` starts ``imap`` and ``imaps`` on free
loopback ports over a mailstore rig (the ``mail`` fixture: each storage
pair), with users ann and bob at example.org (password ``PASSWORD``).
``Client`` speaks IMAP byte for byte: ``command`` sends one line and returns
every line up to the tagged answer, literals included in the line they end
(``{n}`` CRLF then the n octets, as sent). imaplib can be used in a thread
(``in_thread``) since the server shares the test's loop.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from nubo.accounts import Accounts
from nubo.mail.imap.listener import ImapListener, imap_listeners
from nubo.mail.imap.session import ImapServices, SessionLimits
from nubo.server import bind_socket
from nubo.tls import server_context
from tests.mail.mailstore_rig import MailRig

PASSWORD = "correct horse battery"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


def client_tls() -> ssl.SSLContext:
    """A client context that takes the rig's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Client:
    """An IMAP client that writes exactly what it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.greeting = b""
        self._tag = 0

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False) -> Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_tls() if tls else None, limit=2**24
        )
        client = cls(reader, writer)
        client.greeting = await client.line()
        assert client.greeting.startswith(b"* OK"), client.greeting
        return client

    def tag(self) -> str:
        self._tag += 1
        return f"t{self._tag}"

    async def line(self, wait: float = 10.0) -> bytes:
        """One response line with its literals; b"" when the server closed."""
        data = await asyncio.wait_for(self.reader.readline(), wait)
        while (found := _LITERAL.search(data)) is not None:
            data += await asyncio.wait_for(
                self.reader.readexactly(int(found.group(1))), wait
            )
            data += await asyncio.wait_for(self.reader.readline(), wait)
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, tag: str, wait: float = 10.0) -> list[bytes]:
        """Lines up to and including the one tagged ``tag``."""
        lines = []
        while True:
            line = await self.line(wait)
            if not line:
                raise ConnectionError(f"closed before {tag}: {lines!r}")
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    async def command(self, text: str | bytes, wait: float = 10.0) -> list[bytes]:
        """Send ``TAG text`` CRLF; the lines up to the tagged answer."""
        data = text if isinstance(text, bytes) else text.encode()
        tag = self.tag()
        await self.send(tag.encode() + b" " + data + b"\r\n")
        return await self.until(tag, wait)

    async def ok(self, text: str | bytes, wait: float = 10.0) -> list[bytes]:
        """``command`` that must end in a tagged OK."""
        lines = await self.command(text, wait)
        assert lines[-1].split(b" ")[1] == b"OK", lines
        return lines

    async def login(self, user: str = "ann@example.org") -> list[bytes]:
        return await self.ok(f'LOGIN {user} "{PASSWORD}"')

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


@dataclass
class ImapRig:
    mail: MailRig
    services: ImapServices
    listeners: dict[str, ImapListener]
    users: dict[str, int]
    clients: list[Client] = field(default_factory=list)

    def port(self, name: str = "imap") -> int:
        return self.listeners[name].address[1]

    @property
    def accounts(self) -> Accounts:
        return self.services.accounts

    async def client(self, *, tls: bool = False, login: str | None = None) -> Client:
        """A connected client on ``imap`` (or ``imaps``), signed in as
        ``login`` when given."""
        client = await Client.connect(self.port("imaps" if tls else "imap"), tls=tls)
        self.clients.append(client)
        if login is not None:
            await client.login(login)
        return client

    async def deliver(self, user: str, raw: bytes, mailbox: str = "INBOX") -> int:
        """Append ``raw`` to a mailbox of ``user`` through the mailstore;
        its UID."""
        stored = await self.mail.store.append(self.users[user], mailbox, raw)
        return stored.uid


@asynccontextmanager
async def imap_rig(
    mail: MailRig, limits: SessionLimits | None = None, **settings: Any
) -> AsyncIterator[ImapRig]:
    config = mail.config.replace(hostname="imap.example.org", **settings)
    accounts = Accounts(mail.db, config)
    services = ImapServices(
        config,
        accounts,
        mail.store,
        mail.bus,
        server_context(config),
        limits or SessionLimits(),
    )
    users = {}
    await accounts.add_domain("example.org")
    for address in ("ann@example.org", "bob@example.org"):
        user = await accounts.add_user(address, PASSWORD)
        await mail.store.ensure_mailboxes(user.id)
        users[address] = user.id

    sockets = {name: bind_socket(name, "127.0.0.1", 0) for name in ("imap", "imaps")}
    listeners = imap_listeners(config, services, sockets, server_context(config))
    for listener in listeners:
        await listener.start()
    rig = ImapRig(mail, services, {x.name: x for x in listeners}, users)
    try:
        yield rig
    finally:
        for client in rig.clients:
            await client.close()
        for listener in listeners:
            await listener.stop(1.0)
