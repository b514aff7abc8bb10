"""``--persistent``: one connection per server, opened at start and kept.

The original course's servers accept exactly one connection (the balancer's), serve the
requests on it first in, first out, and die when it closes. So the balancer connects once to
each server and forks one long-lived child per server, a ``ServerChannel``, that owns that
connection::

    parent (decides)  --client socket, over a UNIX socket-->  ServerChannel for vp1  --> vp1
                      <--"." per request answered, "D": down--           FIFO of clients

For each request, the parent passes the client's socket itself to the chosen server's channel
(``socket.send_fds``: the kernel gives the child its own descriptor of the same connection),
in the order it decided. The channel sends the 2 bytes on its server connection and appends
the client to its FIFO; the server echoes in the same order, so the k-th echo read on the
connection belongs to the k-th client in the FIFO. One process reads each connection: no reply
can reach the wrong client (the seed's bug, with children sharing one socket).

Health is the connection itself: there is no connect-and-close probe (it would use up a course
server's only connection). When the connection closes, breaks, or an echo is late or wrong, the
channel answers every waiting client ``ERR`` and tells the parent, which marks the server down,
lets that channel go and tries to reconnect with a growing backoff.
"""

import os
import selectors
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from minilb.access_log import AccessLog
from minilb.connections import (
    ConnectionModel,
    Flight,
    connect,
    fmt,
    live_as_a_long_lived_child,
    say,
)
from minilb.protocol import REQUEST_SIZE, close_with, encode_request, error_reply

if TYPE_CHECKING:
    from minilb.balancer import Balancer

WAIT_FOR_SERVER_EVERY = 0.1  # seconds between connection attempts at start
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 8.0  # seconds between reconnects to a server that went down
HEADER = struct.Struct("!2sd")  # the request's 2 bytes, seconds to wait for its echo
RETELL_EVERY = 0.005  # seconds between tries to tell a parent that is behind
SEND_TIMEOUT = 5.0  # seconds the parent waits for a channel that is behind
ANSWERED, DOWN = b".", b"D"  # what a channel tells the parent (one message may hold many)


@dataclass
class _Channel:
    """The parent's end of one server's channel."""

    sock: socket.socket
    pid: int
    in_flight: int = 0


@dataclass
class _Reconnect:
    at: float = 0.0
    backoff: float = FIRST_BACKOFF


class PersistentConnections(ConnectionModel):
    """One kept connection per server, each owned by a long-lived ``ServerChannel`` child."""

    def __init__(self, balancer: "Balancer") -> None:
        super().__init__(balancer)
        self.channels: dict[int, _Channel] = {}  # server index -> its live channel
        self.leaving: set[int] = set()  # pids of channels let go, finishing their last clients
        self.reconnects: dict[int, _Reconnect] = {}  # server index -> when to try again

    def connect_all(self) -> None:
        for server, backend in enumerate(self.balancer.backends):
            waited = False
            while not self.balancer.stopping:
                try:
                    self._open_channel(server, connect(backend.address))
                    break
                except OSError as error:
                    if not waited:
                        say(f"waiting for server {backend.name} at {fmt(backend.address)} "
                             f"to accept a connection ({error.strerror or error})")
                        waited = True
                    time.sleep(WAIT_FOR_SERVER_EVERY)
            if waited and server in self.channels:
                say(f"connected to server {backend.name}")

    def _open_channel(self, server: int, backend: socket.socket) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            for channel in self.channels.values():  # or those channels never see our EOF
                channel.sock.close()
            signal.set_wakeup_fd(-1)
            self.balancer.close_inherited()
            name = self.balancer.backends[server].name
            ServerChannel(theirs, backend, name, self.balancer.clock, self.balancer.log).run()
        theirs.close()
        backend.close()  # the channel owns it now
        ours.setblocking(False)
        self.channels[server] = _Channel(ours, pid)
        self.balancer.selector.register(
            ours, selectors.EVENT_READ, partial(self._heard_from, server)
        )

    def send(self, flight: Flight) -> None:
        channel = self.channels.get(flight.server)
        if channel is None:
            raise ConnectionError("no connection to this server")
        message = HEADER.pack(encode_request(flight.request), flight.reply_timeout)
        message += flight.log_prefix
        try:
            socket.send_fds(channel.sock, [message], [flight.client.fileno()])
        except BlockingIOError:  # its queue is full (a few hundred): wait, briefly
            channel.sock.settimeout(SEND_TIMEOUT)
            try:
                socket.send_fds(channel.sock, [message], [flight.client.fileno()])
            finally:
                channel.sock.setblocking(False)
        flight.client.close()  # the channel has its own descriptor of the client now
        channel.in_flight += 1

    def in_flight(self) -> int:
        return sum(channel.in_flight for channel in self.channels.values())

    def _heard_from(self, server: int, sock: socket.socket) -> None:
        channel = self.channels[server]
        while True:  # everything the channel has said so far, without waiting for more
            try:
                message = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message = b""
            if not message or DOWN in message:  # down, or gone: it answers its own clients
                self._let_go(server)
                return
            channel.in_flight -= len(message)  # one ANSWERED per request answered

    def _let_go(self, server: int) -> None:
        channel = self.channels.pop(server)
        self.balancer.selector.unregister(channel.sock)
        channel.sock.close()  # the channel sees the end, answers what is left, exits
        self.leaving.add(channel.pid)
        self.balancer.mark_down(server)
        self.reconnects[server] = _Reconnect(time.monotonic() + FIRST_BACKOFF)

    def child_exited(self, pid: int, exit_code: int) -> None:
        self.leaving.discard(pid)
        for server, channel in list(self.channels.items()):
            if channel.pid == pid:  # died without a word (killed?): the same as down
                self._let_go(server)
                self.leaving.discard(pid)

    def tick(self) -> None:
        now = time.monotonic()
        for server, reconnect in list(self.reconnects.items()):
            if now < reconnect.at:
                continue
            try:
                backend = connect(self.balancer.backends[server].address, timeout=0.2)
            except OSError:
                reconnect.backoff = min(2 * reconnect.backoff, MAX_BACKOFF)
                reconnect.at = now + reconnect.backoff
                continue
            del self.reconnects[server]
            self._open_channel(server, backend)
            self.balancer.mark_up(server)

    def close(self) -> None:
        for server in list(self.channels):
            channel = self.channels.pop(server)
            self.balancer.selector.unregister(channel.sock)
            channel.sock.close()
            self.leaving.add(channel.pid)
        for pid in self.leaving:  # each has nothing left to answer: it exits at once
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.leaving.clear()


