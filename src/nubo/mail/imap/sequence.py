"""Sequence sets: "1:5,7,9:*" (RFC 3501 §9 ``sequence-set``, RFC 3501 §6.4.8).

A ``SequenceSet`` is what the client wrote, with ``*`` unresolved: it means
the largest number in use (the message count, or the highest UID), which the
server knows only when it runs the command. ``resolve`` turns it into a
``NumberSet``: sorted, disjoint, inclusive ranges, so "1:4294967295" is one
pair, never four billion integers; iterating yields numbers lazily.

A range is unordered: "3:*" with ``*`` = 2 is "2:3" (RFC 3501 §9, and
``../shared/realworld/IMAP-02_*``: "UID 559:*" names the last message).
For UIDs a number beyond the highest simply names nothing; for message
sequence numbers ``resolve_messages`` refuses numbers above the count and
any ``*`` in an empty mailbox, which RFC 3501 §9 calls invalid.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nubo.mail.imap.errors import ParseError

STAR = 0
"""How ``*`` is kept in a ``SequenceSet`` range: 0 is never a valid number."""

MAX_NUMBER = 0xFFFFFFFF
"""nz-number and UIDs are 32-bit unsigned (RFC 3501 §9 ``nz-number``)."""


@dataclass(frozen=True, slots=True)
class NumberSet:
    """Resolved numbers as sorted, disjoint, non-adjacent inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, numbers: Iterable[int]) -> NumberSet:
        """Compress any numbers into ranges (COPYUID and APPENDUID answers)."""
        return cls(_merge((number, number) for number in numbers))

    def __iter__(self) -> Iterator[int]:
        for low, high in self.ranges:
            yield from range(low, high + 1)

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        index = bisect.bisect_right(self.ranges, (number, MAX_NUMBER + 1)) - 1
        return index >= 0 and self.ranges[index][1] >= number

    def within(self, low: int, high: int) -> NumberSet:
        """The numbers that are also in ``low``..``high``."""
        kept = []
        for start, end in self.ranges:
            start, end = max(start, low), min(end, high)
            if start <= end:
                kept.append((start, end))
        return NumberSet(tuple(kept))

    def __str__(self) -> str:
        return ",".join(
            str(low) if low == high else f"{low}:{high}" for low, high in self.ranges
        )


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence set as written; ``STAR`` (0) stands for ``*``."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: bytes) -> SequenceSet:
        """Read ``sequence-set``; ParseError on anything else."""
        if text == b"1:*":  # by far the most common set; skip the general path
            return _ALL
        ranges = []
        for item in text.split(b","):
            low, colon, high = item.partition(b":")
            first = _number(low)
            ranges.append((first, _number(high) if colon else first))
        return cls(tuple(ranges))

    @property
    def has_star(self) -> bool:
        return any(STAR in pair for pair in self.ranges)

    def resolve(self, largest: int) -> NumberSet:
        """The numbers named when ``*`` is ``largest`` (0: an empty mailbox).

        For UIDs: pass the highest UID; numbers that name no message stay
        in the set and the caller intersects with the UIDs that exist.
        """
        pairs = []
        for low, high in self.ranges:
            low, high = low or largest, high or largest
            pairs.append((low, high) if low <= high else (high, low))
        merged = _merge(pairs)
        if merged and merged[0][0] == 0:
            # "*" in an empty mailbox: 0 is no number, so drop it.
            merged = (
                merged[1:] if merged[0][1] == 0 else ((1, merged[0][1]), *merged[1:])
            )
        return NumberSet(merged)

    def resolve_messages(self, count: int) -> NumberSet:
        """Message sequence numbers in a mailbox of ``count`` messages.

        ParseError (BAD) for a number above ``count`` or a ``*`` when the
        mailbox is empty: such a set names a message that does not exist.
        """
        if count == 0 and self.has_star:
            raise ParseError("* names no message: the mailbox is empty")
        resolved = self.resolve(count)
        if resolved.ranges and resolved.ranges[-1][1] > count:
            raise ParseError("message sequence number above the message count")
        return resolved

    def __str__(self) -> str:
        return ",".join(
            _text(low) if low == high else f"{_text(low)}:{_text(high)}"
            for low, high in self.ranges
        )


def _number(octets: bytes) -> int:
    if octets == b"*":
        return STAR
    # isdigit() is also true for superscripts and other Unicode digits in str,
    # but on bytes it means exactly 0-9.
    if not octets.isdigit() or octets[0] == 0x30 or len(octets) > 10:
        raise ParseError("invalid sequence set")
    number = int(octets)
    if number > MAX_NUMBER:
        raise ParseError("number in sequence set above 4294967295")
    return number


def _text(number: int) -> str:
    return "*" if number == STAR else str(number)


def _merge(pairs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(pairs):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return tuple(merged)


_ALL = SequenceSet(((1, STAR),))
