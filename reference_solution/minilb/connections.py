"""How a decided request reaches its server: the balancer's connection models.

The balancer (``minilb.balancer``) decides; a connection model delivers. Both models fork, both
leave every decision in the parent, and both answer every client with its own reply. They
differ in who owns the connection to a server:

- ``PerRequestConnections`` (the default, lesson 4's design): each request gets its own
  backend connection. The parent connects and sends the 2 bytes (so requests reach each server
  in exactly the order the parent decided them), then ``network.spawn_relay_child`` forks the
  child that owns that connection, waits for the echo, relays it and exits. The children of
  a round of the balancer's loop are forked once all its requests are sent.
- ``PersistentConnections`` (``--persistent``, in ``minilb.persistent``): one connection per
  server, opened at start and kept, as the original course's servers require.

A model implements the hooks below; ``Balancer`` calls them and nothing else.
"""

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minilb import network
from minilb.costs import Request, check_kind, server_names
from minilb.network import EXIT_BACKEND_FAILED
from minilb.protocol import encode_request, parse_address

if TYPE_CHECKING:
    from minilb.balancer import Balancer

CONNECT_TIMEOUT = 1.0
HEALTH_CHECK_EVERY = 1.0  # seconds between re-checks of down servers


@dataclass
class Backend:
    name: str
    kind: str
    address: tuple[str, int]
    up: bool = True


@dataclass
class Flight:
    """A request the parent has placed on ``server``, until its client has an answer."""

    client: socket.socket
    request: Request
    request_id: int
    server: int
    retried: bool
    log_prefix: bytes  # its access-log line so far (``AccessLog.encode``)
    reply_timeout: float  # seconds to wait for the echo


class ConnectionModel:
    """The hooks a connection model overrides (each default does nothing)."""

    def __init__(self, balancer: "Balancer") -> None:
        self.balancer = balancer

    def check_at_start(self) -> None:
        """Called once when the balancer is built."""

    def connect_all(self) -> None:
        """Called once in the serving process, before the first client is accepted."""

    def send(self, flight: Flight) -> None:
        """Send ``flight`` to its server and hand it to whoever answers it; raise ``OSError``
        if the server cannot take it (the balancer marks it down and may try another)."""
        raise NotImplementedError

    def start_relays(self) -> None:
        """Called once per round of the event loop, after the round's requests were sent."""

    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return 0

    def child_exited(self, pid: int, exit_code: int) -> None:
        """A child of the balancer has been reaped."""

    def tick(self) -> None:
        """Called on every round of the event loop (health checks, reconnects)."""

    def close(self) -> None:
        """Called once the balancer has stopped and nothing is in flight."""


