"""Startup time of ``nubo serve``: empty data folder to a 200 from /healthz.

Runs nubo as a real subprocess several times, each on a new empty data folder
(so each start migrates the store, makes the certificate and the first
administrator), and once more on the folder of the previous start. Prints the
median and worst seconds, and the seconds SIGTERM takes to exit.

    python benchmarks/startup.py [--runs 5] [--real-argon2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serve import NuboProcess, cheap_env


def one_start(data: Path, real_argon2: bool) -> tuple[float, float]:
    extra = {}
    if real_argon2:
        extra = {"NUBO_PASSWORD_TIME_COST": "3", "NUBO_PASSWORD_MEMORY_KIB": "65536"}
    server = NuboProcess(cheap_env(data, **extra))
    began = time.monotonic()
    server.start()
    answer = httpx.get(server.url() + "/healthz", timeout=10)
    ready = time.monotonic() - began
    assert answer.status_code == 200, answer.text

    began = time.monotonic()
    code = server.stop()
    stopped = time.monotonic() - began
    assert code == 0, code
    return ready, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--real-argon2",
        action="store_true",
        help="hash the first administrator's password with the default cost",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        empty = [
            one_start(Path(folder) / f"d{n}", args.real_argon2)
            for n in range(args.runs)
        ]
        again = one_start(Path(folder) / "d0", args.real_argon2)

    ready = [r for r, _ in empty]
    stops = [s for _, s in empty]
    print(
        f"empty folder to /healthz 200: median {statistics.median(ready):.3f}s "
        f"worst {max(ready):.3f}s over {args.runs} runs"
    )
    print(f"existing folder to /healthz 200: {again[0]:.3f}s")
    print(f"SIGTERM to exit 0: median {statistics.median(stops):.3f}s")


if __name__ == "__main__":
    main()
