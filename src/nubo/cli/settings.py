"""``nubo config show``: the effective settings and where each came from."""

from __future__ import annotations

import argparse
from typing import Any

from nubo.config import Config, describe


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "config", help="show the effective settings"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    show = actions.add_parser("show", help="effective settings, secrets masked")
    show.set_defaults(handler=_show)
    help_ = actions.add_parser("help", help="every setting with its help line")
    help_.set_defaults(handler=_help)


async def _show(_args: argparse.Namespace, config: Config) -> int:
    rows = list(config.shown())
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}} = {value}  # {source}")
    return 0


async def _help(_args: argparse.Namespace, _config: Config) -> int:
    for line in describe():
        print(line)
    return 0
