"""A small, strict reader of IMAP data items for the MIME tests.

``read_value`` turns the bytes of a parenthesized list (RFC 3501 §4.4) into
Python values: a list for a list, ``bytes`` for a quoted string or a
literal (RFC 3501 §4.3), ``None`` for NIL, ``int`` for a number and ``Atom``
for any other atom. It raises ``SyntaxError`` on anything RFC 3501 §9 does
not allow: unbalanced parentheses, two spaces, a quoted string holding CR,
LF, NUL or 8-bit octets or an escape other than ``\\\\`` and ``\\"``, a
literal whose length does not fit, a NUL in a literal.

``check_body`` and ``check_envelope`` then check the shape of BODY,
BODYSTRUCTURE and ENVELOPE values against the grammar of RFC 3501 §9
(``body``, ``body-type-1part``, ``body-type-mpart``, ``envelope``,
``address``).
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(rb"[0-9]+")
_ATOM = re.compile(rb"[^\x00-\x20\x7f()\{%*\"\\\]]+")


class Atom(str):
    """An IMAP atom that is neither NIL nor a number."""


def read_value(data: bytes) -> Any:
    """The single value ``data`` holds; it must hold nothing more."""
    value, pos = _value(data, 0)
    if pos != len(data):
        raise SyntaxError(f"junk after the value at {pos}: {data[pos : pos + 20]!r}")
    return value


def _value(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise SyntaxError("value expected at the end")
    ch = data[pos : pos + 1]
    if ch == b"(":
        return _list(data, pos + 1)
    if ch == b'"':
        return _quoted(data, pos + 1)
    if ch == b"{":
        return _literal(data, pos)
    match = _ATOM.match(data, pos)
    if match is None:
        raise SyntaxError(f"unexpected {ch!r} at {pos}")
    word = match.group()
    if word.upper() == b"NIL":
        return None, match.end()
    if _NUMBER.fullmatch(word):
        return int(word), match.end()
    return Atom(word.decode("ascii")), match.end()


def _list(data: bytes, pos: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while True:
        if data[pos : pos + 1] == b")":
            return items, pos + 1
        if items:
            if data[pos : pos + 1] != b" ":
                # Lists of lists may touch: "((a)(b))" (RFC 3501 §9, body).
                if not (data[pos : pos + 1] == b"(" and isinstance(items[-1], list)):
                    raise SyntaxError(f"space expected at {pos}")
            else:
                pos += 1
        if data[pos : pos + 1] == b" ":
            raise SyntaxError(f"two spaces at {pos}")
        item, pos = _value(data, pos)
        items.append(item)


def _quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        if pos >= len(data):
            raise SyntaxError("unterminated quoted string")
        octet = data[pos]
        if octet == 0x22:
            return bytes(out), pos + 1
        if octet == 0x5C:
            escaped = data[pos + 1 : pos + 2]
            if escaped not in (b"\\", b'"'):
                raise SyntaxError(f"bad escape {escaped!r} at {pos}")
            out += escaped
            pos += 2
            continue
        if octet in (0x00, 0x0A, 0x0D) or octet > 0x7F:
            raise SyntaxError(f"octet {octet:#x} in a quoted string at {pos}")
        out.append(octet)
        pos += 1


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    close = data.find(b"}\r\n", pos)
    if close < 0:
        raise SyntaxError(f"bad literal at {pos}")
    size_text = data[pos + 1 : close]
    if not _NUMBER.fullmatch(size_text):
        raise SyntaxError(f"bad literal length {size_text!r}")
    start = close + 3
    end = start + int(size_text)
    if end > len(data):
        raise SyntaxError("literal runs past the data")
    if b"\x00" in data[start:end]:
        raise SyntaxError("NUL in a literal (RFC 3501 §4.3)")
    return data[start:end], end


def _nstring(value: Any, what: str) -> None:
    if not (value is None or isinstance(value, bytes)):
        raise SyntaxError(f"{what}: nstring expected, got {value!r}")


def _string(value: Any, what: str) -> None:
    if not isinstance(value, bytes):
        raise SyntaxError(f"{what}: string expected, got {value!r}")


def _number(value: Any, what: str) -> None:
    if not isinstance(value, int) or value < 0:
        raise SyntaxError(f"{what}: number expected, got {value!r}")


def _params(value: Any, what: str) -> None:
    """body-fld-param: NIL or a list of string pairs."""
    if value is None:
        return
    if not isinstance(value, list) or not value or len(value) % 2:
        raise SyntaxError(f"{what}: parameter list expected, got {value!r}")
    for item in value:
        _string(item, what)


def _extension_tail(values: list[Any], what: str) -> None:
    """body-fld-dsp, body-fld-lang, body-fld-loc, body-extension*."""
    if values:
        dsp = values[0]
        if dsp is not None:
            if not (isinstance(dsp, list) and len(dsp) == 2):
                raise SyntaxError(f"{what}: disposition expected, got {dsp!r}")
            _string(dsp[0], what)
            _params(dsp[1], what)
    if len(values) > 1:
        lang = values[1]
        if isinstance(lang, list):
            if not lang:
                raise SyntaxError(f"{what}: empty language list")
            for tag in lang:
                _string(tag, what)
        else:
            _nstring(lang, what)
    if len(values) > 2:
        _nstring(values[2], what)


def check_body(value: Any, extensible: bool, path: str = "") -> None:
    """Check ``value`` is a ``body`` of RFC 3501 §9; with ``extensible``
    (BODYSTRUCTURE) the extension data must be there, without it (BODY)
    it must not."""
    if not isinstance(value, list) or not value:
        raise SyntaxError(f"{path or 'body'}: list expected, got {value!r}")
    if isinstance(value[0], list):
        _check_multipart(value, extensible, path)
    else:
        _check_single(value, extensible, path)


def _check_multipart(value: list[Any], extensible: bool, path: str) -> None:
    count = 0
    while count < len(value) and isinstance(value[count], list):
        check_body(value[count], extensible, f"{path}.{count + 1}".lstrip("."))
        count += 1
    rest = value[count:]
    if not rest:
        raise SyntaxError(f"{path}: media-subtype missing")
    _string(rest[0], f"{path} subtype")
    if not extensible:
        if len(rest) != 1:
            raise SyntaxError(f"{path}: extension data in BODY")
        return
    if len(rest) != 5:
        raise SyntaxError(f"{path}: body-ext-mpart expected, got {rest!r}")
    _params(rest[1], path)
    _extension_tail(rest[2:], path)


def _check_single(value: list[Any], extensible: bool, path: str) -> None:
    what = path or "1"
    if len(value) < 7:
        raise SyntaxError(f"{what}: body-fields too short: {value!r}")
    kind, subtype, params, body_id, description, encoding, size = value[:7]
    _string(kind, what)
    _string(subtype, what)
    _params(params, what)
    _nstring(body_id, what)
    _nstring(description, what)
    _string(encoding, what)
    _number(size, what)
    rest = value[7:]
    media = (kind.lower(), subtype.lower())
    if media == (b"message", b"rfc822"):
        if len(rest) < 3:
            raise SyntaxError(f"{what}: message/rfc822 needs envelope body lines")
        check_envelope(rest[0])
        check_body(rest[1], extensible, what)
        _number(rest[2], what)
        rest = rest[3:]
    elif media[0] == b"text":
        if not rest:
            raise SyntaxError(f"{what}: text needs body-fld-lines")
        _number(rest[0], what)
        rest = rest[1:]
    if not extensible:
        if rest:
            raise SyntaxError(f"{what}: extension data in BODY")
        return
    if len(rest) != 4:
        raise SyntaxError(f"{what}: body-ext-1part expected, got {rest!r}")
    _nstring(rest[0], what)
    _extension_tail(rest[1:], what)


def check_envelope(value: Any) -> None:
    """Check ``value`` is an ``envelope`` of RFC 3501 §9."""
    if not isinstance(value, list) or len(value) != 10:
        raise SyntaxError(f"envelope of 10 fields expected, got {value!r}")
    _nstring(value[0], "env-date")
    _nstring(value[1], "env-subject")
    for index in range(2, 8):
        addresses = value[index]
        if addresses is None:
            continue
        if not isinstance(addresses, list) or not addresses:
            raise SyntaxError(f"address list expected, got {addresses!r}")
        for address in addresses:
            if not isinstance(address, list) or len(address) != 4:
                raise SyntaxError(f"address of 4 fields expected, got {address!r}")
            for field in address:
                _nstring(field, "address")
    _nstring(value[8], "env-in-reply-to")
    _nstring(value[9], "env-message-id")
