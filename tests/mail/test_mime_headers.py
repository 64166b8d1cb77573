"""Structured header fields: MIME parameters (RFC 2045 §5.1, RFC 2231),
encoded-words (RFC 2047), address lists (RFC 5322 §3.4 and its Appendix A)
and IMAP strings (RFC 3501 §4.3)."""

from __future__ import annotations

import pytest

from nubo.mail.message import MISSING_DOMAIN, MISSING_MAILBOX, imap_string
from nubo.mail.mime.address import GROUP_END, Address, parse_address_list
from nubo.mail.mime.headers import (
    MAX_PARAMS,
    decode_text,
    param_text,
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token,
)

# -- Content-Type and parameters (RFC 2045 §5.1) ------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text", "plain", ())),
        (
            'TEXT/Plain; CHARSET="UTF-8"; Format=flowed',
            ("text", "plain", (("charset", "UTF-8"), ("format", "flowed"))),
        ),
        # Unquoted values with tspecials are common and read up to ";".
        (
            "multipart/mixed; boundary=----=_Part_0_1.2",
            ("multipart", "mixed", (("boundary", "----=_Part_0_1.2"),)),
        ),
        # Quoted-pairs and a ";" inside a quoted string.
        (
            r'application/x; name="a \"b\"; c.bin"',
            ("application", "x", (("name", 'a "b"; c.bin'),)),
        ),
        # Comments and white space anywhere CFWS may stand.
        (
            " (lead) text / html (c) ; (x) charset = us-ascii (comment)",
            ("text", "html", (("charset", "us-ascii"),)),
        ),
        # Fixed fault: a ";" inside a comment started a parameter, so
        # "boundary=nope)" was read and the multipart found no delimiter.
        (
            'multipart/mixed (c; boundary=nope) ; boundary="x y" (trailing)',
            ("multipart", "mixed", (("boundary", "x y"),)),
        ),
        # Junk between parameters is stepped over.
        (
            "text/plain; junk; ; charset=utf-8;",
            ("text", "plain", (("charset", "utf-8"),)),
        ),
        # Folded over lines.
        (
            'multipart/mixed;\r\n\tboundary=\r\n\t"folded"',
            ("multipart", "mixed", (("boundary", "folded"),)),
        ),
    ],
)
def test_content_type(
    value: str, expected: tuple[str, str, tuple[object, ...]]
) -> None:
    assert parse_content_type(value) == expected


@pytest.mark.parametrize("value", ["", "text", "text/", "/plain", "te xt/plain", "(c)"])
def test_content_type_invalid(value: str) -> None:
    """Not ``type "/" subtype``: the caller uses text/plain (RFC 2045 §5.2)."""
    assert parse_content_type(value) is None


def test_parameters_are_bounded() -> None:
    """A field of a million parameters keeps MAX_PARAMS of them."""
    parsed = parse_content_type("text/plain" + "; a=b" * 1_000_000)
    assert parsed is not None
    assert len(parsed[2]) == MAX_PARAMS


@pytest.mark.parametrize(
    ("value", "params", "name", "text"),
    [
        # RFC 2231 §4: charset and language.
        (
            "application/x; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
            (("title*", "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"),),
            "title",
            "This is ***fun***",
        ),
        # RFC 2231 §3: continuations, joined in section order.
        (
            'message/external-body; URL*1="cool.directory/";'
            ' URL*0="ftp://"; access-type=URL',
            (("url", "ftp://cool.directory/"), ("access-type", "URL")),
            "url",
            "ftp://cool.directory/",
        ),
        # RFC 2231 §4.1: extended and plain sections mixed.
        (
            "application/x; title*0*=us-ascii'en'This%20is%20even%20more%20;"
            ' title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn\'t it!"',
            (
                (
                    "title*",
                    "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A"
                    "%20isn%27t%20it%21",
                ),
            ),
            "title",
            "This is even more ***fun*** isn't it!",
        ),
        # UTF-8 file name in two extended sections (mixed_attachment_rfc2231).
        (
            "application/pdf; name*0*=utf-8''Facture%20n%C2%B0;"
            " name*1*=%2042%20%E2%80%94%20mars.pdf",
            (("name*", "utf-8''Facture%20n%C2%B0%2042%20%E2%80%94%20mars.pdf"),),
            "name",
            "Facture n° 42 — mars.pdf",
        ),
        # Fixed fault: a plain first section followed by an extended one was
        # joined as a plain value, so "%E2%82%AC" was never decoded. Only
        # the first section may carry a charset; here there is none.
        (
            'application/x; name*0="plain "; name*1*=%E2%82%AC; name*2=" end"',
            (("name*", "''plain%20%E2%82%AC%20end"),),
            "name",
            "plain € end",
        ),
        (
            "application/x; name*0=abc; name*1*=utf-8''%41",
            (("name*", "''abcutf-8''%41"),),
            "name",
            "abcutf-8''A",
        ),
        # A plain parameter holding encoded-words, as many mailers write.
        (
            'application/x; name="=?utf-8?q?r=C3=A9sum=C3=A9?=.txt"',
            (("name", "=?utf-8?q?r=C3=A9sum=C3=A9?=.txt"),),
            "name",
            "résumé.txt",
        ),
        # Raw 8-bit octets (latin-1 str) read as UTF-8.
        (
            'text/plain; name="r\xc3\xa9sum\xc3\xa9.txt"',
            (("name", "r\xc3\xa9sum\xc3\xa9.txt"),),
            "name",
            "résumé.txt",
        ),
    ],
)
def test_rfc2231_parameters(
    value: str, params: tuple[tuple[str, str], ...], name: str, text: str
) -> None:
    parsed = parse_content_type(value)
    assert parsed is not None
    assert parsed[2] == params
    assert param_text(parsed[2], name) == text


