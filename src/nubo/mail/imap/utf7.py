"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3).

Without UTF8=ACCEPT a mailbox name on the wire is 7-bit: printable US-ASCII
stands for itself except ``&``, written ``&-``; any run of other characters
is written ``&`` + base64 of its UTF-16BE form with ``,`` for ``/`` and no
padding + ``-``. ``decode`` is strict, so that one name has one spelling and
a client cannot create two mailboxes that look the same: it refuses 8-bit
octets and controls, a shift sequence that is not closed, that encodes a
printable ASCII character, that leaves non-zero padding bits or an odd
number of octets, or that holds an unpaired surrogate.
"""

from __future__ import annotations

import binascii

from nubo.mail.imap.errors import ParseError

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def encode(name: str) -> str:
    """The modified UTF-7 spelling of ``name``."""
    if name.isascii() and name.isprintable():
        return name.replace("&", "&-")
    out: list[str] = []
    shifted: list[str] = []
    for char in name:
        if " " <= char <= "~":
            if shifted:
                out.append(_shift("".join(shifted)))
                shifted.clear()
            out.append("&-" if char == "&" else char)
        else:
            shifted.append(char)
    if shifted:
        out.append(_shift("".join(shifted)))
    return "".join(out)


def _shift(text: str) -> str:
    octets = text.encode("utf-16-be")
    b64 = binascii.b2a_base64(octets, newline=False).rstrip(b"=")
    return "&" + b64.replace(b"/", b",").decode("ascii") + "-"


def decode(name: bytes) -> str:
    """The name that ``name`` spells; ParseError when it is not strict UTF-7."""
    if b"&" not in name:
        if not _printable(name):
            raise ParseError("mailbox name is not 7-bit modified UTF-7")
        return name.decode("ascii")
    out: list[str] = []
    pos = 0
    while pos < len(name):
        amp = name.find(b"&", pos)
        plain = name[pos:] if amp < 0 else name[pos:amp]
        if not _printable(plain):
            raise ParseError("mailbox name is not 7-bit modified UTF-7")
        out.append(plain.decode("ascii"))
        if amp < 0:
            break
        end = name.find(b"-", amp + 1)
        if end < 0:
            raise ParseError("unterminated modified UTF-7 shift in mailbox name")
        out.append(_unshift(name[amp + 1 : end]))
        pos = end + 1
    return "".join(out)


def _printable(octets: bytes) -> bool:
    return all(0x20 <= octet <= 0x7E for octet in octets)


def _unshift(b64: bytes) -> str:
    if not b64:
        return "&"
    if not _B64.issuperset(b64) or len(b64) % 4 == 1:
        raise ParseError("malformed modified UTF-7 in mailbox name")
    padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
    octets = binascii.a2b_base64(padded)
    # Bits left over after the last whole octet must be zero (RFC 2152 §2),
    # or two spellings would decode to the same name.
    if binascii.b2a_base64(octets, newline=False) != padded or len(octets) % 2:
        raise ParseError("malformed modified UTF-7 in mailbox name")
    try:
        text = octets.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ParseError("malformed UTF-16 in mailbox name") from None
    if any(" " <= char <= "~" for char in text):
        raise ParseError("modified UTF-7 encodes a printable ASCII character")
    return text
