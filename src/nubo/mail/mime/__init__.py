"""MIME internals behind ``nubo.mail.message``; import from there instead.

- ``scan``: the byte scanner, header/body splits and boundary lines with
  exact offsets into the original bytes (RFC 5322 §2.1, RFC 2046 §5.1.1).
- ``headers``: structured field values, MIME parameters (RFC 2045 §5.1,
  RFC 2231) and encoded-words (RFC 2047).
- ``address``: address lists into IMAP address structures (RFC 5322 §3.4,
  RFC 3501 §7.4.2).
- ``model``: the parsed objects and their compact JSON form.
- ``structure``: the parser that builds the part tree.
- ``imap``: BODYSTRUCTURE, BODY, ENVELOPE and BODY[section] (RFC 3501 §6.4.5,
  RFC 3501 §7.4.2).
- ``search``: decoded header text and the sent date for SEARCH
  (RFC 3501 §6.4.4).
"""