def test_disposition_language_and_token() -> None:
    assert parse_disposition('ATTACHMENT; FileName="x.bin"; Size=4') == (
        "attachment",
        (("filename", "x.bin"), ("size", "4")),
    )
    assert parse_disposition("inline") == ("inline", ())
    assert parse_disposition("; filename=x") is None
    assert parse_language("en-US (English), fr ,, de") == ("en-US", "fr", "de")
    assert parse_language("") == ()
    assert parse_token(" BASE64 (comment)") == "base64"
    assert parse_token("") is None


# -- Encoded-words (RFC 2047) -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # The examples of RFC 2047 §8.
        ("=?ISO-8859-1?Q?a?=", "a"),
        ("=?ISO-8859-1?Q?a?= b", "a b"),
        ("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a_b?=", "a b"),
        ("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b"),
        (
            "=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
            "Keith Moore <moore@cs.utk.edu>",
        ),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        # RFC 2231 §5: a language after "*".
        ("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        # The samples' words.
        ("=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?=", "Jörg Müller"),
        ("=?koi8-r?b?8NLJ18XU?=", "Привет"),
        ("=?shift_jis?b?k/qWe4zq?=", "日本語"),
        (
            "=?UTF-8?B?8J+NlSBQaXp6YSB0b25pZ2h0Pw==?=\r\n"
            " =?windows-1252?Q?_=93yes=94_or_=96no?="
            " =?iso-2022-jp?b?GyRCRnxLXDhsGyhC?=",
            "🍕 Pizza tonight? “yes” or –no日本語",
        ),
        # Fixed fault: a UTF-8 character split over two words of one charset
        # came out as two U+FFFD; the words are joined before decoding.
        ("=?utf-8?q?=E2=82?= =?UTF-8?q?=AC?=", "€"),
        ("=?utf-8?b?4oI=?=\r\n =?utf-8?b?rA==?=", "€"),
        # Broken words never raise: kept as written, the space after kept.
        ("=?utf-8?b?!!!notbase64?= =?utf-8?q?x?=", "=?utf-8?b?!!!notbase64?= x"),
        ("=?utf-8?x?bad?=", "=?utf-8?x?bad?="),
        ("=?utf-8?q?unterminated and more", "=?utf-8?q?unterminated and more"),
        ("=?nosuchcharset?q?abc?=", "abc"),
        ("=?zlib?q?abc?= =?idna?q?=FF?= =?rot13?q?x?=", "abc\xffx"),
        # Raw octets: UTF-8 when valid, else Windows-1252.
        ("caf\xc3\xa9", "café"),
        ("caf\xe9 \x93q\x94", "café “q”"),
    ],
)
def test_decode_text(value: str, text: str) -> None:
    assert decode_text(value) == text


