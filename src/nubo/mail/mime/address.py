"""Address lists (RFC 5322 §3.4) as IMAP address structures (RFC 3501 §7.4.2).

An address is ``(name, adl, mailbox, host)``. Text stays as written:
encoded-words (RFC 2047) are not decoded, because the IMAP envelope carries
the header's own text and the client decodes it. Quoted display names lose
their quotes and backslashes; a quoted local part keeps them, since it is
the mailbox as it must be written again.

A group (RFC 5322 §3.4, ``name: a@b, c@d;``) is written as IMAP wants it:
``(NIL NIL name NIL)``, its members, then ``(NIL NIL NIL NIL)``.

Broken input never raises and never yields a NIL host outside group syntax,
which clients would read as a group marker: a missing local part or domain
becomes ``MISSING_MAILBOX`` or ``MISSING_DOMAIN``, the placeholders Dovecot
sends. The obsolete syntax of RFC 5322 §4.4 is read: empty list elements,
routes (``<@a,@b:user@host>``, the adl) and a comment as the display name
(``user@host (Name)``).
"""

from __future__ import annotations

import re

from nubo.mail.mime.headers import FieldReader

Address = tuple[str | None, str | None, str | None, str | None]

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"
GROUP_END: Address = (None, None, None, None)

# Octets that end an atom in an address; "." is kept inside atoms so that
# dot-atoms and obsolete phrases read as one word.
_STOP = frozenset('()<>[]:;@\\,"') | frozenset(" \t\r\n")
_ATOM = re.compile(r'[^()<>\[\]:;@\\," \t\r\n]*')


def parse_address_list(value: str, limit: int | None = None) -> tuple[Address, ...]:
    """Every mailbox and group in an address-list header value; with
    ``limit``, about that many at most (a group cut short gets its end).

    A bare CR ends the list: what follows it is no part of this field (a
    message with CR-only line ends has its whole header on one line)."""
    reader = FieldReader(value.partition("\r")[0])
    out: list[Address] = []
    in_group = False
    while limit is None or len(out) < limit:
        reader.skip_cfws()
        ch = reader.peek()
        if not ch:
            break
        if ch == ",":
            reader.pos += 1
            continue
        if ch == ";":
            reader.pos += 1
            if in_group:
                out.append(GROUP_END)
                in_group = False
            continue
        item = _item(reader, in_group)
        if isinstance(item, str):
            out.append((None, None, item, None))
            in_group = True
        elif item is not None:
            out.append(item)
    if in_group:
        out.append(GROUP_END)
    return tuple(out)


def _item(reader: FieldReader, in_group: bool) -> Address | str | None:
    """One mailbox, or the name of a group that starts here (a str)."""
    words: list[tuple[str, str]] = []  # (text for a name, text as written)
    comment: str | None = None
    text = reader.text
    while True:
        comment = _skip_keep_comment(reader, comment)
        ch = reader.peek()
        if not ch or ch in ",;":
            if not words:
                return None
            local = "".join(raw for _, raw in words)
            return (comment, None, local, MISSING_DOMAIN)
        if ch == "<":
            reader.pos += 1
            return _angle_addr(reader, _phrase(words), comment)
        if ch == ":" and words and not in_group:
            reader.pos += 1
            return _phrase(words) or ""
        if ch == "@":
            reader.pos += 1
            local = "".join(raw for _, raw in words) or MISSING_MAILBOX
            domain = _domain(reader)
            comment = _skip_keep_comment(reader, comment)
            if reader.peek() == "<":
                # "user@host <real@host>": an address written as the display
                # name, unquoted; the angle address is the mailbox.
                reader.pos += 1
                return _angle_addr(reader, f"{local}@{domain}", comment)
            return (comment, None, local, domain or MISSING_DOMAIN)
        start = reader.pos
        if ch == '"':
            content = reader.quoted()
            words.append((content, text[start : reader.pos]))
        elif ch not in _STOP:
            word = _atom(reader)
            words.append((word, word))
        else:
            reader.pos += 1  # a stray special: skip it


def _angle_addr(reader: FieldReader, name: str | None, comment: str | None) -> Address:
    """The rest of ``<[route:]local@domain>`` after the "<"."""
    reader.skip_cfws()
    adl = _route(reader)
    local_words: list[str] = []
    domain = ""
    while True:
        reader.skip_cfws()
        ch = reader.peek()
        if not ch or ch == ">":
            reader.pos += len(ch)
            break
        if ch == "@":
            reader.pos += 1
            domain = _domain(reader)
            reader.skip_past(">")
            break
        start = reader.pos
        if ch == '"':
            reader.quoted()
            local_words.append(reader.text[start : reader.pos])
        elif ch not in _STOP:
            local_words.append(_atom(reader))
        else:
            reader.pos += 1
    after = _skip_keep_comment(reader, None)
    local = "".join(local_words) or MISSING_MAILBOX
    return (name or comment or after, adl, local, domain or MISSING_DOMAIN)


def _route(reader: FieldReader) -> str | None:
    """An obsolete route ``@a,@b:`` (RFC 5322 §4.4), kept as the adl."""
    if reader.peek() != "@":
        return None
    text, start = reader.text, reader.pos
    close = text.find(">", start)
    # The colon is looked for before the ">" only, so that a list of many
    # "<@a>" costs one pass, not one pass per address.
    colon = text.find(":", start, len(text) if close < 0 else close)
    if colon < 0:
        return None  # "<@host>": a missing local part, not a route
    reader.pos = colon + 1
    return "".join(text[start:colon].split())


def _domain(reader: FieldReader) -> str:
    """A dot-atom or domain literal, comments and spaces around dots dropped."""
    parts: list[str] = []
    while True:
        reader.skip_cfws()
        ch = reader.peek()
        if ch == "[":
            end = reader.text.find("]", reader.pos)
            end = len(reader.text) if end < 0 else end + 1
            parts.append(reader.text[reader.pos : end])
            reader.pos = end
        elif ch and ch not in _STOP:
            parts.append(_atom(reader))
        else:
            return "".join(parts)
        save = reader.pos
        reader.skip_cfws()
        if reader.peek() != "." and not (parts and parts[-1].endswith(".")):
            reader.pos = save
            return "".join(parts)


def _atom(reader: FieldReader) -> str:
    match = _ATOM.match(reader.text, reader.pos)
    assert match is not None  # the pattern matches the empty string
    reader.pos = match.end()
    return match.group()


def _phrase(words: list[tuple[str, str]]) -> str | None:
    return " ".join(word for word, _ in words) or None


def _skip_keep_comment(reader: FieldReader, comment: str | None) -> str | None:
    """Skip CFWS; return the text of the last non-empty comment seen."""
    while True:
        reader.skip_space()
        if reader.peek() != "(":
            return comment
        found = reader.comment().strip()
        if found:
            comment = found
