"""The forking balancer.

``minilb balancer --port P --servers KIND@HOST:PORT ... [--unit U] [--policy SPEC]
[--student NOTEBOOK]``

The parent process does everything that needs memory: it accepts connections, reads each
request (every client has its own deadline, so a silent or dripping client blocks nobody),
asks the policy for a server and records the new expected finish time in its ``Schedule``. Only
then does it fork. State written in a child is lost when the child exits: that is the lesson.

The parent also opens the backend connection and sends the 2 bytes before it forks. That keeps
requests reaching each server in exactly the order the parent decided them, which is the order
the predicted timeline assumes (children that connected themselves could race each other). Each
request still has its own backend connection, owned by its child, which waits for the echo,
relays it to the client and exits. Never share one backend socket between concurrent requests:
that was the original seed's bug (replies reached the wrong client). Forking the child and
reaping it are lesson 4's exercises (``minilb.network``), called through that module so that
``--student NOTEBOOK`` runs the live system on a student's versions.

Access log: JSON lines, one per request, written when the request ends (by the child once it
has the echo, by the parent when it answers ``ERR``): request, server, predicted start and
finish (time units since the balancer started), measured finish, retried, error. Each line is
one ``os.write`` on an ``O_APPEND`` file, so lines of concurrent children never interleave. An
optional decisions log gets a line the moment the parent places a request, so the demo can show
each server's queue while it runs; ``read_access_log`` reads both.

Failures: a backend that refuses the connection, or whose child sees it close or time out before
the echo, is marked down; the request is retried once on another live server, else the client
gets ``ERR``. Down servers are re-checked every second, so a restarted server comes back.
"""

import argparse
import gc
import json
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
from minilb.costs import Request, check_kind, server_names
from minilb.exercises import require_done
from minilb.network import EXIT_BACKEND_FAILED
from minilb.policies import check_policy, load_policy, reference_policy, use_student_notebook
from minilb.protocol import (
    REQUEST_SIZE,
    ProtocolError,
    close_with,
    decode_request,
    encode_request,
    error_reply,
    open_listener,
    parse_address,
)
from minilb.timeline import Policy, Schedule

READ_TIMEOUT = 2.0  # seconds a client may take to send its 2 bytes
CONNECT_TIMEOUT = 1.0
HEALTH_CHECK_EVERY = 1.0  # seconds between re-checks of down servers
MAX_CHILDREN = 128


@dataclass
class Backend:
    name: str
    kind: str
    address: tuple[str, int]
    up: bool = True


