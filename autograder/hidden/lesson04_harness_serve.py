"""Harness for ``serve_forking``: the harness plays the clients and the server behind the relay.

``run(serve_forking, requests, fail, hold, timeout, one_by_one, connections, refused)`` sets up,
in this process:

- an echo server (one thread) that answers each 2-byte request after a delay that grows as its
  digit shrinks, so replies leave in another order than the requests came in; it hangs up at
  once on a request in ``fail``; with ``hold``, it answers nothing until ``hold`` requests wait
  at once (or ``HOLD_AT_MOST`` seconds have passed), which only a relay that serves clients
  concurrently achieves. It counts the requests on each connection and the most waiting at once;
- one client thread per entry of ``requests``: it connects, sends the entry (one starting with
  ``~`` sends only its next byte, then stays silent) and reads the answer until the end; all at
  once, or ``one_by_one``, each when the one before has its answer (so a child has finished
  before the next ``accept``, and one more later: a relay that does not reap shows its zombies);
- a ``route`` that counts its calls in this process and names the echo server, or for a request
  in ``refused`` a server that refuses every connection (a port bound but not listening);
- the listening socket, which counts the ``accept`` calls and notes at every one how many
  connections the parent still holds (accepted ones, its copies of the clients', and ones to the
  echo server), and whether a child that was a zombie at the previous ``accept`` still is: a
  whole round without reaping.

Then it calls the student's ``serve_forking(listener, route, connections, timeout)`` (by default
``connections`` is ``len(requests)``), with the lesson's other exercises as the reference's.
With ``connections`` None the call should serve for ever: once every client has its answer, the
harness shuts the listener down, so the next ``accept`` fails and the call ends (by raising an
``OSError`` or returning). When it ends, the harness counts the children left behind (finished
ones are zombies), collects them all and closes everything.

Answers ``{"raised": names or None, "returned": [[pid, code], ...] or a type name, "stuck": bool,
"answers": [[text, ended], ...] per request, "route_calls": int, "most_per_connection": int,
"most_waiting": int, "held_clients": int, "held_backends": int, "unreaped_rounds": int,
"zombies": int, "running": int, "hung": int, "accepts": int, "stopped": bool (the harness shut
the listener down once every client had its answer: with ``connections`` None), "early": bool
(the call ended before that)}``.
"""

import contextlib
import heapq
import os
import selectors
import socket
import threading

from autograder.hidden.lesson04_harness_tools import (
    SLACK,
    call_in_parent_only,
    collect_finished,
    collect_the_rest,
    exception_names,
    has_exited,
    monotonic,
    open_sockets,
    read_until_closed,
    reference_helpers,
    setting_up,
    small_thread_stacks,
    waitid,
)

DELAY_UNIT = 0.01  # seconds of delay per step below the digit 9
HOLD_AT_MOST = 1.0  # seconds a held request waits for company
CLIENT_SECONDS = 5.0  # how long a client waits for its whole answer


class EchoServer:
    def __init__(self, fail: list[bytes], hold: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.address = self.listener.getsockname()[:2]
        self.fail, self.hold = set(fail), hold
        self.most_per_connection = self.most_waiting = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SLACK)
        self.listener.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        received: dict[socket.socket, list] = {}  # connection -> [unparsed bytes, requests]
        waiting: list = []  # heap of (due, number, connection, request)
        first_wait, released, number = None, not self.hold, 0
        while not self._stop.is_set():
            for key, _ in selector.select(0.005):
                if key.fileobj is self.listener:
                    connection, _ = self.listener.accept()
                    connection.setblocking(False)
                    selector.register(connection, selectors.EVENT_READ)
                    received[connection] = [b"", 0]
                    continue
                connection = key.fileobj
                try:
                    data = connection.recv(64)
                except BlockingIOError:  # nothing after all
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._hang_up(selector, received, connection)
                    continue
                received[connection][0] += data
                while len(received[connection][0]) >= 2 and connection in received:
                    request = received[connection][0][:2]
                    received[connection][0] = received[connection][0][2:]
                    received[connection][1] += 1
                    self.most_per_connection = max(
                        self.most_per_connection, received[connection][1]
                    )
                    if request in self.fail:
                        self._hang_up(selector, received, connection)
                        break
                    number += 1
                    heapq.heappush(waiting, (monotonic() + self._delay(request), number,
                                             connection, request))  # fmt: skip
                    first_wait = first_wait or monotonic()
            self.most_waiting = max(self.most_waiting, len(waiting))
            released = (
                released
                or len(waiting) >= self.hold
                or (first_wait is not None and monotonic() - first_wait > HOLD_AT_MOST)
            )
            while released and waiting and waiting[0][0] <= monotonic():
                _, _, connection, request = heapq.heappop(waiting)
                with contextlib.suppress(OSError):  # that child is gone
                    connection.send(request)
        for connection in list(received):
            self._hang_up(selector, received, connection)
        selector.close()

    @staticmethod
    def _delay(request: bytes) -> float:
        digit = request[1] - ord("0")
        return DELAY_UNIT * (10 - digit) if 1 <= digit <= 9 else DELAY_UNIT

    @staticmethod
    def _hang_up(selector: selectors.BaseSelector, received: dict, connection: socket.socket
                 ) -> None:  # fmt: skip
        selector.unregister(connection)
        del received[connection]
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
        connection.close()


