"""The simulated servers: ``minilb server KIND --port P [--host H] [--unit SECONDS]``.

A server works on one request at a time, in the order the requests arrived (one FIFO queue over
all requests of all connections): a request of cost ``c`` takes ``c * unit`` seconds after the
previous one is done, then the server echoes its 2 bytes on the connection it came from.

A connection may carry any number of requests, one after another or all at once, and gets the
echoes in the same order. The server never closes a connection first: it closes once the peer
has closed its side and every echo owed on it has been sent. So both connection models work:
one connection per request (send 2 bytes, read the echo, close) and the original course's one
long-lived connection per server (``minilb balancer --persistent``, the course's own balancers).

It is a single-threaded event loop (``selectors``): reading requests, the queue and the replies
all happen in one loop, so a silent client or one that vanishes can never stall the others.
"""

import argparse
import selectors
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass

from minilb.costs import SERVER_KINDS, check_kind
from minilb.protocol import (
    REQUEST_SIZE,
    ProtocolError,
    close_with,
    decode_request,
    error_reply,
    open_listener,
)
from minilb.timeline import service_time

READ_TIMEOUT = 10.0  # seconds a client may take to send a whole request (2 bytes)


@dataclass
class _Connection:
    sock: socket.socket
    data: bytes = b""  # bytes of a request not complete yet
    deadline: float | None = None  # while a request is incomplete (or none has come yet)
    owed: int = 0  # echoes queued for this connection, not sent yet
    last_words: bytes | None = None  # once set: read no more; send it after the echoes, close


@dataclass
class _Job:
    connection: _Connection
    reply: bytes
    done_at: float  # monotonic seconds


class FifoServer:
    """One simulated server of ``kind`` (``VP`` or ``M``) serving on ``listener``."""

    def __init__(
        self, listener: socket.socket, kind: str, unit: float, read_timeout: float = READ_TIMEOUT
    ) -> None:
        self.kind = check_kind(kind)
        self.unit = unit
        self.read_timeout = read_timeout
        self.listener = listener
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.connections: dict[socket.socket, _Connection] = {}
        self.queue: deque[_Job] = deque()
        # When the last queued job is due on the server's ideal clock. Jobs are chained on these
        # ideal times, not on when the loop got round to replying, so small delays in the loop
        # never add up over a long queue.
        self.busy_until = 0.0

    def serve_forever(self) -> None:
        while True:
            self.serve_once()

    def serve_once(self) -> None:
        """Wait for the next event (a connection, some bytes, a job done), then handle it."""
        wake_times = [c.deadline for c in self.connections.values() if c.deadline is not None]
        if self.queue:
            wake_times.append(self.queue[0].done_at)
        timeout = max(min(wake_times) - time.monotonic(), 0.0) if wake_times else None
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept_all()
            else:
                self._read(self.connections[key.fileobj])
        now = time.monotonic()
        while self.queue and self.queue[0].done_at <= now:
            job = self.queue.popleft()
            job.connection.owed -= 1
            self._send(job.connection, job.reply)
        for connection in list(self.connections.values()):
            if connection.deadline is not None and connection.deadline <= now:
                reason = f"timed out: no complete request within {self.read_timeout:g} s"
                self._finish(connection, error_reply(reason))

    def _accept_all(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: say so, keep serving
                print(f"minilb server: accept failed: {error}", file=sys.stderr)
                return
            sock.setblocking(False)
            deadline = time.monotonic() + self.read_timeout
            self.connections[sock] = _Connection(sock, deadline=deadline)
            self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, connection: _Connection) -> None:
        try:
            chunk = connection.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the peer: nobody left to answer
            self._close(connection)
            return
        if not chunk:  # the peer has closed its side
            if connection.data:
                reason = f"short request {connection.data!r}: a request is 2 bytes"
                self._finish(connection, error_reply(reason))
            else:
                self._finish(connection, b"")  # a health check, or a client that is done
            return
        data = connection.data + chunk
        whole = len(data) - len(data) % REQUEST_SIZE
        for at in range(0, whole, REQUEST_SIZE):
            try:
                request = decode_request(data[at : at + REQUEST_SIZE])
            except ProtocolError as error:
                self._finish(connection, error_reply(str(error)))
                return
            start = max(time.monotonic(), self.busy_until)
            self.busy_until = start + service_time(self.kind, request) * self.unit
            self.queue.append(_Job(connection, data[at : at + REQUEST_SIZE], self.busy_until))
            connection.owed += 1
        connection.data = data[whole:]
        # An idle connection may wait for ever between requests; half a request may not.
        connection.deadline = time.monotonic() + self.read_timeout if connection.data else None

    def _finish(self, connection: _Connection, last_words: bytes) -> None:
        """Read no more from ``connection``; once its echoes are out, send ``last_words`` (an
        error line, or nothing) and close it."""
        if connection.last_words is None:
            self.selector.unregister(connection.sock)
        connection.last_words, connection.deadline, connection.data = last_words, None, b""
        self._send(connection, b"")

    def _send(self, connection: _Connection, reply: bytes) -> None:
        if connection.sock.fileno() == -1:
            return  # the peer vanished; its queued work is still done, in order
        try:
            connection.sock.sendall(reply)  # 2 bytes: they fit in the socket's buffer
        except OSError:
            self._close(connection)
            return
        if connection.owed == 0 and connection.last_words is not None:
            del self.connections[connection.sock]
            close_with(connection.sock, connection.last_words)

    def _close(self, connection: _Connection) -> None:
        if connection.last_words is None:
            self.selector.unregister(connection.sock)
        self.connections.pop(connection.sock, None)
        connection.sock.close()


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "server", help="run one simulated server (FIFO queue, sleeps processing_time * unit)"
    )
    parser.add_argument("kind", choices=SERVER_KINDS, help="server kind")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind (0: any free port)")
    parser.add_argument("--unit", type=float, default=1.0, help="seconds per time unit (default 1)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.unit < 0:
        raise ValueError(f"--unit must be at least 0, got {args.unit}")
    listener = open_listener(args.host, args.port)
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    FifoServer(listener, args.kind, args.unit).serve_forever()
    return 0
