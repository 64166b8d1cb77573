"""The DNS lookups mail needs, on dnspython's asyncio resolver.

Every lookup awaits on the event loop and never blocks it. The resolver is
injectable: ``dns_servers`` names the servers ("ip" or "ip:port",
comma-separated; empty means the system's /etc/resolv.conf), so tests point
it at a small DNS server on loopback. ``dns_timeout`` bounds each lookup.

What a lookup can end in::

    DnsError            .temporary: retry later (timeout, SERVFAIL) or not
     ├── NxDomain       the name does not exist (RFC 1035 §4.1.1 RCODE 3)
     └── NullMx         the domain publishes "MX 0 ." (RFC 7505): no mail

A name that exists without records of the asked type is not an error: the
answer is an empty list.

``outbound_hosts`` decides where outgoing mail for a domain goes: the relay
host when one is set, else a static answer from ``mx_override``, else the
domain's MX hosts (RFC 5321 §5.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from nubo.config import Config, ConfigError

log = logging.getLogger(__name__)

# Answers are cached for their TTL: a busy MX sees the same senders' SPF, DKIM
# and DMARC records again and again.
CACHE_SIZE = 10_000

# The wait for one server before asking the next (dnspython's "timeout");
# the whole lookup is bounded by dns_timeout (dnspython's "lifetime").
PER_SERVER_TIMEOUT = 2.0


class DnsError(Exception):
    """A lookup failed; ``temporary`` says whether trying later may help."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class NxDomain(DnsError):
    """The name does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no such domain: {name}", temporary=False)


class NullMx(DnsError):
    """The domain declares that it accepts no mail (RFC 7505 §3)."""

    def __init__(self, domain: str) -> None:
        super().__init__(f"{domain} accepts no mail (null MX)", temporary=False)


# -- "host:port" ------------------------------------------------------------


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address.

    Raises ValueError naming what is wrong.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty host")

    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad bracketed address: {text!r}")
        has_port, port_text = bool(rest), rest[1:]
        ipaddress.IPv6Address(host)  # brackets hold an IPv6 address only
    elif text.count(":") > 1:
        host, has_port, port_text = text, False, ""  # bare IPv6: no port
        ipaddress.IPv6Address(host)
    else:
        host, colon, port_text = text.partition(":")
        has_port = bool(colon)

    if not host:
        raise ValueError(f"no host in {text!r}")
    if not has_port:
        return host.lower(), default_port
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"bad port in {text!r}")
    return host.lower(), int(port_text)


def parse_servers(text: str) -> list[tuple[str, int]]:
    """The ``dns_servers`` setting: IP addresses, each with an optional port."""
    servers = []
    for item in text.split(","):
        if not item.strip():
            continue
        host, port = parse_host_port(item, 53)
        ipaddress.ip_address(host)  # a name here would need DNS to find DNS
        servers.append((host, port))
    return servers


def parse_mx_override(text: str, default_port: int) -> dict[str, tuple[str, int]]:
    """The ``mx_override`` setting: ``domain=host:port`` pairs, ``*`` for any."""
    table: dict[str, tuple[str, int]] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        domain, sep, target = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        if not sep or not domain:
            raise ValueError(f"{item.strip()!r} is not domain=host:port")
        table[domain] = parse_host_port(target, default_port)
    return table


# -- the resolver -----------------------------------------------------------


class Resolver:
    """Async lookups of MX, A/AAAA and TXT records, and where mail goes."""

    def __init__(
        self,
        servers: Sequence[tuple[str, int]] = (),
        *,
        timeout: float = 10.0,
        mx_override: dict[str, tuple[str, int]] | None = None,
        relay: tuple[str, int] | None = None,
        outbound_port: int = 25,
    ) -> None:
        self.timeout = timeout
        self.mx_override = dict(mx_override or {})
        self.relay = relay
        self.outbound_port = outbound_port
        self._resolver = _make_resolver(servers, timeout)

    @classmethod
    def from_config(cls, config: Config) -> Resolver:
        """Built from dns_servers, dns_timeout, mx_override, relay_host."""
        port: int = config.outbound_port
        try:
            servers = parse_servers(config.dns_servers)
        except ValueError as exc:
            raise ConfigError(f"setting dns_servers: {exc}") from None
        try:
            override = parse_mx_override(config.mx_override, port)
        except ValueError as exc:
            raise ConfigError(f"setting mx_override: {exc}") from None
        try:
            relay = (
                parse_host_port(config.relay_host, port) if config.relay_host else None
            )
        except ValueError as exc:
            raise ConfigError(f"setting relay_host: {exc}") from None
        return cls(
            servers,
            timeout=config.dns_timeout,
            mx_override=override,
            relay=relay,
            outbound_port=port,
        )

    # -- lookups ------------------------------------------------------------

    async def records(self, name: str, rdtype: str) -> list[Any]:
        """The rdata of ``name``'s records of type ``rdtype``; [] when none.

        CNAMEs are followed. Raises NxDomain, or DnsError(temporary) for a
        timeout or a server failure.
        """
        qname = _qname(name)
        try:
            answer = await self._resolver.resolve(
                qname, rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            raise NxDomain(name) from None
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            # Every server failed (SERVFAIL, REFUSED, unreachable) or time ran
            # out: someone else's outage, worth retrying (RFC 5321 §4.5.4.1).
            raise DnsError(_describe(exc, name, rdtype), temporary=True) from None
        except dns.resolver.YXDOMAIN:
            raise DnsError(
                f"name too long after DNAME: {name}", temporary=False
            ) from None
        except dns.exception.DNSException as exc:
            raise DnsError(_describe(exc, name, rdtype), temporary=True) from None
        return list(answer.rrset or [])

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """The mail exchangers of ``domain`` as (preference, host), best first.

        RFC 5321 §5.1: hosts of equal preference are shuffled; a domain
        without MX records but with an address is its own MX (preference 0).
        A domain publishing the null MX "0 ." raises NullMx (RFC 7505); one
        with neither MX nor address raises DnsError(temporary=False), so the
        list returned is never empty.
        """
        found = await self.records(domain, "MX")
        hosts = [
            (int(rdata.preference), _host(rdata.exchange))
            for rdata in found
            if rdata.exchange != dns.name.root
        ]
        if not hosts and found:
            raise NullMx(domain)
        if hosts:
            random.shuffle(hosts)
            hosts.sort(key=lambda pair: pair[0])  # stable: shuffled within ties
            return hosts

        if await self.addresses(domain):
            return [(0, domain.lower().rstrip("."))]
        raise DnsError(f"{domain} has no MX and no address", temporary=False)

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``; [] when it has none.

        One family failing temporarily is forgiven if the other answers.
        """
        answers = await asyncio.gather(
            self.records(host, "A"), self.records(host, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        failure: DnsError | None = None
        for answer in answers:
            if isinstance(answer, NxDomain):
                raise answer
            if isinstance(answer, DnsError):
                failure = answer
            elif isinstance(answer, BaseException):
                raise answer  # cancelled, or a fault of ours: not DNS's to excuse
            else:
                found.extend(rdata.address for rdata in answer)
        if not found and failure is not None:
            raise failure
        return found

    async def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name``, its strings joined (RFC 7208 §3.3)."""
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in await self.records(name, "TXT")
        ]

    # -- where outgoing mail goes --------------------------------------------

    async def outbound_hosts(self, domain: str) -> list[tuple[str, int]]:
        """(host, port) pairs to try in order for mail to ``domain``.

        The relay host if set; else ``mx_override`` for the domain, then for
        ``*``; else the MX hosts on ``outbound_port``. A host is a name or an
        IP literal: resolve names with ``addresses`` so the connection uses
        the configured DNS servers too. Raises what ``mx`` raises.
        """
        if self.relay is not None:
            return [self.relay]
        key = domain.lower().rstrip(".")
        static = self.mx_override.get(key) or self.mx_override.get("*")
        if static is not None:
            return [static]
        return [(host, self.outbound_port) for _pref, host in await self.mx(domain)]


def _make_resolver(
    servers: Sequence[tuple[str, int]], timeout: float
) -> dns.asyncresolver.Resolver:
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in servers
        ]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            # No /etc/resolv.conf (some containers): a local resolver is the
            # only guess left; the warning says what to set instead.
            log.warning("no system resolver configured; set dns_servers")
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    resolver.lifetime = timeout
    resolver.timeout = min(PER_SERVER_TIMEOUT, timeout)
    resolver.cache = dns.resolver.LRUCache(CACHE_SIZE)
    return resolver


def _qname(name: str) -> dns.name.Name:
    """An absolute name, or a permanent error for one DNS cannot hold."""
    text = name.strip().rstrip(".")
    if not text:
        raise DnsError("empty domain name", temporary=False)
    try:
        return dns.name.from_text(text + ".")
    except (dns.exception.DNSException, UnicodeError, ValueError):
        raise DnsError(f"not a valid domain name: {name!r}", temporary=False) from None


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _describe(exc: Exception, name: str, rdtype: str) -> str:
    kind = "timeout" if isinstance(exc, dns.exception.Timeout) else "server failure"
    return f"{kind} looking up {rdtype} {name}"