@dataclass
class _InFlight:
    """A request being served by a child; the parent keeps the client socket for a retry."""

    client: socket.socket
    request: Request
    request_id: int
    server: int
    retried: bool


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
        self.log_fd = _open_log(log_path)
        self.decisions_fd = _open_log(decisions_path)
        self.schedule = Schedule(tuple(b.kind for b in self.backends), keep_placements=False)
        self.t0 = time.monotonic()
        self.next_id = 0
        self.arriving: dict[socket.socket, tuple[bytes, float]] = {}  # data so far, deadline
        self.ready: deque[tuple[socket.socket, Request]] = deque()  # waiting for a child slot
        self.children: dict[int, _InFlight] = {}
        self.stopping = False
        self.next_health_check = 0.0
        for backend in self.backends:
            backend.up = _reachable(backend.address)
            if not backend.up:
                _say(f"server {backend.name} ({backend.kind}) at {_fmt(backend.address)} is down")

    def clock(self) -> float:
        """Time in units since the balancer started (the schedule's clock)."""
        return (time.monotonic() - self.t0) / self.unit if self.unit else 0.0

    # The event loop ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then finish every request in flight and return."""
        wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        # A signal only sets a flag; the byte written to the wakeup pipe interrupts select().
        signal.set_wakeup_fd(wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.selector = selectors.DefaultSelector()
        self.selector.register(wakeup_read, selectors.EVENT_READ)
        self.listener.setblocking(False)
        self.accepting = False
        # Whoever's spawn_relay_child forks (the reference or a student's), the child is set up
        # as a relay child before anything else runs in it.
        os.register_at_fork(after_in_child=_become_relay_child)
        gc.freeze()  # objects from now on are shared with every child, never copied by the gc
        try:
            while not (self.stopping and self._idle()):
                self._loop_once(wakeup_read)
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wakeup_read)
            os.close(wakeup_write)
            self.listener.close()

    def _idle(self) -> bool:
        return not (self.arriving or self.ready or self.children)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _loop_once(self, wakeup_read: int) -> None:
        self._pause_or_resume_accepting()
        deadlines = [deadline for _, deadline in self.arriving.values()]
        timeout = max(min(deadlines, default=time.monotonic() + 1.0) - time.monotonic(), 0.0)
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept_all()
            elif key.fileobj == wakeup_read:
                while _drain(wakeup_read):
                    pass
            else:
                self._read(key.fileobj)
        self._reap_children()
        self._expire_slow_clients()
        while self.ready and len(self.children) < self.max_children:
            client, request = self.ready.popleft()
            self._dispatch(client, request, self._new_id(), retried=False)
        if time.monotonic() >= self.next_health_check:
            self._recheck_down_servers()

    def _pause_or_resume_accepting(self) -> None:
        # At the cap, stop accepting: new clients wait in the kernel's backlog, not in memory.
        busy = len(self.children) + len(self.ready) >= self.max_children
        should_accept = not self.stopping and not busy
        if should_accept and not self.accepting:
            self.selector.register(self.listener, selectors.EVENT_READ)
        elif self.accepting and not should_accept:
            self.selector.unregister(self.listener)
        self.accepting = should_accept

    def _accept_all(self) -> None:
        for _ in range(self.max_children):
            try:
                client, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: say so, keep serving
                _say(f"accept failed: {error}")
                return
            client.setblocking(False)
            self.arriving[client] = (b"", time.monotonic() + self.read_timeout)
            self.selector.register(client, selectors.EVENT_READ)

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
            self._fail(client, self._new_id(), str(error), data)
            return
        self.ready.append((client, request))

    def _expire_slow_clients(self) -> None:
        now = time.monotonic()
        for client, (data, deadline) in list(self.arriving.items()):
            if deadline <= now:
                self.selector.unregister(client)
                del self.arriving[client]
                reason = f"timed out: no complete request within {self.read_timeout:g} s"
                self._fail(client, self._new_id(), reason, data)

    # Deciding and forking ------------------------------------------------------------------

    def _dispatch(
        self, client: socket.socket, request: Request, request_id: int, retried: bool
    ) -> None:
        """Choose a live server, connect, send the request and fork the child that waits."""
        tried = set()
        while True:
            now = self.clock()  # one clock reading for the decision and the prediction
            try:
                server = self._choose(request, now)
            except PolicyError as error:
                self._fail(client, request_id, str(error), request)
                return
            if server is None:
                self._fail(client, request_id, "no server available: all are down", request)
                return
            try:
                backend = _connect(self.backends[server].address)
                backend.sendall(encode_request(request))
                break
            except OSError:
                self._mark_down(server)
                tried.add(server)
                if retried or len(tried) > 1:
                    reason = f"backend {self.backends[server].name} down"
                    self._fail(client, request_id, reason, request)
                    return
        retried = retried or bool(tried)
        placed = self.schedule.place(request, server, now)
        decision = {
            "id": request_id, "request": str(request), "server": self.backends[server].name,
            "server_index": server, "arrival": now, "start": placed.start,
            "finish": placed.finish, "retried": retried,
        }  # fmt: skip
        _write_line(self.decisions_fd, decision)
        expected_echo = encode_request(request)

        def on_reply(reply: bytes) -> None:  # runs in the child, before the client's reply
            if reply != expected_echo:
                raise ConnectionError(f"backend replied {reply!r}")  # a broken server
            # Logged before replying: once a client has its reply, its log line is complete.
            _write_line(self.log_fd, {**decision, "measured_finish": self.clock(), "error": None})

        reply_timeout = 2 * (placed.finish - now) * self.unit + 5.0  # generous: queues drift
        pid = network.spawn_relay_child(client, backend, reply_timeout, on_reply)
        self.children[pid] = _InFlight(client, request, request_id, server, retried)

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

    # Children, failures, health ------------------------------------------------------------

    def _reap_children(self) -> None:
        if not self.children:
            return  # saves a system call on every round of an idle loop
        for pid, exit_code in network.reap_children().items():
            flight = self.children.pop(pid, None)
            if flight is None:
                continue
            if exit_code == 0:
                flight.client.close()  # the child has answered it
                continue
            if exit_code != EXIT_BACKEND_FAILED:  # the relay code failed, not the server
                reason = f"the relay child failed (exit code {exit_code})"
                self._fail(flight.client, flight.request_id, reason, flight.request)
                continue
            name = self.backends[flight.server].name
            self._mark_down(flight.server)
            if flight.retried:
                self._fail(flight.client, flight.request_id, f"backend {name} down", flight.request)
            else:
                self._dispatch(flight.client, flight.request, flight.request_id, retried=True)

    def _mark_down(self, server: int) -> None:
        backend = self.backends[server]
        if backend.up:
            backend.up = False
            _say(f"server {backend.name} at {_fmt(backend.address)} is down")

    def _recheck_down_servers(self) -> None:
        self.next_health_check = time.monotonic() + HEALTH_CHECK_EVERY
        for server, backend in enumerate(self.backends):
            if not backend.up and _reachable(backend.address, timeout=0.2):
                backend.up = True
                # A restarted server starts with an empty queue.
                self.schedule.finish_times[server] = self.clock()
                _say(f"server {backend.name} at {_fmt(backend.address)} is back")

    def _fail(self, client: socket.socket, request_id: int, reason: str, what: object) -> None:
        record = {"id": request_id, "request": str(what), "server": None, "error": reason}
        _write_line(self.log_fd, record)
        client.setblocking(True)
        client.settimeout(1.0)
        close_with(client, error_reply(reason))

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id



