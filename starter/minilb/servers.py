"""The simulated servers: ``minilb server KIND --port P [--host H] [--unit SECONDS]``.

A server accepts any number of connections but works on one request at a time, in the order the
requests arrived (a FIFO queue): a request of cost ``c`` takes ``c * unit`` seconds after the
previous one is done, then the server echoes its 2 bytes and closes the connection.

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

READ_TIMEOUT = 10.0  # seconds a client may take to send its 2 bytes


@dataclass
class _Job:
    sock: socket.socket
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
        self.arriving: dict[socket.socket, tuple[bytes, float]] = {}  # data so far, deadline
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
        wake_times = [deadline for _, deadline in self.arriving.values()]
        if self.queue:
            wake_times.append(self.queue[0].done_at)
        timeout = max(min(wake_times) - time.monotonic(), 0.0) if wake_times else None
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept_all()
            else:
                self._read(key.fileobj)
        now = time.monotonic()
        while self.queue and self.queue[0].done_at <= now:
            job = self.queue.popleft()
            close_with(job.sock, job.reply)
        for sock, (_, deadline) in list(self.arriving.items()):
            if deadline <= now:
                reason = f"timed out: no complete request within {self.read_timeout:g} s"
                self._drop(sock, error_reply(reason))

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
            self.arriving[sock] = (b"", time.monotonic() + self.read_timeout)
            self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        data, deadline = self.arriving[sock]
        try:
            chunk = sock.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the peer: nobody left to answer
            self._drop(sock)
            return
        data += chunk
        if chunk and len(data) < REQUEST_SIZE:
            self.arriving[sock] = (data, deadline)  # more is on its way
        elif not data:
            self._drop(sock)  # connected and left without a word (a health check)
        elif len(data) < REQUEST_SIZE:
            self._drop(sock, error_reply(f"short request {data!r}: a request is 2 bytes"))
        elif len(data) > REQUEST_SIZE:
            self._drop(sock, error_reply(f"extra bytes after the request: {data[:16]!r}"))
        else:
            try:
                request = decode_request(data)
            except ProtocolError as error:
                self._drop(sock, error_reply(str(error)))
                return
            self.selector.unregister(sock)
            del self.arriving[sock]
            start = max(time.monotonic(), self.busy_until)
            self.busy_until = start + service_time(self.kind, request) * self.unit
            self.queue.append(_Job(sock, data, self.busy_until))

    def _drop(self, sock: socket.socket, reply: bytes = b"") -> None:
        self.selector.unregister(sock)
        del self.arriving[sock]
        close_with(sock, reply)


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
