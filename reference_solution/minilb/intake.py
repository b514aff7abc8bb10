"""The balancer's front door: accept clients and read each one's request.

Every client has its own deadline for its 2 bytes, kept here, so a silent or dripping client
blocks nobody: the balancer's one event loop waits for whichever comes first, bytes from any
client or the nearest deadline. A complete request goes to ``on_request(client, request)``;
anything else (bad bytes, too few, too many, too late) to ``on_bad(client, reason, data)``.
"""

import selectors
import socket
import sys
import time
from collections.abc import Callable

from minilb.costs import Request
from minilb.protocol import REQUEST_SIZE, ProtocolError, decode_request

ACCEPT_BATCH = 128  # clients accepted in one go, before the loop serves the others again


class Intake:
    """Clients accepted on ``listener`` whose requests are not complete yet."""

    def __init__(
        self,
        listener: socket.socket,
        selector: selectors.BaseSelector,
        read_timeout: float,
        on_request: Callable[[socket.socket, Request], None],
        on_bad: Callable[[socket.socket, str, bytes], None],
    ) -> None:
        self.listener = listener
        self.selector = selector
        self.read_timeout = read_timeout
        self.on_request = on_request
        self.on_bad = on_bad
        self.arriving: dict[socket.socket, tuple[bytes, float]] = {}  # data so far, deadline
        self.accepting = False
        listener.setblocking(False)

    def accept_while(self, wanted: bool) -> None:
        """Accept new clients only while ``wanted``; meanwhile they wait in the kernel's
        backlog, not in the balancer's memory."""
        if wanted and not self.accepting:
            self.selector.register(self.listener, selectors.EVENT_READ, self._accept_all)
        elif self.accepting and not wanted:
            self.selector.unregister(self.listener)
        self.accepting = wanted

    def seconds_to_next_deadline(self, default: float = 1.0) -> float:
        nearest = min((deadline for _, deadline in self.arriving.values()), default=None)
        return default if nearest is None else max(nearest - time.monotonic(), 0.0)

    def _accept_all(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: say so, keep serving
                print(f"minilb balancer: accept failed: {error}", file=sys.stderr, flush=True)
                return
            client.setblocking(False)
            # A client sends its 2 bytes right after connecting, so by the time the balancer
            # accepts they are usually there: read them now. That saves a round of the event
            # loop, and registering the client with the selector only to unregister it.
            self._take(client, b"", time.monotonic() + self.read_timeout)

    def _read(self, client: socket.socket) -> None:
        """The selector's handler: more bytes (or the end) from a client still arriving."""
        data, deadline = self.arriving[client]
        self._take(client, data, deadline)

    def _take(self, client: socket.socket, data: bytes, deadline: float) -> None:
        """Read what ``client`` has sent after ``data``: a whole request goes on, a part waits
        (registered with the selector until ``deadline``), anything else is refused."""
        try:
            chunk = client.recv(64)
        except (BlockingIOError, InterruptedError):
            chunk = None  # nothing yet
        except OSError:
            chunk = b""
        if chunk is None or (chunk and len(data + chunk) < REQUEST_SIZE):
            self._wait_for_more(client, data + (chunk or b""), deadline)
            return
        data += chunk
        if client in self.arriving:
            self._forget(client)
        if not data:
            client.close()  # connected and left without a word
            return
        try:
            if len(data) < REQUEST_SIZE:
                raise ProtocolError(f"short request {data!r}: a request is 2 bytes")
            if len(data) > REQUEST_SIZE:
                raise ProtocolError(f"extra bytes after the request: {data[:16]!r}")
            request = decode_request(data)
        except ProtocolError as error:
            self.on_bad(client, str(error), data)
            return
        self.on_request(client, request)

    def _wait_for_more(self, client: socket.socket, data: bytes, deadline: float) -> None:
        """A client whose request is not complete yet (a slow or dripping one): wait for the
        rest without blocking anybody else."""
        if client not in self.arriving:
            self.selector.register(client, selectors.EVENT_READ, self._read)
        self.arriving[client] = (data, deadline)

    def expire_slow_clients(self) -> None:
        now = time.monotonic()
        for client, (data, deadline) in list(self.arriving.items()):
            if deadline <= now:
                self._forget(client)
                reason = f"timed out: no complete request within {self.read_timeout:g} s"
                self.on_bad(client, reason, data)

    def _forget(self, client: socket.socket) -> None:
        self.selector.unregister(client)
        del self.arriving[client]

    def close_inherited(self) -> None:
        """In a long-lived child: close its copies of the listener and of waiting clients."""
        self.listener.close()
        for client in self.arriving:
            client.close()