def _become_relay_child() -> None:
    """Runs first thing in every child the balancer forks."""
    gc.disable()  # a collection would touch every object: copy-on-write on all pages
    signal.set_wakeup_fd(-1)  # the parent's wakeup pipe is the parent's
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent lets us finish
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _open_log(path: str | None) -> int | None:
    return None if path is None else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _write_line(fd: int | None, record: dict) -> None:
    if fd is not None:
        os.write(fd, (json.dumps(record) + "\n").encode())


def read_access_log(path: str, decisions_path: str | None = None) -> list[dict]:
    """One record per request, in request order.

    A record has ``id``, ``request``, ``server``, ``start``, ``finish`` (predicted, in units),
    ``measured_finish`` (None until it succeeded), ``error`` (None unless it failed) and
    ``retried``. With ``decisions_path``, requests placed but not finished are included too.
    """
    records: dict[int, dict] = {}
    for log_path in (decisions_path, path):
        if log_path is None or not os.path.exists(log_path):
            continue
        with open(log_path) as log:
            for line in log:
                record = json.loads(line)
                defaults = {"measured_finish": None, "error": None, "retried": False}
                records.setdefault(record["id"], defaults).update(record)
    return [records[key] for key in sorted(records)]


def _resolve(address: tuple[str, int]) -> tuple[str, int]:
    """The numeric address of ``(host, port)``, looked up once at start."""
    try:
        info = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ValueError(f"cannot resolve server host {address[0]!r}: {error}") from None
    return info[0][4][0], address[1]


def _connect(address: tuple[str, int]) -> socket.socket:
    """A connection to ``address``; plain ``connect`` rather than ``create_connection``, which
    looks the host up again for every request (a measurable share of the balancer's CPU)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    backend = socket.socket(family, socket.SOCK_STREAM)
    backend.settimeout(CONNECT_TIMEOUT)
    try:
        backend.connect(address)
    except OSError:
        backend.close()
        raise
    return backend


def _reachable(address: tuple[str, int], timeout: float = CONNECT_TIMEOUT) -> bool:
    try:
        socket.create_connection(address, timeout).close()
    except OSError:
        return False
    return True


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _fmt(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _say(message: str) -> None:
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
        args.decisions, args.max_children, args.read_timeout,
    )
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    balancer.serve_forever()
    return 0
