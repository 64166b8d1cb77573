"""``nubo serve``: run every listener until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
from typing import Any

from nubo.config import Config
from nubo.log import setup_logging
from nubo.server import serve


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve", help="run the server (every listener, one process)"
    )
    parser.set_defaults(handler=_serve)


async def _serve(_args: argparse.Namespace, config: Config) -> int:
    setup_logging(config, to_file=True)
    return await serve(config)
