"""The client network of an address: what lockouts count and logs show.

A client is known by its network, not its address: IPv4 addresses are
shortened to their /24 and IPv6 addresses to their /48, the block one site is
usually given. Logs then name no single household, and an attacker cannot
escape a count by hopping between the addresses of one block.
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 48

UNKNOWN = "unknown"


def client_network(address: str) -> str:
    """``"192.0.2.0/24"`` for ``"192.0.2.7"``, ``"2001:db8:1::/48"`` for IPv6.

    Accepts a plain address, a bracketed IPv6 address, either with a port
    (``"192.0.2.7:993"``, ``"[2001:db8::1]:993"``) and an IPv6 zone
    (``"fe80::1%eth0"``). An IPv4-mapped IPv6 address (what a dual-stack
    socket reports for an IPv4 client) counts as the IPv4 address. Anything
    else gives ``"unknown"``.
    """
    ip = _parse(address.strip()) if isinstance(address, str) else None
    if ip is None:
        return UNKNOWN

    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped

    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network((ip, prefix), strict=False))


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    for candidate in _candidates(text):
        try:
            return ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError:
            continue
    return None


def _candidates(text: str) -> list[str]:
    """The spellings of the address ``text`` may hold, most likely first."""
    if text.startswith("["):
        inside, bracket, _port = text[1:].partition("]")
        return [inside] if bracket else []

    candidates = [text]
    host, colon, port = text.rpartition(":")
    if colon and host.count(":") == 0 and port.isdigit():
        candidates.append(host)  # IPv4 with a port
    return candidates
