"""The queue's pure parts, without sockets or a store: replies, the retry
schedule and the DSN bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest

from nubo.mail.queue.dsn import MAX_HEADER, DsnEntry, build_dsn, original_header
from nubo.mail.queue.model import Leased
from nubo.mail.queue.reply import MAX_TEXT, Reply, clean, from_smtp
from nubo.mail.queue.schedule import Policy, Report, decide

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = Policy(first_retry=60, max_retry=600, retry_for=3600, delay_notice_after=900)


def row(attempts: int = 0, notified: bool = False, sender: str = "a@x.test") -> Leased:
    return Leased(
        id=1,
        message_id=1,
        recipient="b@y.test",
        domain="y.test",
        attempts=attempts,
        delay_notified=notified,
        sender=sender,
        blob_id="0" * 64,
        size=10,
        created_at=T0,
    )


# -- replies -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "status", "rest"),
    [
        (250, "2.0.0 Ok: queued as 12", "2.0.0", "Ok: queued as 12"),
        (550, "5.1.1 <b@y.test>: unknown", "5.1.1", "<b@y.test>: unknown"),
        (550, "no such user", "5.0.0", "no such user"),
        (451, "5.7.1 mismatched class", "4.7.1", "mismatched class"),
        (421, "4.4.2 line one\n4.4.2 line two", "4.4.2", "line one 4.4.2 line two"),
        (554, "", "5.0.0", ""),
    ],
)
def test_reply_status_comes_from_the_text_with_the_codes_class(
    code: int, text: str, status: str, rest: str
) -> None:
    reply = from_smtp(code, text, "mx.y.test")
    assert (reply.code, reply.status, reply.text) == (code, status, rest)
    assert reply.remote_mta == "mx.y.test"


def test_reply_text_is_one_printable_bounded_line() -> None:
    assert clean("a\r\nb\x00c\tdé") == "a b?c?d?"
    assert len(clean("x" * 5000)) == MAX_TEXT


def test_reply_kinds() -> None:
    assert Reply(250, "2.0.0", "ok").sent
    assert Reply(550, "5.1.1", "no").permanent
    assert not Reply(451, "4.3.0", "later").permanent
    assert Reply(0, "5.1.2", "no such domain").permanent
    assert str(Reply(0, "4.4.1", "refused")) == "4.4.1 refused"
    assert str(Reply(451, "4.3.0", "later")) == "451 4.3.0 later"


# -- the schedule ------------------------------------------------------------


def test_sent_and_permanent() -> None:
    sent = decide(POLICY, row(), Reply(250, "2.0.0", "ok"), T0)
    assert (sent.state, sent.report) == ("sent", None)
    bounced = decide(POLICY, row(), Reply(550, "5.1.1", "no"), T0)
    assert (bounced.state, bounced.report, bounced.expired) == (
        "bounced",
        Report.FAILED,
        False,
    )


def test_waits_double_up_to_the_maximum() -> None:
    assert [POLICY.wait(n) for n in range(1, 8)] == [60, 120, 240, 480, 600, 600, 600]
    assert POLICY.wait(10_000) == 600  # no float overflow


def test_temporary_failure_is_retried_and_the_last_retry_meets_the_expiry() -> None:
    later = Reply(451, "4.3.0", "later")
    first = decide(POLICY, row(), later, T0)
    assert first.state == "queued"
    assert first.next_attempt_at == T0 + timedelta(seconds=60)

    near_end = T0 + timedelta(seconds=3500)
    last = decide(POLICY, row(attempts=9, notified=True), later, near_end)
    assert last.next_attempt_at == T0 + timedelta(seconds=3600)

    expired = decide(
        POLICY, row(attempts=10, notified=True), later, last.next_attempt_at
    )
    assert (expired.state, expired.report, expired.expired) == (
        "bounced",
        Report.FAILED,
        True,
    )


def test_one_delay_notice_after_its_time() -> None:
    later = Reply(451, "4.3.0", "later")
    assert decide(POLICY, row(), later, T0 + timedelta(seconds=899)).report is None
    notice = decide(POLICY, row(), later, T0 + timedelta(seconds=900))
    assert notice.report is Report.DELAYED
    again = decide(POLICY, row(notified=True), later, T0 + timedelta(seconds=1900))
    assert again.report is None


# -- DSN bytes -----------------------------------------------------------------


def entry(report: Report = Report.FAILED, recipient: str = "b@y.test") -> DsnEntry:
    return DsnEntry(
        recipient=recipient,
        report=report,
        reply=Reply(550, "5.1.1", "unknown user", "mx.y.test"),
        last_attempt=T0,
        retry_until=T0 + timedelta(days=5) if report is Report.DELAYED else None,
    )


def test_dsn_is_a_well_formed_report_with_only_crlf() -> None:
    original = b"From: a@x.test\nSubject: hi\n\nthe body\n"
    raw = build_dsn(
        hostname="mail.x.test",
        sender="a@x.test",
        arrival=T0,
        entries=[entry(), entry(Report.DELAYED, "c@y.test")],
        original=original,
        now=T0,
    )
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()
    parsed = message_from_bytes(raw)
    assert parsed["Subject"] == "Undelivered Mail Returned to Sender"
    human, status, header = parsed.get_payload()  # type: ignore[misc]
    assert "could not be delivered" in human.get_payload()
    per_message, failed, delayed = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.x.test"
    assert failed["Action"] == "failed" and delayed["Action"] == "delayed"
    assert "Will-Retry-Until" in delayed and "Will-Retry-Until" not in failed
    # The last line end belongs to the closing boundary (RFC 2046 §5.1.1).
    assert header.get_payload() == "From: a@x.test\r\nSubject: hi"
    assert b"the body" not in raw


def test_dsn_returns_a_long_header_cut_at_a_line_end() -> None:
    long_header = b"".join(
        b"X-Filler-%05d: %s\r\n" % (n, b"y" * 60) for n in range(2000)
    )
    header = original_header(long_header + b"\r\nbody\r\n")
    assert len(header) <= MAX_HEADER
    assert header.endswith(b"\r\n")
    assert long_header.startswith(header)


def test_original_header_of_a_message_without_body() -> None:
    assert original_header(b"Subject: x\r\nFrom: y") == b"Subject: x\r\nFrom: y\r\n"


def test_dsn_for_utf8_addresses_uses_the_global_types() -> None:
    raw = build_dsn(
        hostname="mail.x.test",
        sender="ånn@x.test",
        arrival=T0,
        entries=[entry(recipient="jürgen@y.test")],
        original="Subject: grüße\r\n\r\n".encode(),
        now=T0,
    )
    parsed = message_from_bytes(raw)
    _human, status, header = parsed.get_payload()  # type: ignore[misc]
    assert status.get_content_type() == "message/global-delivery-status"
    assert header.get_content_type() == "message/global-headers"
    assert "Final-Recipient: utf-8; jürgen@y.test".encode() in raw
