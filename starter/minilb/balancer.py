"""The forking balancer: ``minilb balancer --port P --servers KIND@HOST:PORT ... [--unit U]
[--policy SPEC] [--student NOTEBOOK] [--persistent]``.

The parent process does everything that needs memory: it accepts connections, reads each
request (every client has its own deadline, so a silent or dripping client blocks nobody),
asks the policy for a server and records the new expected finish time in its ``Schedule``. Only
then does a forked process take over. State written in a child is lost when the child exits:
that is the lesson.

How a decided request reaches its server is a *connection model* (``minilb.connections``),
the way ``socketserver`` separates a server from how it serves; one job per class::

    Balancer ---------------- accepts, reads, decides (the parent's event loop)
      | .log                  AccessLog (minilb.access_log): one JSON line per request
      | .connections          ConnectionModel: the hooks the balancer calls
      |                         +-- PerRequestConnections   (default; minilb.connections)
      |                         +-- PersistentConnections   (--persistent; minilb.persistent)
      |                               forks one ServerChannel per server

- Per request (the default): the parent opens a new backend connection for each request and
  sends its 2 bytes, then lesson 4's ``spawn_relay_child`` forks a child that owns that
  connection, waits for the echo, relays it to the client and exits. Sending from the parent
  keeps requests reaching each server in the order the parent decided them.
- Persistent (``--persistent``, the seed's and the original course's model, whose servers
  accept exactly one connection and die when it closes): at start the balancer connects once
  to each server and forks one long-lived child per server that owns that connection. For each
  request the parent passes the client's socket to that server's child over a UNIX socket
  (``socket.send_fds``), in the order it decided; the child sends the request on its
  connection and keeps its clients in a FIFO queue: the k-th echo goes to the k-th client.

Either way no two children ever read one backend socket. That was the original seed's bug: its
children shared one connection per server and each read "the next reply", so a child could
take another request's echo and give it to the wrong client. With a FIFO of clients in the one
process that reads the connection, the pairing is exact.

Failures: a backend that refuses a connection, closes one or does not echo in time is marked
down. Per request, the request is retried once on another live server, else the client gets
``ERR``; down servers are probed every second. Persistent, there are no probes (a probe would
use up a course server's one connection): the broken connection itself says the server is down,
the requests waiting on it get ``ERR`` and reconnects are tried with a growing backoff.

Forking the relay children and reaping every child are lesson 4's exercises
(``minilb.network``), called through that module so that ``--student NOTEBOOK`` runs the live
system on a student's versions.
"""

import argparse
import gc
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from minilb import network
from minilb.access_log import AccessLog, read_access_log
from minilb.connections import ConnectionModel, Flight, PerRequestConnections
from minilb.costs import Request, check_kind, server_names
from minilb.exercises import require_done
from minilb.persistent import PersistentConnections
from minilb.policies import check_policy, load_policy, reference_policy, use_student_notebook
from minilb.protocol import (
    REQUEST_SIZE,
    ProtocolError,
    close_with,
    decode_request,
    error_reply,
    open_listener,
    parse_address,
)
from minilb.timeline import Policy, Schedule, service_time

__all__ = ["Backend", "Balancer", "parse_backends", "read_access_log", "require_live_exercises"]

READ_TIMEOUT = 2.0  # seconds a client may take to send its 2 bytes
MAX_CHILDREN = 128  # requests in flight at once; beyond that, clients wait in the backlog


@dataclass
class Backend:
    name: str
    kind: str
    address: tuple[str, int]
    up: bool = True


class PolicyError(Exception):
    """The policy raised or returned something that is not a server index."""


def require_live_exercises(policy: Policy) -> None:
    """Raise ``ExerciseNotDone`` (one clear line on the command line) if the balancer would run
    an exercise that is still a stub: lesson 4's relay functions, and the greedy rule when it
    is the policy."""
    require_done(network.recv_exactly, network.spawn_relay_child, network.reap_children)
    if policy is reference_policy():
        require_done(policy)


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


