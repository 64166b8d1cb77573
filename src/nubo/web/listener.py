"""Limits on HTTP connections that uvicorn leaves open (RFC 9112, RFC 6585).

uvicorn runs nubo's HTTP and HTTPS listeners with this module's protocol: its
pure-Python h11 parser, not httptools, because h11 bounds how much of an
unfinished request head it buffers (``MAX_HEAD_BYTES``); a longer head gets a
400 and the connection is closed, so a huge or endless header cannot grow the
memory. On top of uvicorn's h11 protocol:

- a deadline for each request head: a client has ``header_timeout`` seconds
  from connecting (or from the end of the previous response) to send a
  complete request line and headers, else the connection is closed. uvicorn's
  keep-alive timer stops at the first byte received, so without this a client
  sending a byte now and then (slowloris) would hold its connection forever;
- at most ``max_connections`` open connections per listener: one more is
  answered 503 and closed at once, so half-open connections cannot use up
  the process's file descriptors.

Limitation: a request body is not under a deadline; the application reads it
as it comes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from nubo.config import Config

log = logging.getLogger(__name__)

# A request line and headers longer than this are refused; browsers and DAV
# clients send a few KB at most.
MAX_HEAD_BYTES = 16 * 1024

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 25\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"too many open connections"
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap."""

    header_timeout: float = 30.0
    max_connections: int = 500
    _last_refusal_log: float = -60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        # Counted before ours is added: the cap holds whatever uvicorn does.
        if len(self.connections) >= self.max_connections:
            self._log_refusal()
            self._refused = True
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request head has arrived
            self._stop_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request on this connection

    @classmethod
    def _log_refusal(cls) -> None:
        # Once a minute at most: a flood of connections must not flood the log.
        now = time.monotonic()
        if now - cls._last_refusal_log >= 60:
            cls._last_refusal_log = now
            log.warning(
                "http connections refused: %d open, the most allowed",
                cls.max_connections,
            )

    def _await_head(self) -> None:
        self._stop_deadline()
        self._head_deadline = self.loop.call_later(
            self.header_timeout, self._head_too_slow
        )

    def _stop_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.debug("http connection closed, request head too slow")
            self.transport.close()


@dataclass(frozen=True)
class HttpLimits:
    """The limits of one HTTP listener; see the module's docstring."""

    header_timeout: float = 30.0
    max_connections: int = 500

    @classmethod
    def from_config(cls, config: Config) -> HttpLimits:
        return cls(
            header_timeout=float(config.http_header_timeout),
            max_connections=int(config.http_max_connections),
        )

    def protocol(self) -> type[GuardedH11Protocol]:
        """uvicorn's protocol class for a listener with these limits."""
        return type(
            "GuardedH11Protocol",
            (GuardedH11Protocol,),
            {
                "header_timeout": self.header_timeout,
                "max_connections": self.max_connections,
            },
        )


DEFAULT_LIMITS = HttpLimits()