@dataclass
class _Waiting:
    client: socket.socket
    request: bytes
    deadline: float  # monotonic seconds
    log_prefix: bytes


@dataclass
class ServerChannel:
    """Runs in the long-lived child of one server: owns its connection, relays each echo to
    the client whose request it answers (the k-th echo to the k-th client), never returns."""

    parent: socket.socket  # the UNIX socket: clients in, "." and "D" out
    backend: socket.socket | None
    name: str
    clock: Callable[[], float]
    log: AccessLog
    waiting: deque[_Waiting] = field(default_factory=deque)
    echoes: bytes = b""  # part of an echo read so far
    parent_open: bool = True
    untold: bytes = b""  # news for the parent that did not fit in its queue yet

    def run(self) -> None:
        live_as_a_long_lived_child(self._serve)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.parent, selectors.EVENT_READ, self._from_parent)
        assert self.backend is not None
        self.backend.setblocking(False)
        selector.register(self.backend, selectors.EVENT_READ, self._from_backend)
        while self.parent_open or self.waiting:
            timeout = None
            if self.waiting:
                timeout = max(self.waiting[0].deadline - time.monotonic(), 0.0)
            if self.untold:  # the parent is behind: try again soon
                timeout = min(timeout or RETELL_EVERY, RETELL_EVERY)
            for key, _ in selector.select(timeout):
                key.data(selector)
            if self.waiting and self.waiting[0].deadline <= time.monotonic():
                self._broken(selector, "no echo in time")
            self._tell_parent()
        if self.backend is not None:
            close_with(self.backend)

    def _from_parent(self, selector: selectors.BaseSelector) -> None:
        message, fds, _, _ = socket.recv_fds(self.parent, 4096, 1)
        if not message:  # the parent let us go, or stopped
            self.parent_open = False
            selector.unregister(self.parent)
            return
        client = socket.socket(fileno=fds[0])
        client.settimeout(1.0)
        request, reply_timeout = HEADER.unpack_from(message)
        prefix = message[HEADER.size :]
        waiting = _Waiting(client, request, time.monotonic() + reply_timeout, prefix)
        if self.backend is None:
            self._answer_error(waiting, f"backend {self.name} down")
            return
        self.waiting.append(waiting)
        try:
            self.backend.sendall(request)  # 2 bytes: they fit in the socket's buffer
        except OSError as error:
            self._broken(selector, f"send failed: {error}")

    def _from_backend(self, selector: selectors.BaseSelector) -> None:
        assert self.backend is not None
        try:
            data = self.backend.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._broken(selector, str(error))
            return
        if not data:
            self._broken(selector, "the server closed the connection")
            return
        self.echoes += data
        while len(self.echoes) >= REQUEST_SIZE:
            echo, self.echoes = self.echoes[:REQUEST_SIZE], self.echoes[REQUEST_SIZE:]
            if not self.waiting or echo != self.waiting[0].request:
                self._broken(selector, f"the server sent {echo!r} out of turn")
                return
            waiting = self.waiting.popleft()
            self.log.served(waiting.log_prefix, self.clock())  # before the reply: complete
            close_with(waiting.client, echo)
            self._tell_parent(ANSWERED)

    def _broken(self, selector: selectors.BaseSelector, why: str) -> None:
        """The connection is no good any more: every waiting client gets ``ERR``."""
        if self.backend is not None:
            selector.unregister(self.backend)
            self.backend.close()
            self.backend = None
            self._tell_parent(DOWN)
        while self.waiting:
            self._answer_error(self.waiting.popleft(), f"backend {self.name} down: {why}")

    def _answer_error(self, waiting: _Waiting, reason: str) -> None:
        self.log.failed(waiting.log_prefix, reason)
        close_with(waiting.client, error_reply(reason))
        self._tell_parent(ANSWERED)

    def _tell_parent(self, news: bytes = b"") -> None:
        """Send the parent what it has not heard yet, never waiting: a UNIX socket queues a
        bounded number of messages, and a channel that waited for a parent that is waiting for the
        channel (to take the next client) would wait for ever."""
        self.untold += news
        if not self.parent_open or not self.untold:
            return
        try:
            self.parent.send(self.untold, socket.MSG_DONTWAIT)
            self.untold = b""
        except BlockingIOError:
            pass  # kept for the next round
        except OSError:
            self.untold = b""  # the parent let us go already
