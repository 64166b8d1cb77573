"""A stored message, parsed once at delivery into what IMAP and SEARCH need.

Bytes in, objects out, no I/O. ``parse_message`` reads a message's octets
into a ``MessageInfo``: the envelope (RFC 3501 §7.4.2), the MIME part tree
(RFC 2045, RFC 2046) and, for every part, the offsets of its header, body
and end in the original octets. The mailstore stores ``to_json()`` in the
message's row; later the IMAP server answers ENVELOPE, BODYSTRUCTURE, BODY,
RFC822.SIZE and BODY[section] (RFC 3501 §6.4.5) from it, and serves the
octets byte-exact with one range read of the blob.

- ``bodystructure(info, extensible)``: BODYSTRUCTURE, or BODY when not
  extensible (RFC 3501 §7.4.2).
- ``envelope_imap(info)``: ENVELOPE (RFC 3501 §7.4.2).
- ``section_range(info, spec)``: (start, end) of BODY[spec] in the octets, or
  None for a part that does not exist; ``header_fields`` then filters
  HEADER.FIELDS (RFC 3501 §6.4.5).
- ``search_headers``, ``header_text`` and ``sent_date``: decoded header text
  and the Date for SEARCH (RFC 3501 §6.4.4).

Parsing never raises: a malformed message gets a best-effort structure
(see ``nubo.mail.mime.structure`` for the rules and the known gaps). The
standard ``email`` package is used for what it does well on its own terms
(Q-encoding, dates); it is not used to split the message, because it keeps
no offsets and would copy the whole message several times.
"""

from __future__ import annotations

from nubo.mail.mime.address import MISSING_DOMAIN, MISSING_MAILBOX, Address
from nubo.mail.mime.headers import decode_text
from nubo.mail.mime.imap import (
    Section,
    bodystructure,
    envelope_imap,
    find_part,
    header_fields,
    imap_string,
    parse_section,
    section_range,
)
from nubo.mail.mime.model import Envelope, MessageInfo, Part
from nubo.mail.mime.search import header_text, search_headers, sent_date
from nubo.mail.mime.structure import MAX_DEPTH, parse_message

__all__ = [
    "MAX_DEPTH",
    "MISSING_DOMAIN",
    "MISSING_MAILBOX",
    "Address",
    "Envelope",
    "MessageInfo",
    "Part",
    "Section",
    "bodystructure",
    "decode_text",
    "envelope_imap",
    "find_part",
    "header_fields",
    "header_text",
    "imap_string",
    "parse_message",
    "parse_section",
    "search_headers",
    "section_range",
    "sent_date",
]
