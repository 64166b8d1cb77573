"""``nubo queue list|retry|delete``, run for real as ``python -m nubo``.

The queue is filled in-process over the same data folder (one message
deferred once by a scripted MX, one report, one fresh), then each command
runs as a subprocess. An error ends with status 1 and one line
``nubo: ...``; a malformed id is a usage error (status 2).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from nubo.config import Config, load
from nubo.mail.queue import Outbound
from nubo.runtime import open_runtime
from tests.mail.queue_rig import message
from tests.mail.scripted_mx import scripted_mx

pytestmark = pytest.mark.slow


async def nubo(data: Path, *argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    env.update(NUBO_DATA=str(data), NUBO_LOG_LEVEL="warning")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nubo",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def fill(config: Config, mx_address: str) -> tuple[int, int, int]:
    """Three queued messages: deferred once, a report, fresh."""
    config = config.replace(mx_override=f"*={mx_address}")
    rt = await open_runtime(config)
    try:
        outbound = Outbound.for_runtime(rt)
        deferred = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(1)
        )
        await outbound.run_once()
        report = await outbound.enqueue(
            "", ["carol@remote.test", "dan@remote.test"], message(2)
        )
        fresh = await outbound.enqueue(
            "ann@example.org", ["eve@remote.test"], message(3)
        )
    finally:
        await rt.close()
    return deferred, report, fresh


async def test_an_empty_queue_says_so(tmp_path: Path) -> None:
    assert await nubo(tmp_path / "data", "queue", "list") == (0, "queue empty\n", "")


async def test_queue_commands_and_their_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load(environ={}).replace(data=str(data))
    with scripted_mx(data=["451 4.3.0 try later"]) as mx:
        deferred, report, fresh = await fill(config, mx.address)

    code, out, err = await nubo(data, "queue", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 3
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(
        rf"{deferred}  ann@example\.org  1 recipient  1 attempt  next {stamp}"
        r"  last 451 4\.3\.0 try later",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        rf"{report}  <>  2 recipients  0 attempts  next {stamp}  last none", lines[1]
    ), lines[1]
    assert lines[2].startswith(f"{fresh}  ann@example.org  1 recipient  0 attempts")

    assert await nubo(data, "queue", "retry", str(deferred)) == (
        0,
        f"message {deferred} due now\n",
        "",
    )
    assert await nubo(data, "queue", "retry") == (0, "3 messages due now\n", "")
    assert await nubo(data, "queue", "delete", str(report)) == (
        0,
        f"message {report} deleted; 2 recipients were still waiting\n",
        "",
    )
    code, out, _err = await nubo(data, "queue", "list")
    assert [line.split()[0] for line in out.splitlines()] == [str(deferred), str(fresh)]

    # The error cases change nothing: run them side by side.
    # Ids past 2**63 - 1 fit no id column: usage errors, not a traceback.
    missing, largest, too_large = str(report), str(2**63 - 1), str(2**63)
    unknown = [("retry", missing), ("delete", missing), ("delete", largest)]
    malformed = [
        ("retry", "abc"),
        ("delete", "0"),
        ("delete", "-1"),
        ("delete",),
        ("delete", too_large),
        ("retry", too_large),
        ("delete", "99999999999999999999999"),
        ("retry", "99999999999999999999999"),
        ("delete", "9" * 5000),  # more digits than int() converts
        ("delete", "\u0663"),  # ARABIC-INDIC DIGIT THREE
    ]
    results = await asyncio.gather(
        *(nubo(data, "queue", *argv) for argv in unknown + malformed)
    )
    for argv, result in zip(unknown, results[: len(unknown)], strict=True):
        assert result == (1, "", f"nubo: no such queued message: {argv[1]}\n")
    for argv, (code, out, err) in zip(malformed, results[len(unknown) :], strict=True):
        assert (code, out) == (2, ""), argv
        assert "usage: nubo queue" in err and "Traceback" not in err, argv
        if len(argv) == 2:
            assert "not a queue id" in err, argv