class PerRequestConnections(ConnectionModel):
    """One backend connection per request, owned by the request's forked child."""

    def __init__(self, balancer: "Balancer") -> None:
        super().__init__(balancer)
        self.children: dict[int, Flight] = {}  # pid -> the request its relay child answers
        self.sent: list[tuple[Flight, socket.socket, Callable[[bytes], None]]] = []  # no child yet
        self.next_health_check = 0.0

    def check_at_start(self) -> None:
        for server, backend in enumerate(self.balancer.backends):
            if not reachable(backend.address):
                self.balancer.mark_down(server)

    def send(self, flight: Flight) -> None:
        backend = connect(self.balancer.backends[flight.server].address)
        try:
            backend.sendall(encode_request(flight.request))
        except OSError:
            backend.close()
            raise
        # What the child needs, bound to plain names: the child touches as little as it can.
        expected_echo, prefix = encode_request(flight.request), flight.log_prefix
        log, clock = self.balancer.log, self.balancer.clock

        def on_reply(reply: bytes) -> None:  # runs in the child, before the client's reply
            if reply != expected_echo:
                raise ConnectionError(f"backend replied {reply!r}")  # a broken server
            log.served(prefix, clock())  # logged first: once replied, the log line is complete

        self.sent.append((flight, backend, on_reply))

    def start_relays(self) -> None:
        # Why the children of a round are forked here, back to back, and not one by one as each
        # request is sent: a fork makes every page of the parent copy-on-write again, so the
        # parent's next write to any page is a fault (a page copy, while the child lives).
        # Deciding all of a round's requests first, then forking, pays for the pages that
        # deciding writes once per round instead of once per request.
        sent, self.sent = self.sent, []
        for flight, backend, on_reply in sent:
            try:
                pid = network.spawn_relay_child(
                    flight.client, backend, flight.reply_timeout, on_reply
                )
            except OSError as error:  # no fork (too many processes, no memory): not the server
                backend.close()
                self.balancer.fail(flight, f"cannot fork a relay child: {error.strerror}")
                continue
            self.children[pid] = flight

    def in_flight(self) -> int:
        return len(self.children) + len(self.sent)

    def child_exited(self, pid: int, exit_code: int) -> None:
        flight = self.children.pop(pid, None)
        if flight is None:
            return
        if exit_code == 0:
            flight.client.close()  # the child has answered it
        elif exit_code != EXIT_BACKEND_FAILED:  # the relay code failed, not the server
            self.balancer.fail(flight, f"the relay child failed (exit code {exit_code})")
        else:
            self.balancer.mark_down(flight.server)
            self.balancer.retry_or_fail(flight)

    def tick(self) -> None:
        if time.monotonic() < self.next_health_check:
            return
        self.next_health_check = time.monotonic() + HEALTH_CHECK_EVERY
        for server, backend in enumerate(self.balancer.backends):
            if not backend.up and reachable(backend.address, timeout=0.2):
                self.balancer.mark_up(server)


def parse_backends(specs: Sequence[str]) -> list[Backend]:
    """``["VP@127.0.0.1:9001", "M@127.0.0.1:9002"]`` -> backends named ``vp1``, ``m1``..."""
    kinds, addresses = [], []
    for spec in specs:
        kind, sep, address = spec.partition("@")
        if not sep:
            raise ValueError(f"bad server {spec!r}: expected KIND@HOST:PORT (VP@127.0.0.1:9001)")
        kinds.append(check_kind(kind))
        addresses.append(_resolve(parse_address(address)))
    if not kinds:
        raise ValueError("the balancer needs at least one server")
    return [Backend(*b) for b in zip(server_names(kinds), kinds, addresses, strict=True)]


def _resolve(address: tuple[str, int]) -> tuple[str, int]:
    """The numeric address of ``(host, port)``, looked up once at start."""
    try:
        info = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ValueError(f"cannot resolve server host {address[0]!r}: {error}") from None
    return info[0][4][0], address[1]


def connect(address: tuple[str, int], timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connection to ``address``; plain ``connect`` rather than ``create_connection``, which
    looks the host up again for every request (a measurable share of the balancer's CPU)."""
    backend = socket.socket(address_family(address), socket.SOCK_STREAM)
    backend.settimeout(timeout)
    try:
        backend.connect(address)
    except OSError:
        backend.close()
        raise
    return backend


def address_family(address: tuple[str, int]) -> int:
    """``AF_INET6`` or ``AF_INET``, for a numeric address (``parse_backends`` resolved it)."""
    return socket.AF_INET6 if ":" in address[0] else socket.AF_INET


def reachable(address: tuple[str, int], timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether a connection to ``address`` opens (it is closed at once: a health probe)."""
    try:
        connect(address, timeout).close()
    except OSError:
        return False
    return True


def fmt(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def say(message: str) -> None:
    """Tell the operator (standard error, one line)."""
    print(f"minilb balancer: {message}", file=sys.stderr, flush=True)


def live_as_a_long_lived_child(serve: Callable[[], None]) -> None:
    """Run ``serve`` as a child that lives as long as the balancer (the persistent model's
    channels, the prefork model's workers): Ctrl-C is the parent's to handle, SIGTERM ends it,
    and it leaves with ``os._exit`` (0 once ``serve`` returns), never returning into the
    parent's code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent lets us finish
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code = 1
    try:
        serve()
        code = 0
    finally:
        sys.stdout.flush()
        os._exit(code)
