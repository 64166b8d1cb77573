"""``nubo db``: schema migrations and blob garbage collection."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nubo.cli.common import CommandError, runtime
from nubo.config import Config
from nubo.store.database import Database, describe_error
from nubo.store.migrate import upgrade


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "db", help="metadata store maintenance"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("upgrade", help="apply pending migrations").set_defaults(
        handler=_upgrade
    )
    gc = actions.add_parser("gc", help="delete blob bytes nothing references")
    gc.set_defaults(handler=_gc)


async def _upgrade(_args: argparse.Namespace, config: Config) -> int:
    config.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(config.effective_database_url)
    try:
        before, after = await upgrade(db)
    except (SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot upgrade the store: {describe_error(exc)}") from None
    finally:
        await db.close()

    if before == after:
        print(f"schema already at revision {after}")
    else:
        print(f"schema upgraded from {before or 'empty'} to revision {after}")
    return 0


async def _gc(_args: argparse.Namespace, config: Config) -> int:
    async with runtime(config) as rt:
        report = await rt.blobs.collect()
    print(f"blobs collected: {report}")
    return 0
