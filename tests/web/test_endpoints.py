"""The ports autoconfiguration names come from the bound sockets."""

from __future__ import annotations

import socket

from nubo.config import load
from nubo.web.endpoints import ClientEndpoints


def test_bound_sockets_give_their_ports_and_settings_fill_the_rest() -> None:
    config = load(environ={}).replace(
        hostname="mail.example.net", imap_port=0, imaps_port=3993
    )
    with socket.socket() as imap, socket.socket() as submission:
        imap.bind(("127.0.0.1", 0))
        submission.bind(("127.0.0.1", 0))
        sockets = {"imap": imap, "submission": submission}

        endpoints = ClientEndpoints.from_sockets(config, sockets)

        assert endpoints == ClientEndpoints(
            hostname="mail.example.net",
            imap=imap.getsockname()[1],
            imaps=3993,
            submission=submission.getsockname()[1],
            submissions=config.submissions_port,
        )
    assert endpoints.imap != 0


def test_without_sockets_the_settings_are_named() -> None:
    config = load(environ={})

    endpoints = ClientEndpoints.from_config(config)

    assert (endpoints.imap, endpoints.imaps) == (2143, 2993)
    assert (endpoints.submission, endpoints.submissions) == (2587, 2465)
    assert endpoints.hostname == "localhost"
