"""``nubo serve``'s HTTP listener against abusive clients, over raw sockets:
a huge request head, a head sent slowly, more connections than allowed
(review 2, defects 14 and 15)."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve import NuboProcess, cheap_env

# Generous: only that the server gives up, never how fast, is asserted.
CLOSED_WITHIN = 30.0


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[NuboProcess]:
    """A nubo giving a client 1 s to send a request head."""
    server = NuboProcess(cheap_env(tmp_path / "data", NUBO_HTTP_HEADER_TIMEOUT="1"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def healthy(server: NuboProcess) -> bool:
    answer = httpx.get(server.url("http") + "/healthz", timeout=10)
    return answer.status_code == 200


def connect(server: NuboProcess) -> socket.socket:
    return socket.create_connection(server.addresses["http"], timeout=10)


def read_until_closed(sock: socket.socket, within: float = CLOSED_WITHIN) -> bytes:
    """Everything the server sends until it closes; fails if it never does."""
    received = b""
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(deadline - time.monotonic()):
                break
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    pytest.fail(f"the server kept the connection open: {received[:200]!r}")


def test_a_huge_header_is_refused_and_the_connection_closed(
    nubo_server: NuboProcess,
) -> None:
    sock = connect(nubo_server)
    head = b"GET /healthz HTTP/1.1\r\nHost: nubo\r\nX-Big: " + b"a" * 1024 * 1024
    sent = 0
    with sock, selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        # Stop sending as soon as the server answers, so that its answer is
        # read before our unread bytes make its side reset the connection.
        while sent < len(head) and not selector.select(0):
            try:
                sent += sock.send(head[sent : sent + 4096])
            except OSError:
                break
        answer = read_until_closed(sock)

    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), answer[:100]
    assert healthy(nubo_server)


def test_an_unfinished_head_gets_400_and_a_normal_one_still_200(
    nubo_server: NuboProcess,
) -> None:
    with connect(nubo_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: nubo\r\n" + b"X: y\r\n" * 4000)
        answer = read_until_closed(sock)
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), answer[:100]
    assert healthy(nubo_server)


def test_a_head_sent_slowly_is_cut_off(limited: NuboProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: nubo\r\n")
        deadline = time.monotonic() + CLOSED_WITHIN
        closed = False
        # One header line every 0.2 s: each byte would reset an idle timer,
        # not the deadline for the whole head.
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                closed = sock.recv(1024) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed = True
        assert closed
    assert healthy(limited)


def test_a_silent_connection_is_closed(limited: NuboProcess) -> None:
    with connect(limited) as sock:
        assert read_until_closed(sock) == b""


def test_the_head_deadline_holds_for_the_next_request_too(
    limited: NuboProcess,
) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: nubo\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and then nothing more
        read_until_closed(sock)


def test_connections_past_the_limit_get_503(tmp_path: Path) -> None:
    server = NuboProcess(cheap_env(tmp_path / "data", NUBO_HTTP_MAX_CONNECTIONS="20"))
    server.start()
    try:
        held = [connect(server) for _ in range(20)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half a head
        with connect(server) as extra:
            answer = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        for sock in held:
            sock.close()

        # Room again once the server has seen them close.
        deadline = time.monotonic() + CLOSED_WITHIN
        while not healthy(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert healthy(server)
    finally:
        server.kill()
