"""Where mail clients reach nubo: the host name and the IMAP and submission
ports that every client autoconfiguration answer names.

``ClientEndpoints.from_sockets`` reads each port from the socket nubo bound,
so a port set to 0 (tests) is named as the system chose it; a listener not
bound (IMAP before its listeners exist) falls back to its port setting.

Limitation: the answers name the ports nubo listens on. Behind a firewall
that forwards the standard ports (993, 465, ...) to nubo's unprivileged ones,
clients outside are told ports they cannot reach; a setting for the
advertised ports would lift it (``nubo domain dns`` already gives the
standard ports in its SRV records).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from nubo.config import Config

# Each port of ClientEndpoints, the listener that serves it and its setting.
_PORTS = (
    ("imap", "imap_port"),
    ("imaps", "imaps_port"),
    ("submission", "submission_port"),
    ("submissions", "submissions_port"),
)


@dataclass(frozen=True)
class ClientEndpoints:
    """The host name and ports a mail client connects to."""

    hostname: str
    imap: int  # STARTTLS, RFC 3501 §6.2.1
    imaps: int  # implicit TLS, RFC 8314 §3.3
    submission: int  # STARTTLS, RFC 6409
    submissions: int  # implicit TLS, RFC 8314 §3.3

    @classmethod
    def from_config(cls, config: Config) -> ClientEndpoints:
        """The ports as set, for an app with no bound sockets (tests)."""
        return cls.from_sockets(config, {})

    @classmethod
    def from_sockets(
        cls, config: Config, sockets: Mapping[str, socket.socket]
    ) -> ClientEndpoints:
        """The ports of the bound listeners, else of the settings."""
        ports: dict[str, int] = {}
        for name, setting in _PORTS:
            sock = sockets.get(name)
            if sock is None:
                ports[name] = int(config.values[setting])
            else:
                ports[name] = int(sock.getsockname()[1])
        return cls(hostname=str(config.hostname), **ports)
