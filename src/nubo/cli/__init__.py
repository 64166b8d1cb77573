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
from typing import Any

from nubo import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but ``-5G`` or ``-bad-.org`` is a value, not an unknown option.

    argparse takes any word starting with "-" for an option unless it looks
    like a negative number, so ``nubo user quota ann@x -5G`` failed with
    "the following arguments are required". No option of nubo is one dash and
    several letters, so such a word is passed on as a value and refused with
    the value's own message.
    """

    def _parse_optional(self, arg_string: str) -> Any:
        if (
            len(arg_string) > 2
            and arg_string[0] == "-"
            and arg_string[1] != "-"
            and arg_string[:2] not in self._option_string_actions
        ):
            return None
        return super()._parse_optional(arg_string)


def build_parser() -> argparse.ArgumentParser:
    from nubo.cli import accounts, db, mail, serve, settings

    parser = _Parser(
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
    """The ``nubo`` command's exit status; Ctrl-C at any moment exits 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Also while the modules below load, before any loop or handler runs:
        # this module imports nothing heavy so that the window is covered.
        print("nubo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    from nubo.cli.common import CommandError
    from nubo.config import ConfigError, load
    from nubo.log import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return EXIT_USAGE

    setup_logging(config, command=True)
    try:
        code: int = asyncio.run(args.handler(args, config))
    except CommandError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"nubo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