# -- Address lists (RFC 5322 §3.4, RFC 3501 §7.4.2) --------------------------


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        # RFC 5322 Appendix A.1.1 and A.1.2.
        (
            '"Joe Q. Public" <john.q.public@example.com>',
            [("Joe Q. Public", None, "john.q.public", "example.com")],
        ),
        (
            "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
            [
                ("Mary Smith", None, "mary", "x.test"),
                (None, None, "jdoe", "example.org"),
                ("Who?", None, "one", "y.test"),
            ],
        ),
        (
            '<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>',
            [
                (None, None, "boss", "nil.test"),
                ('Giant; "Big" Box', None, "sysservices", "example.net"),
            ],
        ),
        # RFC 5322 Appendix A.1.3: groups, as RFC 3501 §7.4.2 writes them.
        (
            "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
            [
                (None, None, "A Group", None),
                ("Ed Jones", None, "c", "a.test"),
                (None, None, "joe", "where.test"),
                ("John", None, "jdoe", "one.test"),
                GROUP_END,
            ],
        ),
        (
            "Undisclosed recipients:;",
            [(None, None, "Undisclosed recipients", None), GROUP_END],
        ),
        # An unclosed group is closed.
        (
            "team: a@b.test",
            [(None, None, "team", None), (None, None, "a", "b.test"), GROUP_END],
        ),
        # RFC 5322 Appendix A.5: comments and white space.
        (
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [("Pete", None, "pete", "silly.test")],
        ),
        # RFC 5322 §4.4: a route is the adl; a comment may name the mailbox.
        (
            "<@relay1.example.net,@relay2.example.net:bob@example.net>",
            [(None, "@relay1.example.net,@relay2.example.net", "bob", "example.net")],
        ),
        ("lee@example.org (Lee Sample)", [("Lee Sample", None, "lee", "example.org")]),
        # Encoded-words stay as written; the client decodes them.
        (
            "=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>",
            [("=?UTF-8?B?SsO2cmcgTcO8bGxlcg==?=", None, "joerg", "example.de")],
        ),
        # A quoted local part keeps its quotes: mailbox@host is written again.
        ('"quoted local"@example.org', [(None, None, '"quoted local"', "example.org")]),
        ("admin@[192.0.2.1]", [(None, None, "admin", "[192.0.2.1]")]),
        # Broken ones never give a NIL host outside a group.
        ("<>", [(None, None, MISSING_MAILBOX, MISSING_DOMAIN)]),
        (
            "@, a@, @b, <@c>, <d@>, plain",
            [
                (None, None, MISSING_MAILBOX, MISSING_DOMAIN),
                (None, None, "a", MISSING_DOMAIN),
                (None, None, MISSING_MAILBOX, "b"),
                (None, None, MISSING_MAILBOX, "c"),
                (None, None, "d", MISSING_DOMAIN),
                (None, None, "plain", MISSING_DOMAIN),
            ],
        ),
        # Fixed fault: an address written as the display name, unquoted,
        # gave two mailboxes (a reply went to both). Dovecot keeps the
        # first; the angle address is the one the sender meant.
        ("user@host <real@example.org>", [("user@host", None, "real", "example.org")]),
        # A bare CR ends the field (CR-only line ends: one header line).
        (
            "Old Mac <mac@example.net>\rTo: lee@example.org",
            [("Old Mac", None, "mac", "example.net")],
        ),
        (", ,", []),
    ],
)
def test_address_list(value: str, addresses: list[Address]) -> None:
    assert list(parse_address_list(value)) == addresses


def test_address_list_limit() -> None:
    assert len(parse_address_list("a@b.test, " * 50, limit=10)) == 10
    # A group cut short still gets its end marker.
    found = parse_address_list("g: " + "a@b.test, " * 50 + ";", limit=5)
    assert found[-1] == GROUP_END
    assert len(found) == 6


def test_many_routes_cost_one_pass() -> None:
    """Fixed fault: each "<@a>" looked for a ":" to the end of the field, so
    a list of many was quadratic (minutes for a few megabytes)."""
    found = parse_address_list("<@a>," * 200_000)
    assert len(found) == 200_000
    assert found[0] == (None, None, MISSING_MAILBOX, "a")


# -- IMAP strings (RFC 3501 §4.3) ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (None, b"NIL"),
        ("", b'""'),
        ("plain", b'"plain"'),
        ('say "hi" \\ bye', b'"say \\"hi\\" \\\\ bye"'),
        ("caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),  # 8-bit octets: a literal
        ("a\r\nb", b"{4}\r\na\r\nb"),
        ("a\rb", b"{3}\r\na\rb"),
        ("a\x00b", b"{5}\r\na\xef\xbf\xbdb"),  # NUL cannot be sent
        ("€", b"{3}\r\n\xe2\x82\xac"),  # not latin-1: UTF-8
        ("tab\there", b'"tab\there"'),  # controls other than CR, LF, NUL
        ("del\x7f", b'"del\x7f"'),
    ],
)
def test_imap_string(value: str | None, written: bytes) -> None:
    assert imap_string(value) == written
