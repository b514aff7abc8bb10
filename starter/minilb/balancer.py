"""The forking balancer: ``minilb balancer --port P --servers KIND@HOST:PORT ...``.

The parent process does everything that needs memory: it accepts connections and reads each
request (``Intake``: every client has its own deadline, so a silent one blocks nobody), asks
the policy for a server and records the new expected finish time in its ``Schedule``. Only then
does a forked process take over. State written in a child is lost when it exits: the lesson.

How a decided request reaches its server is a *connection model*, the way ``socketserver``
separates a server from how it serves. One job per class::

    Balancer ------------ decides, in the parent's event loop (this module)
      |-- .intake         Intake (minilb.intake): accepts clients, reads their 2 bytes
      |-- .log            AccessLog (minilb.access_log): one JSON line per request
      '-- .connections    ConnectionModel (minilb.connections): hooks the balancer calls
                            |-- PerRequestConnections  default
                            |-- PersistentConnections  --persistent (minilb.persistent),
                            |                          one ServerChannel child per server
                            '-- PreforkConnections     --prefork N (minilb.prefork), N relay
                                                       workers forked once, handed sockets

- Per request (default): the parent opens a new backend connection per request and sends its
  2 bytes (so requests reach each server in the order decided), then lesson 4's
  ``spawn_relay_child`` forks a child that owns the connection, relays the echo and exits.
  The children of one round of the loop are forked together, after its requests are sent
  (``PerRequestConnections.start_relays`` says why).
- Persistent (the seed's and the original course's model: its servers accept one connection
  and die when it closes): one connection per server, opened at start and kept, owned by one
  long-lived child per server. The parent passes each client's socket to that child over a
  UNIX socket (``socket.send_fds``) in the order it decided; the child sends the request and
  keeps its clients in a FIFO queue, so the k-th echo goes to the k-th client.
- Prefork (Apache's prefork, nginx's workers): as per request, but the parent hands the client
  and backend sockets to one of N workers forked once at start, instead of forking per request.

Either way, no two processes ever read one backend socket. That was the seed's bug: children
shared a connection per server and each read "the next reply", which could be another
request's echo, so replies reached the wrong clients.

A failed server is marked down. Per request: retried once elsewhere, else ``ERR``; down servers
are probed every second. Persistent: no probes (one would use up a course server's only
connection); the broken connection says it, waiting requests get ``ERR``, and reconnects follow
with a growing backoff. Forking relay children and reaping every child are lesson 4's
exercises, called through ``minilb.network`` so that ``--student NOTEBOOK`` swaps them in.
"""

import argparse
import gc
import os
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Sequence

from minilb import network
from minilb.access_log import AccessLog, read_access_log
from minilb.connections import (
    Backend,
    ConnectionModel,
    Flight,
    PerRequestConnections,
    fmt,
    parse_backends,
    say,
)
from minilb.costs import Request
from minilb.exercises import require_done
from minilb.intake import Intake
from minilb.persistent import PersistentConnections
from minilb.policies import check_policy, reference_policy
from minilb.prefork import PreforkConnections
from minilb.protocol import close_with, error_reply
from minilb.timeline import Policy, Schedule, service_time

__all__ = ["Backend", "Balancer", "parse_backends", "read_access_log", "require_live_exercises"]

READ_TIMEOUT = 2.0  # seconds a client may take to send its 2 bytes
MAX_CHILDREN = 128  # requests in flight at once; beyond that, clients wait in the backlog


class PolicyError(Exception):
    """The policy raised or returned something that is not a server index."""


