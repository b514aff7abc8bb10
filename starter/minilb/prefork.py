"""``--prefork N``: N relay workers forked once at start, each handed sockets by the parent.

The default model forks one child per request, and a fork is not cheap: the kernel copies the
parent's page tables, and every page the child then writes (Python writes to every object it
touches: reference counts) is copied for it (*copy-on-write*), page by page, each copy a fault.
On a small machine that is about a millisecond per request, whatever the request. Apache's
prefork and nginx's workers pay it once instead: forked at start, the workers live for ever.

But a worker forked at start cannot inherit connections opened later. So the parent passes
them: ``socket.send_fds`` over a UNIX socket gives the worker its own descriptor of the
client's connection and of the server's, like a ``dup`` across processes::

    parent (decides)  --client + backend sockets-->  worker 1 .. worker N   (event loops)
                      <--token, answered / failed--  each: echo -> its own client

The parent still decides, for the same reason as in every model: the greedy rule needs the
finish times, and only one process may own them (a worker's copy would go stale at once). It
connects to the chosen server and sends the 2 bytes itself (so each server gets its requests
in the order decided), then hands both sockets to the least busy worker. The worker waits for
the echo, checks it, writes the log line, replies and reports back. The parent keeps its copy
of the client until then: if the server failed, it retries elsewhere once, as ever.

A worker that dies is replaced at once; its requests in flight get ``ERR``. ``--prefork`` with
``--persistent`` is refused: that model already keeps one long-lived child per server.
"""

import errno
import gc
import os
import selectors
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from minilb.connections import (
    CONNECT_TIMEOUT,
    Flight,
    PerRequestConnections,
    address_family,
    live_as_a_long_lived_child,
)
from minilb.protocol import REQUEST_SIZE, close_with, encode_request

if TYPE_CHECKING:
    from minilb.access_log import AccessLog
    from minilb.balancer import Balancer

HANDOVER = struct.Struct("!Q2sdHH")  # token, request, seconds to wait for the echo, families
REPORT = struct.Struct("!QB")  # token, ANSWERED or FAILED
ANSWERED, FAILED = 0, 1
SEND_TIMEOUT = 5.0  # seconds the parent waits for a worker that is behind
RETELL_EVERY = 0.005  # seconds between tries to tell a parent that is behind
REPORTS_PER_MESSAGE = 4096 // REPORT.size  # what the parent reads at once
EXPIRY_CHECK_EVERY = 0.1  # seconds between looks for relays whose echo is late


@dataclass
class _Worker:
    """The parent's end of one worker."""

    sock: socket.socket
    pid: int
    flights: dict[int, Flight] = field(default_factory=dict)  # token -> request handed over