def _port(name: object) -> int | None:
    return name[1] if isinstance(name, tuple) else None


def _held(listener_port: int, backend_port: int, skip: int) -> tuple[int, int]:
    """(accepted connections, connections to the echo server) this process holds."""
    clients = backends = 0
    default = socket.getdefaulttimeout()
    socket.setdefaulttimeout(None)  # else wrapping a descriptor would make it non-blocking
    try:
        for fd in open_sockets() - {skip}:
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=fd)
                try:
                    local, peer = _port(sock.getsockname()), _port(sock.getpeername())
                finally:
                    sock.detach()  # it is not ours to close
                clients += local == listener_port
                backends += peer == backend_port
    finally:
        socket.setdefaulttimeout(default)
    return clients, backends


class WatchedListener(socket.socket):
    """The listening socket handed to the student's function: at every ``accept`` it notes the
    connections the parent still holds (by then it should have closed its copies)."""

    def watch(self, backend_port: int) -> None:
        self.backend_port, self.held_clients, self.held_backends = backend_port, 0, 0
        self.zombie, self.unreaped_rounds, self.accepts = None, 0, 0

    def accept(self) -> tuple[socket.socket, object]:
        self.accepts += 1
        if self.zombie is not None and has_exited(self.zombie):
            self.unreaped_rounds += 1
        self.zombie = _a_zombie()
        clients, backends = _held(self.getsockname()[1], self.backend_port, self.fileno())
        self.held_clients = max(self.held_clients, clients)
        self.held_backends = max(self.held_backends, backends)
        return super().accept()


def _a_zombie() -> int | None:
    """Some child that has exited and waits to be collected (None if none); collects nothing."""
    try:
        found = waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return found.si_pid if found is not None else None


def _client(address: tuple, request: str, silent_for: float, after: threading.Event | None,
            done: threading.Event, answer: list) -> None:  # fmt: skip
    if after is not None:
        after.wait(CLIENT_SECONDS)
    data = request.encode("latin-1")
    try:
        with socket.create_connection(address, timeout=CLIENT_SECONDS) as sock:
            if data.startswith(b"~"):
                sock.sendall(data[1:2])
                got, ended = read_until_closed(sock, silent_for)
            else:
                sock.sendall(data)
                got, ended = read_until_closed(sock, CLIENT_SECONDS)
    except OSError:
        got, ended = b"", True
    answer[:] = [got.decode("latin-1"), ended]
    done.set()


def _returned(result: object) -> list | str:
    if type(result) is not dict:
        return type(result).__name__
    return sorted([pid, code] for pid, code in result.items()
                  if type(pid) is int and type(code) is int)  # fmt: skip


Clients = tuple[list[threading.Thread], list[threading.Event]]


def _start_clients(address: tuple, requests: list[str], answers: list, silent_for: float,
                   one_by_one: bool) -> Clients:  # fmt: skip
    """One thread per request, all at once or ``one_by_one`` (each when the one before is done),
    and the events they set when done."""
    done = [threading.Event() for _ in requests]
    with small_thread_stacks():
        clients = [threading.Thread(target=_client, daemon=True, args=(
            address, request, silent_for, done[index - 1] if one_by_one and index else None,
            done[index], answers[index])) for index, request in enumerate(requests)]  # fmt: skip
        for client in clients:
            client.start()
    return clients, done


