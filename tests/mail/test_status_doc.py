"""docs/status.md states the MIME parser's limits: the numbers it gives are
the ones the code enforces."""

from __future__ import annotations

from pathlib import Path

from nubo.mail.mime.headers import MAX_PARAMS
from nubo.mail.mime.structure import MAX_ADDRESSES, MAX_DEPTH, MAX_PARTS

STATUS = Path(__file__).resolve().parents[2] / "docs" / "status.md"


def test_mime_limits_in_the_status_table_match_the_code() -> None:
    text = STATUS.read_text(encoding="utf-8")
    section = text.split("## MIME parsing", 1)[1].split("\n## ", 1)[0]

    for name, value in (
        ("MAX_DEPTH", MAX_DEPTH),
        ("MAX_PARTS", MAX_PARTS),
        ("MAX_ADDRESSES", MAX_ADDRESSES),
        ("MAX_PARAMS", MAX_PARAMS),
    ):
        assert f"`{name}` {value} |" in section, name
    assert "offset scanner" in section
    assert "exactly what arrived" in section
