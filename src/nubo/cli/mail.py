"""``nubo domain dns`` and the mail commands (``nubo queue``).

``nubo domain dns DOMAIN`` prints the DNS records a hosted domain needs,
one per line in zone-file form, ready to paste into the domain's zone.
"""

from __future__ import annotations

import argparse
from typing import Any

from nubo.cli.common import CommandError
from nubo.config import Config


def register(commands: Any) -> None:
    """Top-level mail commands (``nubo queue ...``)."""


def register_domain(actions: Any) -> None:
    """Actions added to the ``nubo domain`` group built in cli/accounts.py."""
    parser: argparse.ArgumentParser = actions.add_parser(
        "dns", help="print the DNS records to publish for a domain"
    )
    parser.add_argument("name", help="a hosted domain")
    parser.set_defaults(handler=_domain_dns)


async def _domain_dns(args: argparse.Namespace, config: Config) -> int:
    raise CommandError("nubo domain dns: not built yet")
