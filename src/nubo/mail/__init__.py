"""mail: message parsing and the mailstore; smtp/ and imap/ adapters.

``nubo.mail.message`` reads a stored message's bytes once, at delivery, into
the envelope, MIME structure and byte offsets that IMAP (RFC 3501 §6.4.5,
RFC 3501 §7.4.2) and SEARCH need later, so no command ever re-parses a blob.
"""