class Balancer:
    """The forking balancer in front of ``backends``; ``serve_forever`` runs it."""

    def __init__(
        self,
        listener: socket.socket,
        backends: Sequence[Backend],
        unit: float = 1.0,
        policy: Policy | None = None,
        log_path: str | None = None,
        decisions_path: str | None = None,
        max_children: int = MAX_CHILDREN,
        read_timeout: float = READ_TIMEOUT,
        persistent: bool = False,
    ) -> None:
        if unit < 0:
            raise ValueError(f"unit must be at least 0 seconds, got {unit}")
        if max_children < 1:
            raise ValueError(f"max_children must be at least 1, got {max_children}")
        self.listener = listener
        self.backends = list(backends)
        self.unit = unit
        self.policy = policy if policy is not None else reference_policy()
        require_live_exercises(self.policy)
        check_policy(self.policy, [b.kind for b in self.backends])
        self.max_children = max_children
        self.read_timeout = read_timeout
        self.log = AccessLog(log_path, decisions_path)
        self.schedule = Schedule(tuple(b.kind for b in self.backends))
        self.t0 = time.monotonic()
        self.pid = os.getpid()
        self.next_id = 0
        self.arriving: dict[socket.socket, tuple[bytes, float]] = {}  # data so far, deadline
        self.ready: deque[tuple[socket.socket, Request]] = deque()  # waiting for a free slot
        self.stopping = False
        model = PersistentConnections if persistent else PerRequestConnections
        self.connections: ConnectionModel = model(self)
        self.connections.check_at_start()

    def clock(self) -> float:
        """Time in units since the balancer started (the schedule's clock)."""
        return (time.monotonic() - self.t0) / self.unit if self.unit else 0.0

    # The event loop ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then finish every request in flight and return."""
        self.pid = os.getpid()
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(self.wakeup_write, False)
        # A signal only sets a flag; the byte written to the wakeup pipe interrupts select().
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, self._drain_wakeups)
        self.listener.setblocking(False)
        self.accepting = False
        # Children need no set-up of their own (no at-fork hook, which would run Python code in
        # every child): they inherit a disabled collector, so none of them touches every object
        # (a copy-on-write fault per page), and the signal handler above tells them apart.
        gc.disable()
        gc.freeze()  # objects from now on are shared with every child
        next_collection = time.monotonic() + 1.0
        try:
            self.connections.connect_all()
            while not (self.stopping and self._idle()):
                self._loop_once()
                if time.monotonic() >= next_collection:  # the parent's own garbage, once a second
                    gc.collect()
                    next_collection = time.monotonic() + 1.0
            self.connections.close()
        finally:
            gc.enable()
            signal.set_wakeup_fd(-1)
            os.close(self.wakeup_read)
            os.close(self.wakeup_write)
            self.listener.close()

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        if os.getpid() != self.pid:  # in a forked child, which inherited this handler
            if signum == signal.SIGTERM:
                os._exit(128 + signum)
            return  # Ctrl-C reaches the whole process group: the parent lets children finish
        self.stopping = True

    def _idle(self) -> bool:
        return not (self.arriving or self.ready or self.connections.in_flight())

    def _loop_once(self) -> None:
        self._pause_or_resume_accepting()
        deadlines = [deadline for _, deadline in self.arriving.values()]
        timeout = max(min(deadlines, default=time.monotonic() + 1.0) - time.monotonic(), 0.0)
        for key, _ in self.selector.select(timeout):
            key.data(key.fileobj)
        self._reap_children()
        self._expire_slow_clients()
        while self.ready and self.connections.in_flight() < self.max_children:
            client, request = self.ready.popleft()
            self._dispatch(client, request, self._new_id(), retried=False)
        self.connections.tick()

    def _pause_or_resume_accepting(self) -> None:
        # At the cap, stop accepting: new clients wait in the kernel's backlog, not in memory.
        busy = self.connections.in_flight() + len(self.ready) >= self.max_children
        should_accept = not self.stopping and not busy
        if should_accept and not self.accepting:
            self.selector.register(self.listener, selectors.EVENT_READ, self._accept_all)
        elif self.accepting and not should_accept:
            self.selector.unregister(self.listener)
        self.accepting = should_accept

    def _drain_wakeups(self, wakeup_read: int) -> None:
        try:
            while os.read(wakeup_read, 512):
                pass
        except BlockingIOError:
            pass

    def _accept_all(self, listener: socket.socket) -> None:
        for _ in range(self.max_children):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: say so, keep serving
                say(f"accept failed: {error}")
                return
            client.setblocking(False)
            self.arriving[client] = (b"", time.monotonic() + self.read_timeout)
            self.selector.register(client, selectors.EVENT_READ, self._read)

    def _read(self, client: socket.socket) -> None:
        data, deadline = self.arriving[client]
        try:
            chunk = client.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        data += chunk
        if chunk and len(data) < REQUEST_SIZE:
            self.arriving[client] = (data, deadline)  # a dripping client: wait for the rest
            return
        self.selector.unregister(client)
        del self.arriving[client]
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
            self._refuse(client, self._new_id(), str(error), data)
            return
        self.ready.append((client, request))

    def _expire_slow_clients(self) -> None:
        now = time.monotonic()
        for client, (data, deadline) in list(self.arriving.items()):
            if deadline <= now:
                self.selector.unregister(client)
                del self.arriving[client]
                reason = f"timed out: no complete request within {self.read_timeout:g} s"
                self._refuse(client, self._new_id(), reason, data)

    # Deciding ------------------------------------------------------------------------------

    def _dispatch(
        self, client: socket.socket, request: Request, request_id: int, retried: bool
    ) -> None:
        """Choose a live server and hand the request to the connection model; if the server
        fails on the spot, mark it down and choose again (once)."""
        tried: set[int] = set()
        while True:
            now = self.clock()  # one clock reading for the decision and the prediction
            try:
                server = self._choose(request, now)
            except PolicyError as error:
                self._refuse(client, request_id, str(error), request)
                return
            if server is None:
                self._refuse(client, request_id, "no server available: all are down", request)
                return
            start = max(now, self.schedule.finish_times[server])
            finish = start + service_time(self.backends[server].kind, request)
            decision = {
                "id": request_id, "request": str(request), "server": self.backends[server].name,
                "server_index": server, "arrival": now, "start": start, "finish": finish,
                "retried": retried or bool(tried),
            }  # fmt: skip
            reply_timeout = 2 * (finish - now) * self.unit + 5.0  # generous: queues drift
            flight = Flight(
                client, request, request_id, server, retried or bool(tried),
                self.log.encode(decision), reply_timeout,
            )  # fmt: skip
            try:
                self.connections.send(flight)
                break
            except OSError:
                self.mark_down(server)
                tried.add(server)
                if retried or len(tried) > 1:
                    self._refuse(client, request_id, f"backend {decision['server']} down", request)
                    return
        self.schedule.place(request, server, now)
        self.log.decided(flight.log_prefix)

    def _choose(self, request: Request, now: float) -> int | None:
        """The policy's choice among live servers (as an index into the whole fleet).

        The policy sees a fleet made of the live servers only: a student's function knows
        nothing about servers being down, and this way it can never pick a dead one.
        """
        live = [i for i, backend in enumerate(self.backends) if backend.up]
        if not live:
            return None
        times = [self.schedule.finish_times[i] for i in live]
        kinds = tuple(self.backends[i].kind for i in live)
        try:
            choice = self.policy(times, request, kinds, now)
        except Exception as error:
            raise PolicyError(f"the policy failed: {error!r}") from None
        if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < len(live):
            raise PolicyError(f"the policy returned {choice!r}, not a server index")
        return live[choice]

    # Used by the connection models ---------------------------------------------------------

    def _reap_children(self) -> None:
        for pid, exit_code in network.reap_children().items():
            self.connections.child_exited(pid, exit_code)

    def mark_down(self, server: int) -> None:
        backend = self.backends[server]
        if backend.up:
            backend.up = False
            say(f"server {backend.name} at {fmt(backend.address)} is down")

    def mark_up(self, server: int) -> None:
        backend = self.backends[server]
        backend.up = True
        self.schedule.finish_times[server] = self.clock()  # a restarted server's queue is empty
        say(f"server {backend.name} at {fmt(backend.address)} is back")

    def retry_or_fail(self, flight: Flight) -> None:
        """A request whose server failed: once on another live server, else ``ERR``."""
        if flight.retried:
            self.fail(flight, f"backend {self.backends[flight.server].name} down")
        else:
            self._dispatch(flight.client, flight.request, flight.request_id, retried=True)

    def fail(self, flight: Flight, reason: str) -> None:
        """Answer a placed request with ``ERR reason``."""
        self.log.failed(flight.log_prefix, reason)
        _answer_error(flight.client, reason)

    def _refuse(self, client: socket.socket, request_id: int, reason: str, what: object) -> None:
        self.log.refused(request_id, what, reason)
        _answer_error(client, reason)

    def close_inherited(self) -> None:
        """In a long-lived child: close what it inherited from the parent's event loop."""
        self.selector.close()
        self.listener.close()
        for client in [*self.arriving, *(client for client, _ in self.ready)]:
            client.close()
        os.close(self.wakeup_read)
        os.close(self.wakeup_write)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _answer_error(client: socket.socket, reason: str) -> None:
    client.setblocking(True)
    client.settimeout(1.0)
    close_with(client, error_reply(reason))


