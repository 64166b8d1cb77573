"""Email addresses and domain names in the one form the store keeps.

The lookup form of an address is its local part, NFC-normalized and then
lowercased, ``@``, its domain in IDNA A-labels, lowercased. Local parts may
hold UTF-8 (SMTPUTF8, RFC 6531 §3.3); domains are kept as A-labels (RFC 5890
§2.3.2.1) so that ``bücher.example`` and ``xn--bcher-kva.example`` are one
domain. Lowercasing the local part is a choice of this server, which RFC 5321
§2.4 allows the host of a mailbox to make: ``Alice@`` and ``alice@`` reach the
same person.

Local parts are checked by email-validator; domain names by the idna package
directly, because email-validator refuses special-use names such as
``localhost``, which the embedded mode uses for trying nubo out.

Nothing here does I/O, so every rule is tested without a store.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass

import idna
from email_validator import EmailNotValidError, validate_email

from nubo.accounts.errors import InvalidAddress, InvalidDomain

# The separator of plus-addressing: user+tag@domain reaches user@domain.
TAG_SEPARATOR = "+"

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS = 253  # RFC 1035 §2.3.4, without the length octets
MAX_ADDRESS_OCTETS = 254  # RFC 5321 §4.5.3.1.3: a path of 256 less "<" and ">"

# Longest input handed to idna; its label checks can take time quadratic in
# the length of a label, so refuse absurd input before calling it.
_MAX_INPUT = 1024

# email-validator checks whole addresses; the local part is checked against
# this fixed, valid domain so that the real domain gets the idna rules above.
_PLACEHOLDER_DOMAIN = "example.net"


@dataclass(frozen=True)
class Address:
    """An address in lookup form; an empty local part is a catch-all."""

    local_part: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain}"

    @property
    def is_catch_all(self) -> bool:
        return not self.local_part

    @property
    def has_tag(self) -> bool:
        return TAG_SEPARATOR in self.local_part

    def without_tag(self) -> Address | None:
        """``user@domain`` for ``user+tag@domain``; None without a tag."""
        base, separator, _tag = self.local_part.partition(TAG_SEPARATOR)
        if not separator or not base:
            return None
        return Address(base, self.domain)

    def catch_all(self) -> Address:
        return Address("", self.domain)


def normalize_domain(name: str) -> str:
    """The A-label, lowercase form of a domain name, or InvalidDomain."""
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]  # the root label of a fully qualified name
    shown = _shorten(name)

    if not text:
        raise InvalidDomain("the domain name is empty")
    if len(text) > _MAX_INPUT:
        raise InvalidDomain(f"invalid domain {shown}: too long")

    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidDomain(f"invalid domain {shown}: {exc}") from None

    problem = _domain_problem(ascii_name)
    if problem:
        raise InvalidDomain(f"invalid domain {shown}: {problem}")
    return ascii_name


def _domain_problem(ascii_name: str) -> str | None:
    if len(ascii_name) > MAX_DOMAIN_OCTETS:
        return f"longer than {MAX_DOMAIN_OCTETS} characters"
    if _is_ip_address(ascii_name) or ascii_name.rsplit(".", 1)[-1].isdigit():
        return "an IP address is not a domain name"
    return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def display_domain(ascii_name: str) -> str:
    """The Unicode form of a stored domain, for people to read."""
    try:
        return idna.decode(ascii_name)
    except idna.IDNAError:
        return ascii_name


def parse_address(text: str) -> Address:
    """An address in lookup form, or InvalidAddress."""
    local, domain = _split(text)
    if not local:
        raise InvalidAddress(f"invalid address {_shorten(text)}: no local part")
    address = Address(_normalize_local(local, text), _address_domain(domain, text))
    _check_length(address, text)
    return address


def parse_alias_address(text: str) -> Address:
    """Like ``parse_address``, also accepting ``@domain``, a catch-all."""
    local, domain = _split(text)
    if local:
        return parse_address(text)
    return Address("", _address_domain(domain, text))


def refuse_tag(address: Address) -> None:
    """Users and aliases may not hold the separator their tags would shadow."""
    if address.has_tag:
        raise InvalidAddress(
            f"invalid address {_shorten(str(address))}: {TAG_SEPARATOR!r} is "
            "reserved for plus-addressing (user+tag@domain)"
        )


def _split(text: str) -> tuple[str, str]:
    stripped = text.strip()
    if len(stripped) > _MAX_INPUT:
        raise InvalidAddress(f"invalid address {_shorten(text)}: too long")
    if any("\ud800" <= char <= "\udfff" for char in stripped):
        raise InvalidAddress(f"invalid address {_shorten(text)}: not valid text")
    if "@" not in stripped:
        raise InvalidAddress(f"invalid address {_shorten(text)}: no @-sign")
    local, _at, domain = stripped.rpartition("@")
    return local, domain


def _address_domain(domain: str, text: str) -> str:
    try:
        return normalize_domain(domain)
    except InvalidDomain as exc:
        raise InvalidAddress(f"invalid address {_shorten(text)}: {exc}") from None


def _normalize_local(local: str, text: str) -> str:
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS * 4:
        raise InvalidAddress(f"invalid address {_shorten(text)}: too long")
    try:
        checked = validate_email(
            f"{local}@{_PLACEHOLDER_DOMAIN}",
            check_deliverability=False,
            allow_smtputf8=True,
        )
    except EmailNotValidError as exc:
        text_reason = str(exc).rstrip(".")
        reason = text_reason[:1].lower() + text_reason[1:]
        raise InvalidAddress(f"invalid address {_shorten(text)}: {reason}") from None

    normalized = unicodedata.normalize("NFC", checked.local_part.lower())
    if len(normalized.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise InvalidAddress(
            f"invalid address {_shorten(text)}: the part before the @-sign is "
            f"longer than {MAX_LOCAL_OCTETS} bytes"
        )
    return normalized


def _check_length(address: Address, text: str) -> None:
    if len(str(address).encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise InvalidAddress(
            f"invalid address {_shorten(text)}: longer than {MAX_ADDRESS_OCTETS} bytes"
        )


def _shorten(text: str, limit: int = 80) -> str:
    """The input quoted for a message, cut so a huge input stays one line."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)