class PreforkConnections(PerRequestConnections):
    """One backend connection per request (opened by the parent), relayed by a pool of
    workers forked once. Health checks are the default model's (inherited)."""

    def __init__(self, balancer: "Balancer") -> None:
        super().__init__(balancer)
        self.size = balancer.prefork
        self.workers: dict[int, _Worker] = {}  # pid -> worker
        self.next_token = 0
        # Each handover names the sockets' families (reading ``socket.family`` costs more).
        self.client_family = int(balancer.listener.family)
        self.backend_families = [address_family(b.address) for b in balancer.backends]

    def connect_all(self) -> None:
        for _ in range(self.size):
            self._start_worker()

    def _start_worker(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._close_inherited()
            RelayWorker(theirs, self.balancer.log, self.balancer.clock).run()
        theirs.close()
        ours.setblocking(False)
        self.workers[pid] = worker = _Worker(ours, pid)
        self.balancer.selector.register(ours, selectors.EVENT_READ, partial(self._heard, worker))

    def _close_inherited(self) -> None:
        """In a new worker: close what belongs to the parent (clients in flight included, or
        they would never see the end of their connection)."""
        signal.set_wakeup_fd(-1)
        self.balancer.close_inherited()
        for worker in self.workers.values():
            worker.sock.close()
            for flight in worker.flights.values():
                flight.client.close()

    def send(self, flight: Flight) -> None:
        request = encode_request(flight.request)
        backend = _connect_and_send(
            self.balancer.backends[flight.server].address, self.backend_families[flight.server],
            request,
        )  # fmt: skip
        self.next_token += 1
        message = HANDOVER.pack(
            self.next_token, request, flight.reply_timeout,
            self.client_family, self.backend_families[flight.server],
        ) + flight.log_prefix  # fmt: skip
        fds = [flight.client.fileno(), backend.fileno()]
        if not self.workers:  # all gone at once (killed?): the replacement cannot wait
            self._start_worker()
        try:
            for worker in sorted(self.workers.values(), key=lambda w: len(w.flights)):
                try:
                    _hand_over(worker.sock, message, fds)
                    break
                except OSError:
                    continue  # it has just died (child_exited replaces it): the next one
            else:
                raise ConnectionError("no relay worker took the request")
        finally:
            backend.close()  # the worker has its own descriptor now (or the request failed)
        worker.flights[self.next_token] = flight

    def in_flight(self) -> int:
        return sum(len(worker.flights) for worker in self.workers.values())

    def _heard(self, worker: _Worker, sock: socket.socket) -> bool:
        """Act on one message of reports (a worker sends all of a round's reports in one);
        whether there was one. One read per call: the selector is level-triggered, so a message
        left unread calls this again, and no read is spent only to learn there is no more."""
        try:
            message = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            message = b""
        if not message:  # the worker is gone: child_exited deals with it once reaped
            self._forget(sock)
            return False
        for token, outcome in REPORT.iter_unpack(message):
            flight = worker.flights.pop(token)
            if outcome == ANSWERED:
                flight.client.close()  # the worker has answered it
            else:
                self.balancer.mark_down(flight.server)
                self.balancer.retry_or_fail(flight)
        return True

    def _heard_everything(self, worker: _Worker) -> None:
        """Every report a worker sent before it died (``_heard`` reads one message)."""
        while self._heard(worker, worker.sock):
            pass

    def child_exited(self, pid: int, exit_code: int) -> None:
        worker = self.workers.get(pid)
        if worker is None:
            return
        if not self.balancer.stopping:  # first: a retry below may need a worker (and the new
            self._start_worker()  # one must close its copies of the dead one's clients too)
        del self.workers[pid]
        self._heard_everything(worker)  # what it said before it died still counts
        self._forget(worker.sock)
        worker.sock.close()
        for flight in worker.flights.values():
            self.balancer.fail(flight, f"the relay worker failed (exit code {exit_code})")

    def _forget(self, sock: socket.socket) -> None:
        if sock in self.balancer.selector.get_map():
            self.balancer.selector.unregister(sock)

    def close(self) -> None:
        for worker in self.workers.values():  # nothing in flight: each exits on the end
            self._forget(worker.sock)
            worker.sock.close()
        for pid in self.workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.workers.clear()


def _connect_and_send(address: tuple[str, int], family: int, request: bytes) -> socket.socket:
    """A new connection to ``address``, non-blocking, on which ``request`` has been sent.

    Three syscalls where ``connect`` with a timeout then ``sendall`` take seven (a timeout makes
    Python poll before each call and ask for the connect's outcome). A non-blocking connect
    returns at once; on loopback the handshake is already done by then, so the 2 bytes go out
    at once too. Only a connection still under way (a server across a network) is waited for,
    as ``connect`` would; a refused one raises here as it would there (``OSError``).
    """
    backend = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        error = backend.connect_ex(address)
        if error not in (0, errno.EINPROGRESS):
            raise OSError(error, os.strerror(error))
        try:
            backend.send(request)  # 2 bytes: a new connection's send buffer takes them whole
        except BlockingIOError:  # still connecting
            backend.settimeout(CONNECT_TIMEOUT)
            backend.sendall(request)  # waits until the connection is open (or fails)
            backend.setblocking(False)
    except OSError:
        backend.close()
        raise
    return backend


def _hand_over(sock: socket.socket, message: bytes, fds: list[int]) -> None:
    try:
        socket.send_fds(sock, [message], fds)
    except BlockingIOError:  # the worker's queue is full: wait, briefly
        sock.settimeout(SEND_TIMEOUT)
        try:
            socket.send_fds(sock, [message], fds)
        finally:
            sock.setblocking(False)


@dataclass
class _Relay:
    client: socket.socket
    backend: socket.socket
    request: bytes
    deadline: float  # monotonic seconds
    log_prefix: bytes
    echo: bytes = b""
    waited_for: bool = False  # registered with the selector


@dataclass
class RelayWorker:
    """Runs in one worker: relays each handed-over server's echo to its client, never returns."""

    parent: socket.socket  # the UNIX socket: sockets in, reports out
    log: "AccessLog"
    clock: Callable[[], float]
    relays: dict[int, _Relay] = field(default_factory=dict)  # token -> relay
    untold: bytes = b""  # reports the parent has not had yet

    def run(self) -> None:
        gc.enable()  # a long life: its own garbage must go (the parent's stays frozen)
        live_as_a_long_lived_child(self._serve)

    def _serve(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.parent, selectors.EVENT_READ)
        parent_open, next_expiry_check = True, time.monotonic() + EXPIRY_CHECK_EVERY
        while parent_open or self.relays:
            # Deadlines are seconds away: a look a few times a second is enough, and the loop
            # does not walk every relay on every round (a cost per request at high concurrency).
            timeout = EXPIRY_CHECK_EVERY if self.relays else None
            if self.untold:
                timeout = RETELL_EVERY
            for key, _ in self.selector.select(timeout):
                if key.fileobj is self.parent:
                    parent_open = self._take_over()
                else:
                    self._from_backend(key.data)
            now = time.monotonic()
            if now >= next_expiry_check:
                next_expiry_check = now + EXPIRY_CHECK_EVERY
                for token in [t for t, relay in self.relays.items() if relay.deadline <= now]:
                    self._end(token, FAILED)  # no echo in time
            if self.untold:
                self._tell_parent()

    def _take_over(self) -> bool:
        message, fds, _, _ = socket.recv_fds(self.parent, 4096, 2)
        if not message:  # the parent stopped, or let us go
            self.selector.unregister(self.parent)
            return False
        token, request, reply_timeout, client_family, backend_family = HANDOVER.unpack_from(message)
        # Told the families, ``socket`` need not ask the kernel for each descriptor's kind (it
        # still checks each is a socket, a getsockname); told SOCK_NONBLOCK, it knows what the
        # parent set (both are non-blocking), without a syscall to set it again.
        kind = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        client = socket.socket(client_family, kind, 0, fds[0])
        backend = socket.socket(backend_family, kind, 0, fds[1])
        deadline = time.monotonic() + reply_timeout
        self.relays[token] = _Relay(client, backend, request, deadline, message[HANDOVER.size :])
        self._from_backend(token)  # the echo may be there already: no round of waiting
        if token in self.relays:
            self.selector.register(backend, selectors.EVENT_READ, token)
            self.relays[token].waited_for = True
        return True

    def _from_backend(self, token: int) -> None:
        relay = self.relays[token]
        try:
            data = relay.backend.recv(REQUEST_SIZE - len(relay.echo))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        relay.echo += data
        if not data or (len(relay.echo) == REQUEST_SIZE and relay.echo != relay.request):
            self._end(token, FAILED)  # closed early, reset, or a wrong echo: a broken server
        elif len(relay.echo) == REQUEST_SIZE:
            self.log.served(relay.log_prefix, self.clock())  # before the reply: complete
            # The client's descriptor shares the parent's non-blocking mode: 2 bytes always fit
            # in a new connection's send buffer, so no waiting (and no timeout) is needed.
            close_with(relay.client, relay.echo)
            self._end(token, ANSWERED)

    def _end(self, token: int, outcome: int) -> None:
        relay = self.relays.pop(token)
        if relay.waited_for:
            self.selector.unregister(relay.backend)
        relay.backend.close()
        relay.client.close()  # when FAILED, the parent's copy keeps the client connected
        self.untold += REPORT.pack(token, outcome)  # sent at the end of the round, together

    def _tell_parent(self) -> None:
        """Send the parent the reports it has not had yet, never waiting (a worker waiting for
        a parent that waits for the worker to take the next client would wait for ever)."""
        message = self.untold[: REPORT.size * REPORTS_PER_MESSAGE]
        try:
            self.parent.send(message, socket.MSG_DONTWAIT)
            self.untold = self.untold[len(message) :]
        except BlockingIOError:
            pass  # kept for the next round
        except OSError:
            self.untold = b""  # the parent is gone
