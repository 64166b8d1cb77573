"""The byte scanner: header/body splits and boundary lines, as offsets.

Everything here works on the original bytes with ``bytes.find`` and
``bytes.startswith`` and their start/end arguments, so nothing is copied or
re-serialized and every offset points into what the client will be served.

Rules, the ones Dovecot applies too:

- A line ends at LF; a CR just before it belongs to the line end. A bare CR
  is an ordinary octet (RFC 5322 §2.1 forbids it; it ends nothing).
- A header ends at the first empty line, which belongs to the header
  (RFC 3501 §6.4.5: HEADER includes the blank line). Without one, the header
  runs to the end of the entity and the body is empty. Lines without a colon
  stay in the header; they are no field.
- A boundary delimiter is a line that starts with ``--`` and the boundary;
  RFC 2046 §5.1.1 says a prefix match is enough. The line end before it
  belongs to the delimiter, not to the part before. When boundaries of
  nested multiparts overlap, the innermost one wins.

The searches for an empty line are memoised: the parser only moves forward,
so a message made of thousands of parts without empty lines still costs one
pass, not one pass per part.
"""

from __future__ import annotations

from typing import NamedTuple


class Delimiter(NamedTuple):
    """A boundary delimiter line (RFC 2046 §5.1.1)."""

    start: int  # offset of the first "-" of the line
    after: int  # offset just after the line's LF (or the end of the bytes)
    level: int  # index into the boundary stack, 0 the outermost
    close: bool  # a close-delimiter, "--boundary--"


class Scanner:
    """Offsets of lines, empty lines and boundary delimiters in ``raw``."""

    __slots__ = ("_crlf_from", "_crlf_hit", "_lf_from", "_lf_hit", "raw", "size")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.size = len(raw)
        # Memos of the last searches for "\n\r\n" and "\n\n": searching from
        # any offset in [_from, _hit] gives the same hit (-1: none to the end).
        self._crlf_from = self.size + 1
        self._crlf_hit = -1
        self._lf_from = self.size + 1
        self._lf_hit = -1

    def empty_line(self, start: int) -> tuple[int, int] | None:
        """The first empty line at or after the line start ``start``.

        Returns (offset of the empty line, offset just after it), or None.
        """
        raw = self.raw
        if raw.startswith(b"\n", start):
            return start, start + 1
        if raw.startswith(b"\r\n", start):
            return start, start + 2
        crlf = self._find_crlf(start)
        lf = self._find_lf(start)
        if lf >= 0 and (crlf < 0 or lf < crlf):
            return lf + 1, lf + 2
        if crlf >= 0:
            return crlf + 1, crlf + 3
        return None

    def _find_crlf(self, start: int) -> int:
        if not (
            self._crlf_from <= start and (self._crlf_hit < 0 or start <= self._crlf_hit)
        ):
            self._crlf_from = start
            self._crlf_hit = self.raw.find(b"\n\r\n", start)
        return self._crlf_hit

    def _find_lf(self, start: int) -> int:
        if not (self._lf_from <= start and (self._lf_hit < 0 or start <= self._lf_hit)):
            self._lf_from = start
            self._lf_hit = self.raw.find(b"\n\n", start)
        return self._lf_hit

    def delimiter(
        self, start: int, end: int, stack: tuple[bytes, ...]
    ) -> Delimiter | None:
        """The first delimiter line of any boundary in ``stack`` in [start, end).

        ``start`` must be a line start. Each entry of ``stack`` is
        ``b"--" + boundary``; later entries (inner multiparts) win.
        """
        if not stack:
            return None
        raw = self.raw
        pos = start if raw.startswith(b"--", start) else raw.find(b"\n--", start, end)
        if pos != start:
            if pos < 0:
                return None
            pos += 1
        while True:
            found = self.delimiter_at(pos, end, stack)
            if found is not None:
                return found
            pos = raw.find(b"\n--", pos, end)
            if pos < 0:
                return None
            pos += 1

    def delimiter_at(
        self, pos: int, end: int, stack: tuple[bytes, ...]
    ) -> Delimiter | None:
        """The delimiter line that starts exactly at ``pos``, if any."""
        raw = self.raw
        for level in range(len(stack) - 1, -1, -1):
            dash_boundary = stack[level]
            stop = pos + len(dash_boundary)
            if stop <= end and raw.startswith(dash_boundary, pos):
                close = stop + 2 <= end and raw.startswith(b"--", stop)
                lf = raw.find(b"\n", stop, end)
                return Delimiter(pos, end if lf < 0 else lf + 1, level, close)
        return None

    def line_end_before(self, pos: int, floor: int) -> int:
        """Offset of the line end (CRLF or LF) just before ``pos``, not below
        ``floor``: where content stops when a delimiter line starts at ``pos``."""
        raw = self.raw
        if pos > floor and raw[pos - 1] == 0x0A:
            pos -= 1
            if pos > floor and raw[pos - 1] == 0x0D:
                pos -= 1
        return pos


def header_fields(
    raw: bytes, start: int, end: int, wanted: frozenset[str] | None
) -> list[tuple[str, bytes]]:
    """Header fields in raw[start:end] as (lowercase name, unfolded value).

    Unfolding removes the line ends only (RFC 5322 §2.2.3); the value loses
    its leading and trailing white space. Lines without a colon are skipped.
    With ``wanted``, only those field names are kept.
    """
    fields: list[tuple[str, bytes]] = []
    name: str | None = None
    value: list[bytes] = []
    for line in raw[start:end].split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            fields.append((name, b"".join(value).strip(b" \t\r")))
            name = None
        colon = line.find(b":")
        if colon <= 0:
            continue
        field_name = line[:colon].rstrip(b" \t").decode("latin-1").lower()
        if wanted is None or field_name in wanted:
            name = field_name
            value = [line[colon + 1 :]]
    if name is not None:
        fields.append((name, b"".join(value).strip(b" \t\r")))
    return fields
