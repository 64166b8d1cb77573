"""IMAP4rev1 (RFC 3501) for nubo: the protocol adapter over the mailstore.

The ground floor has no I/O, so it is tested and fuzzed without sockets:

- ``parser``: ``Parser``, bytes in and events out (commands, continuation
  requests, streamed APPEND messages, refusals), bounded by ``Limits``;
- ``commands``: one dataclass per command; ``grammar``: ``parse_command``
  for the bytes of one whole command; ``fetch`` and ``search`` read FETCH
  items and SEARCH keys into typed values;
- ``lexer``: the tokens of RFC 3501 §9; ``sequence``: sequence sets and
  their resolution against ``*``; ``utf7``: modified UTF-7 mailbox names;
- ``response``: values and lines encoded as a client will read them back;
- ``errors``: ``ParseError``, the one error any of them raises.
"""