def _stop_when_served(listener: socket.socket, done: list[threading.Event], ended: threading.Event,
                      stopped: threading.Event) -> None:  # fmt: skip
    """Shut the listener down once every client is done, unless the call has ended already."""
    for event in done:
        if not event.wait(CLIENT_SECONDS) or ended.is_set():
            break
    if not ended.is_set():
        stopped.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)


def _serve(serve_forking, listener: WatchedListener, route: object, connections: object,  # noqa: ANN001
           timeout: float, ended: threading.Event) -> dict:  # fmt: skip
    """Call the student's function; then count, collect and kill the children it left."""
    seen: dict = {"raised": None, "returned": "NoneType"}
    try:
        with reference_helpers(serve_forking):
            result = call_in_parent_only(serve_forking, listener, route, connections, timeout)
        seen["returned"] = _returned(result)
    except NotImplementedError:
        raise
    except BaseException as error:  # noqa: BLE001  (reported, then everything is cleaned up)
        seen["raised"] = exception_names(error)
    finally:
        ended.set()
        seen["zombies"] = collect_finished()
        listener.close()  # clients still waiting to be accepted are turned away now
        returned = seen["returned"]
        known = {pid for pid, _ in returned} if isinstance(returned, list) else set()
        seen["running"], seen["hung"] = collect_the_rest(2 * SLACK, known)
    return seen


def _request_name(request: object) -> str:
    """``"V1"`` for the request ``("V", 1)``; "" for anything else."""
    try:
        request_type, length = request  # type: ignore[misc]
    except (TypeError, ValueError):
        return ""
    return f"{request_type}{length}"


def run(serve_forking, requests: list[str], fail: list[bytes], hold: int,  # noqa: ANN001
        timeout: float, one_by_one: bool = False, connections: object = "all",
        refused: list[str] = ()) -> dict:  # fmt: skip
    collect_finished()
    calls, answers = [], [["", False] for _ in requests]
    ended, stopped = threading.Event(), threading.Event()
    with contextlib.ExitStack() as cleanup:
        with setting_up():
            echo = EchoServer(fail, hold)
            cleanup.callback(echo.stop)
            dead = socket.socket()  # bound, never listening: every connection is refused
            cleanup.callback(dead.close)
            dead.bind(("127.0.0.1", 0))
            dead_address = dead.getsockname()[:2]
            plain = socket.create_server(("127.0.0.1", 0), backlog=128)
            listener = WatchedListener(fileno=plain.detach())
            cleanup.callback(listener.close)
            listener.watch(echo.address[1])
            address = listener.getsockname()[:2]
            clients, done = _start_clients(address, requests, answers, timeout + SLACK,
                                           one_by_one)  # fmt: skip
            cleanup.callback(lambda: [client.join(timeout=CLIENT_SECONDS) for client in clients])
            if connections is None:  # serving for ever: stopped once every client is served
                stopper = threading.Thread(target=_stop_when_served, daemon=True,
                                           args=(listener, done, ended, stopped))  # fmt: skip
                stopper.start()
                cleanup.callback(lambda: stopper.join(timeout=CLIENT_SECONDS))
            # A call that would never return is woken up: accept fails once the listener shuts.
            stuck = threading.Timer(CLIENT_SECONDS + SLACK, listener.shutdown, (socket.SHUT_RDWR,))
            stuck.start()
            cleanup.callback(stuck.cancel)

        def route(request: object) -> tuple[str, int]:
            calls.append(1)
            return dead_address if _request_name(request) in refused else echo.address

        count = len(requests) if connections == "all" else connections
        seen = _serve(serve_forking, listener, route, count, timeout, ended)
        seen["stuck"] = stuck.finished.is_set() and not stopped.is_set()
        seen["stopped"], seen["early"] = stopped.is_set(), not stopped.is_set()
    seen.update(
        answers=answers,
        route_calls=len(calls),
        held_clients=listener.held_clients,
        held_backends=listener.held_backends,
        unreaped_rounds=listener.unreaped_rounds,
        most_per_connection=echo.most_per_connection,
        most_waiting=echo.most_waiting,
        accepts=listener.accepts,
    )
    return seen
