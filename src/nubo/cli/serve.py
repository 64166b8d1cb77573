"""``nubo serve``: run every listener until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
from typing import Any

from nubo.cli.common import CommandError
from nubo.config import Config
from nubo.log import setup_logging
from nubo.runtime import DataFolderBusy, lock_data_folder, prepare_data_folder
from nubo.server import serve


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve", help="run the server (every listener, one process)"
    )
    parser.set_defaults(handler=_serve)


async def _serve(_args: argparse.Namespace, config: Config) -> int:
    # The data folder first: the log file lives in it, and a second server
    # on the same SQLite store must stop before it writes anything there.
    prepare_data_folder(config)
    try:
        with lock_data_folder(config):
            setup_logging(config, to_file=True)
            return await serve(config)
    except DataFolderBusy as exc:
        raise CommandError(str(exc)) from None
