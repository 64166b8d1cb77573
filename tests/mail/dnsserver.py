"""A small authoritative DNS server on loopback, for tests without the internet.

Built on dnslib's threaded UDP and TCP servers, both on one free port of
127.0.0.1, so the resolver under test (dnspython, dkimpy through our
resolver, anything taking a ``dns_servers`` setting) reaches it exactly as it
would a real one. The server threads never touch the test's event loop.

Records are a dict, read at every query, so a test may change it while the
server runs::

    records = {
        "example.org": {
            "MX": [(10, "mx.example.org")],
            "TXT": ["v=spf1 ip4:192.0.2.1 -all"],
        },
        "mx.example.org": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
        "broken.example": SERVFAIL,      # answers SERVFAIL to every type
        "slow.example": DROP,            # never answers (the client times out)
    }
    with serve_dns(records) as servers:  # "127.0.0.1:53053"
        config = load_config(dns_servers=servers)

Semantics: names are case-insensitive, a trailing dot is optional; a name
absent from the dict is NXDOMAIN; a name present without the asked type is
an empty NOERROR answer (NODATA). A TXT value is a str (split into 255-octet
character-strings as RFC 1035 §3.3.14 requires), or a list of str for one
record made of several strings. ``CNAME`` holds one target name.
SERVFAIL or DROP may also stand for one type's values (``{"A": [...],
"AAAA": SERVFAIL}``). ``serve_dns(records, drop_all=True)`` answers nothing
at all. Answers over UDP are truncated past 512 octets, as for a client
without EDNS, so long answers travel over TCP as they would in the field.

``DnsServer`` is the same with more to look at: ``.address`` ("ip:port") and
``.queries``, the (name, type) pairs asked, in order.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

SERVFAIL = "SERVFAIL"
DROP = "DROP"

TTL = 60


class _Dropped(DNSError):
    """Raised by the resolver for a query that must get no answer at all."""


class _Handler(DNSHandler):
    """Truncates UDP answers past 512 octets (RFC 1035 §4.2.1), keeping the
    question, which dnslib's own truncation drops and dnspython requires."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed: bytes = reply.pack()
        if self.protocol == "udp" and len(packed) > 512:
            short = request.reply()
            short.header.rcode = reply.header.rcode
            short.header.tc = 1
            packed = short.pack()
        return packed


class _Resolver:
    def __init__(self, records: Mapping[str, Any], drop_all: bool) -> None:
        self.records = records
        self.drop_all = drop_all
        self.queries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, request: DNSRecord, _handler: DNSHandler) -> DNSRecord:
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname, qtype))
        if self.drop_all:
            raise _Dropped("dropped")

        entry = _lookup(self.records, qname)
        reply = request.reply()
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if entry == DROP:
            raise _Dropped("dropped")
        if entry == SERVFAIL:
            reply.header.rcode = RCODE.SERVFAIL
            return reply

        if "CNAME" in entry and qtype != "CNAME":
            target = entry["CNAME"]
            reply.add_answer(RR(qname, QTYPE.CNAME, rdata=CNAME(target), ttl=TTL))
            followed = _lookup(self.records, target.rstrip(".").lower())
            if isinstance(followed, Mapping):
                for rdata in _rdatas(qtype, followed.get(qtype, [])):
                    reply.add_answer(RR(target, request.q.qtype, rdata=rdata, ttl=TTL))
            return reply

        values = entry.get(qtype, [] if qtype != "CNAME" else None)
        if values == DROP:
            raise _Dropped("dropped")
        if values == SERVFAIL:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if qtype == "CNAME":
            values = [] if values is None else [values]
        for rdata in _rdatas(qtype, values):
            reply.add_answer(RR(qname, request.q.qtype, rdata=rdata, ttl=TTL))
        return reply


def _lookup(records: Mapping[str, Any], name: str) -> Any:
    for key, value in records.items():
        if key.rstrip(".").lower() == name:
            return value
    return None


def _rdatas(qtype: str, values: Any) -> list[Any]:
    if qtype == "A":
        return [A(value) for value in values]
    if qtype == "AAAA":
        return [AAAA(value) for value in values]
    if qtype == "MX":
        return [MX(host, preference) for preference, host in values]
    if qtype == "CNAME":
        return [CNAME(value) for value in values]
    if qtype == "TXT":
        return [TXT(_strings(value)) for value in values]
    return []


def _strings(value: str | bytes | list[str]) -> list[bytes]:
    """One TXT record's character-strings, each at most 255 octets."""
    if isinstance(value, list):
        return [part.encode() for part in value]
    raw = value.encode() if isinstance(value, str) else value
    return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]


class DnsServer:
    """UDP and TCP on one free loopback port; a context manager."""

    def __init__(self, records: Mapping[str, Any], *, drop_all: bool = False) -> None:
        self.resolver = _Resolver(records, drop_all)
        self._servers: list[DNSServer] = []
        self.address = ""

    @property
    def queries(self) -> list[tuple[str, str]]:
        return self.resolver.queries

    def start(self) -> None:
        logger = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        for _attempt in range(20):
            udp = DNSServer(
                self.resolver,
                address="127.0.0.1",
                port=0,
                logger=logger,
                handler=_Handler,
            )
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self.resolver,
                    address="127.0.0.1",
                    port=port,
                    tcp=True,
                    logger=logger,
                    handler=_Handler,
                )
            except OSError:
                udp.server.server_close()
                continue
            self._servers = [udp, tcp]
            break
        else:
            raise OSError("no free port for UDP and TCP together")

        for server in self._servers:
            # A short poll keeps stop() quick (socketserver's default is 0.5 s).
            thread = threading.Thread(
                target=server.server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
            )
            thread.start()
        self.address = f"127.0.0.1:{port}"

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def serve_dns(records: Mapping[str, Any], *, drop_all: bool = False) -> Iterator[str]:
    """Serve ``records``; yields "127.0.0.1:port" for the dns_servers setting."""
    with DnsServer(records, drop_all=drop_all) as server:
        yield server.address


def free_udp_port() -> int:
    """A loopback UDP port nothing listens on (for "no server at all")."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
