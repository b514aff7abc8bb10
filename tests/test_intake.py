"""The balancer's front door (``minilb.intake``), driven directly: one selector, real sockets."""

import fcntl
import selectors
import socket
import struct
import termios
import time

import pytest

from minilb.intake import Intake
from minilb.protocol import open_listener


class Front:
    """An ``Intake`` on a fresh listener, recording what it hands on."""

    def __init__(self, read_timeout: float = 5.0) -> None:
        self.listener = open_listener()
        self.address = self.listener.getsockname()[:2]
        self.selector = selectors.DefaultSelector()
        self.requests: list[tuple[str, int]] = []
        self.bad: list[str] = []
        self.intake = Intake(
            self.listener, self.selector, read_timeout,
            lambda client, request: (self.requests.append(tuple(request)), client.close()),
            lambda client, reason, data: (self.bad.append(reason), client.close()),
        )  # fmt: skip
        self.intake.accept_while(True)

    def waiting_clients(self) -> int:
        """Clients registered with the selector (the listener is not one)."""
        return sum(key.fileobj is not self.listener for key in self.selector.get_map().values())

    def one_round(self) -> None:
        """One round of the event loop: each ready socket's handler, once."""
        for key, _ in self.selector.select(10):
            key.data(key.fileobj)

    def serve_until(self, done, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "the intake never handed the request on"
            for key, _ in self.selector.select(0.05):
                key.data(key.fileobj)

    def close(self) -> None:
        self.selector.close()
        self.listener.close()


@pytest.fixture
def front():
    front = Front()
    yield front
    front.close()


def connected_with(address, data: bytes) -> socket.socket:
    """A client that has connected and whose ``data`` has reached the balancer's side."""
    client = socket.create_connection(address, timeout=5)
    if data:
        client.sendall(data)
        delivered(client)
    return client


def delivered(client: socket.socket) -> None:
    """Wait until the peer's kernel has every byte ``client`` sent (acknowledged: nothing is
    left in its send queue), whether or not the peer has accepted the connection yet."""
    deadline = time.monotonic() + 10
    while struct.unpack("i", fcntl.ioctl(client, termios.TIOCOUTQ, b"\0" * 4))[0]:
        assert time.monotonic() < deadline, "the bytes never reached the listener's side"
        time.sleep(0.001)


def test_a_request_that_came_with_its_connection_is_handed_on_at_accept(front):
    client = connected_with(front.address, b"V7")
    front.one_round()  # the listener is the only socket registered: this round accepts
    # Handed on by the accept itself: the client was never registered to be read later.
    assert front.requests == [("V", 7)] and front.waiting_clients() == 0
    assert front.intake.arriving == {}
    client.close()


def test_a_dripping_client_waits_registered_until_its_second_byte(front):
    client = connected_with(front.address, b"P")
    front.serve_until(lambda: front.intake.arriving)
    assert front.requests == [] and front.waiting_clients() == 1  # the half request waits
    client.sendall(b"3")
    delivered(client)
    front.serve_until(lambda: front.requests)
    assert front.requests == [("P", 3)] and front.waiting_clients() == 0
    assert front.intake.arriving == {}
    client.close()


def test_a_silent_client_waits_without_blocking_one_that_sends(front):
    silent = connected_with(front.address, b"")
    front.serve_until(lambda: front.intake.arriving)
    talker = connected_with(front.address, b"M2")
    front.serve_until(lambda: front.requests)
    assert front.requests == [("M", 2)] and list(front.intake.arriving) != []
    silent.close()
    talker.close()


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"V1x", "extra bytes after the request"), (b"Q1", "")],
)
def test_bad_bytes_that_came_with_the_connection_are_refused_at_once(front, data, reason):
    client = connected_with(front.address, data)
    front.one_round()  # the accept
    assert front.requests == [] and front.waiting_clients() == 0
    assert len(front.bad) == 1 and reason in front.bad[0]
    client.close()


def test_a_short_request_ended_by_the_client_is_refused(front):
    client = connected_with(front.address, b"V")
    client.shutdown(socket.SHUT_WR)  # one byte, then the end: it can never be complete
    front.serve_until(lambda: front.bad)
    assert "short request" in front.bad[0] and front.intake.arriving == {}
    client.close()


def test_a_client_too_slow_for_its_deadline_is_refused():
    front = Front(read_timeout=0.2)
    try:
        client = connected_with(front.address, b"V")
        front.serve_until(lambda: front.intake.arriving)
        time.sleep(0.3)
        front.intake.expire_slow_clients()
        assert "timed out" in front.bad[0] and front.waiting_clients() == 0
        client.close()
    finally:
        front.close()
