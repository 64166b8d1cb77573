"""``nubo db``: schema migrations and blob garbage collection."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from nubo.cli.common import CommandError, describe_collect, runtime
from nubo.config import Config
from nubo.runtime import blob_reason, open_database, prepare_data_folder
from nubo.store.blobs import BlobStoreError
from nubo.store.database import describe_error
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
    prepare_data_folder(config)
    db = open_database(config)
    try:
        before, after = await upgrade(db)
    except (SQLAlchemyError, OSError) as exc:
        reason = describe_error(exc, db.url)
        raise CommandError(f"cannot upgrade the store: {reason}") from None
    finally:
        await db.close()

    if before == after:
        print(f"schema already at revision {after}")
    else:
        print(f"schema upgraded from {before or 'empty'} to revision {after}")
    return 0


async def _gc(_args: argparse.Namespace, config: Config) -> int:
    async with runtime(config) as rt:
        try:
            report = await rt.blobs.collect()
        except BlobStoreError as exc:
            where = f" at {config.s3_endpoint}" if config.s3_endpoint else ""
            raise CommandError(
                f"cannot collect blobs: {blob_reason(exc)} (is the blob store"
                f"{where} reachable?)"
            ) from None
    print(describe_collect(report))
    return 0