def _resolve(address: tuple[str, int]) -> tuple[str, int]:
    """The numeric address of ``(host, port)``, looked up once at start."""
    try:
        info = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ValueError(f"cannot resolve server host {address[0]!r}: {error}") from None
    return info[0][4][0], address[1]


def fmt(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def say(message: str) -> None:
    print(f"minilb balancer: {message}", file=sys.stderr, flush=True)


# Command line -----------------------------------------------------------------------------

def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("balancer", help="run the forking load balancer")
    add_arguments(parser)
    parser.set_defaults(handler=_run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind (0: any free port)")
    parser.add_argument(
        "--servers", nargs="+", required=True, metavar="KIND@HOST:PORT", help="the backends"
    )
    parser.add_argument("--unit", type=float, default=1.0, help="seconds per time unit (default 1)")
    parser.add_argument(
        "--policy", default="greedy",
        help="greedy (default), round-robin, fastest-kind, module:function or a notebook",
    )
    parser.add_argument("--log", default="-", help="access log file (default: standard output)")
    parser.add_argument(
        "--decisions", default=None, help="also log each decision as it is made (JSON lines)"
    )
    parser.add_argument(
        "--persistent", action="store_true",
        help="one connection per server, opened at start and kept (the original course's "
        "servers accept exactly one); default: a new connection per request",
    )
    parser.add_argument("--max-children", type=int, default=MAX_CHILDREN)
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT)
    add_student_argument(parser)


def add_student_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--student", metavar="NOTEBOOK", default=None,
        help="run on the lesson 4 functions this notebook defines (recv_exactly, "
        "spawn_relay_child, reap_children, serve_forking, parse_request)",
    )


def _run(args: argparse.Namespace) -> int:
    if args.student:
        use_student_notebook(args.student)
    backends = parse_backends(args.servers)
    policy = load_policy(args.policy)
    require_live_exercises(policy)
    listener = open_listener(args.host, args.port)
    balancer = Balancer(
        listener, backends, args.unit, policy, "/dev/stdout" if args.log == "-" else args.log,
        args.decisions, args.max_children, args.read_timeout, args.persistent,
    )
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    balancer.serve_forever()
    return 0
