"""The ``nubo`` command: one sub-command per task, each printing one line.

Every sub-command module exposes ``register(subparsers)``, which adds its
parsers and sets ``handler`` to an async function ``(args, config) -> int``.
A bad setting or bad input ends the command with one line on standard error
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from nubo import __version__
from nubo.cli import accounts, db, mail, serve, settings
from nubo.cli.common import CommandError
from nubo.config import ConfigError, load
from nubo.log import setup_logging

EXIT_USAGE = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nubo",
        description="Mail, files, calendars and a cooperative's books.",
    )
    parser.add_argument("--version", action="version", version=f"nubo {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (default: $NUBO_CONFIG, else none)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (serve, settings, db, accounts, mail):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return EXIT_USAGE

    setup_logging(config)
    try:
        code: int = asyncio.run(args.handler(args, config))
    except CommandError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code