def require_live_exercises(policy: Policy) -> None:
    """Raise ``ExerciseNotDone`` (one clear line on the command line) if the balancer would run
    an exercise that is still a stub: lesson 4's relay functions, and the greedy rule when it
    is the policy."""
    require_done(network.recv_exactly, network.spawn_relay_child, network.reap_children)
    if policy is reference_policy():
        require_done(policy)


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
        prefork: int = 0,
    ) -> None:
        if unit < 0:
            raise ValueError(f"unit must be at least 0 seconds, got {unit}")
        if max_children < 1:
            raise ValueError(f"max_children must be at least 1, got {max_children}")
        if prefork < 0:
            raise ValueError(f"prefork must be at least 1 worker, got {prefork}")
        if prefork and persistent:
            raise ValueError("--prefork and --persistent cannot be combined: --persistent "
                             "already keeps one long-lived child per server")
        self.prefork = prefork
        self.listener = listener
        self.backends = list(backends)
        self.unit = unit
        self.policy = policy if policy is not None else reference_policy()
        require_live_exercises(self.policy)
        check_policy(self.policy, [b.kind for b in self.backends])
        self.max_children = max_children
        self.read_timeout = read_timeout
        self.log = AccessLog(log_path, decisions_path)
        self.schedule = Schedule(tuple(b.kind for b in self.backends), keep_placements=False)
        self.t0 = time.monotonic()
        self.pid = os.getpid()
        self.next_id = 0
        self.ready: deque[tuple[socket.socket, Request]] = deque()  # waiting for a free slot
        self.stopping = False
        self.children_to_reap = True  # set by SIGCHLD (and once at start, to be sure)
        model: type[ConnectionModel] = PerRequestConnections
        if persistent:
            model = PersistentConnections
        elif prefork:
            model = PreforkConnections
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
        signal.signal(signal.SIGCHLD, self._on_child_signal)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, _drain)
        self.intake = Intake(
            self.listener, self.selector, self.read_timeout, self._queue, self._refuse_new
        )
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
                    self._tell_lost_log_lines()
            self._tell_lost_log_lines()  # and for lines lost in the last second
            self.connections.close()
        finally:
            gc.enable()
            signal.set_wakeup_fd(-1)
            os.close(self.wakeup_read)
            os.close(self.wakeup_write)
            self.listener.close()

    def _tell_lost_log_lines(self) -> None:
        problem = self.log.lost_lines()
        if problem:
            say(f"access log lines are being lost ({problem}); requests are still served")

    def _on_stop_signal(self, signum: int, _frame: object) -> None:
        if os.getpid() != self.pid:  # in a forked child, which inherited this handler
            if signum == signal.SIGTERM:
                os._exit(128 + signum)
            return  # Ctrl-C reaches the whole process group: the parent lets children finish
        self.stopping = True

    def _on_child_signal(self, _signum: int, _frame: object) -> None:
        self.children_to_reap = True  # a child has ended: reap it in this round of the loop

    def _idle(self) -> bool:
        return not (self.intake.arriving or self.ready or self.connections.in_flight())

    def _loop_once(self) -> None:
        busy = self.connections.in_flight() + len(self.ready) >= self.max_children
        self.intake.accept_while(not self.stopping and not busy)
        for key, _ in self.selector.select(self.intake.seconds_to_next_deadline()):
            key.data(key.fileobj)  # each registered socket's handler
        if self.children_to_reap:  # only then: a wait4 per round would be a syscall per request
            self.children_to_reap = False  # first: a child ending meanwhile sets it again
            self._reap_children()
        self.intake.expire_slow_clients()
        while self.ready and self.connections.in_flight() < self.max_children:
            client, request = self.ready.popleft()
            self._dispatch(client, request, self._new_id(), retried=False)
        self.connections.start_relays()
        self.connections.tick()

    def _queue(self, client: socket.socket, request: Request) -> None:
        self.ready.append((client, request))  # decided as soon as a slot is free

    def _refuse_new(self, client: socket.socket, reason: str, data: bytes) -> None:
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
        self.selector.close()  # its copy only: the parent's registrations stay as they are
        self.intake.close_inherited()
        for client, _ in self.ready:
            client.close()
        os.close(self.wakeup_read)
        os.close(self.wakeup_write)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _drain(wakeup_read: int) -> None:
    try:
        while os.read(wakeup_read, 512):
            pass
    except BlockingIOError:
        pass


def _answer_error(client: socket.socket, reason: str) -> None:
    client.setblocking(True)
    client.settimeout(1.0)
    close_with(client, error_reply(reason))


def add_student_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--student", metavar="NOTEBOOK", default=None,
        help="run on the lesson 4 functions this notebook defines (recv_exactly, "
        "spawn_relay_child, reap_children, serve_forking, parse_request)",
    )
