"""The ``serve_forking`` scenario, played by the GRADER (``autograder/TRUST.md``).

Runs in the grader's process. The grader makes the listening socket (its clients connect to it
here) and passes it into the sandbox; its echo server answers on the listeners the sandbox made
in its own network namespace before any student code ran (``SandboxedStudent.peer_sockets``),
so the student's children reach it through the sandbox's loopback. ``route`` (in the sandbox)
names those listeners in turn: where the connections arrive shows whether the parent decided
(a child's turn counter is a copy, so every child would pick the first one). The echo server
answers each request after a delay that grows as its digit shrinks, so replies leave in another
order than the requests came; it hangs up on a request in ``fail``; with ``hold`` it answers
nothing until ``hold`` requests wait at once (or ``HOLD_AT_MOST`` passed).

While the call runs, a watcher looks at the sandbox's serving process in /proc whenever it
sleeps in a call with settled descriptors: which backend connections it still holds; with
clients one by one (the next connects only after that look), any connection at all, and its
zombies (one still there two finished clients later went a whole round unreaped). After the
call it counts the zombies and running children left, and kills what does not end.
"""

import contextlib
import heapq
import os
import selectors
import socket
import threading
import time

from autograder.hidden import lesson04_harness_procfs as procfs
from autograder.hidden.lesson04_harness_peers import (
    SLACK,
    call,
    marker,
    names,
    read_until_closed,
    serving,
)

DELAY_UNIT = 0.01
HOLD_AT_MOST = 1.0
CLIENT_SECONDS = 5.0


class EchoServer:
    def __init__(self, listeners: list[socket.socket], fail: list[bytes], hold: int) -> None:
        self.listeners, self.fail, self.hold = listeners, set(fail), hold
        self.hits = [0] * len(listeners)  # connections that arrived on each listener
        self.most_per_connection = self.most_waiting = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SLACK)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        for number, listener in enumerate(self.listeners):
            selector.register(listener, selectors.EVENT_READ, number)
        received: dict[socket.socket, list] = {}
        waiting: list = []
        first_wait, released, order = None, not self.hold, 0
        while not self._stop.is_set():
            for key, _ in selector.select(0.005):
                if key.fileobj in self.listeners:
                    with contextlib.suppress(OSError):
                        connection, _ = key.fileobj.accept()
                        connection.setblocking(False)
                        selector.register(connection, selectors.EVENT_READ, None)
                        received[connection] = [b"", 0]
                        self.hits[key.data] += 1
                    continue
                connection = key.fileobj
                try:
                    data = connection.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    _hang_up(selector, received, connection)
                    continue
                received[connection][0] += data
                while connection in received and len(received[connection][0]) >= 2:
                    request = received[connection][0][:2]
                    received[connection][0] = received[connection][0][2:]
                    received[connection][1] += 1
                    self.most_per_connection = max(self.most_per_connection,
                                                   received[connection][1])  # fmt: skip
                    if request in self.fail:
                        _hang_up(selector, received, connection)
                        break
                    order += 1
                    heapq.heappush(waiting, (time.monotonic() + _delay(request), order,
                                             connection, request))  # fmt: skip
                    first_wait = first_wait or time.monotonic()
            self.most_waiting = max(self.most_waiting, len(waiting))
            released = released or len(waiting) >= self.hold or (
                first_wait is not None and time.monotonic() - first_wait > HOLD_AT_MOST)
            while released and waiting and waiting[0][0] <= time.monotonic():
                _, _, connection, request = heapq.heappop(waiting)
                with contextlib.suppress(OSError):
                    connection.send(request)
        for connection in list(received):
            _hang_up(selector, received, connection)
        selector.close()


def _delay(request: bytes) -> float:
    digit = request[1] - ord("0")
    return DELAY_UNIT * (10 - digit) if 1 <= digit <= 9 else DELAY_UNIT


def _hang_up(selector: selectors.BaseSelector, received: dict, connection: socket.socket) -> None:
    selector.unregister(connection)
    del received[connection]
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


class Client(threading.Thread):
    def __init__(self, address: tuple, request: str, silent_for: float,
                 after: "Client | None") -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.address, self.request = address, request
        self.silent_for, self.after = silent_for, after
        self.port, self.answer, self.timed_out = 0, ["", False], False
        self.connected, self.done = threading.Event(), threading.Event()
        self.looked = threading.Event()  # the watcher has looked at the relay since it was done

    def run(self) -> None:
        if self.after is not None:
            self.after.done.wait(CLIENT_SECONDS)
            self.after.looked.wait(CLIENT_SECONDS)
        data = self.request.encode("latin-1")
        try:
            with socket.create_connection(self.address, timeout=CLIENT_SECONDS) as sock:
                self.port = sock.getsockname()[1]
                self.connected.set()
                silent = data.startswith(b"~")
                sock.sendall(data[1:2] if silent else data)
                got, ended = read_until_closed(sock, self.silent_for if silent else CLIENT_SECONDS)
                self.timed_out = not ended and not silent
        except OSError:
            got, ended = b"", True
        self.answer = [got.decode("latin-1"), ended]
        self.connected.set()
        self.done.set()


class Watcher(threading.Thread):
    """Looks at the serving process whenever it waits, until ``finished`` is set."""

    def __init__(self, pid: int, expected: set[int], echo_ports: set[int], clients: list[Client],
                 one_by_one: bool) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.pid, self.expected, self.echo_ports = pid, expected, echo_ports
        self.clients, self.one_by_one = clients, one_by_one
        self.held_clients = self.held_backends = self.unreaped_rounds = 0
        self.finished = threading.Event()
        self._zombies: list[tuple[int, set[int]]] = []  # (clients done by then, zombie pids)

    def run(self) -> None:
        if self.one_by_one:  # after each client, once the relay waits for the next one
            for number, client in enumerate(self.clients):
                if not client.done.wait(CLIENT_SECONDS) or self.finished.is_set():
                    break
                if procfs.quiet(self.pid, SLACK):
                    self._look(number)
                client.looked.set()
            for client in self.clients:
                client.looked.set()
            return
        while not self.finished.is_set():
            done_before = sum(client.done.is_set() for client in self.clients)
            if procfs.quiet(self.pid, 0.05):
                self._look(done_before)
            time.sleep(0.02)

    def _look(self, done_before: int) -> None:
        held = procfs.socket_inodes(self.pid) - self.expected
        backends = {inode for _, remote, inode in procfs.tcp_connections(self.pid)
                    if remote in self.echo_ports}  # fmt: skip
        self.held_backends = max(self.held_backends, len(backends & held))
        if self.one_by_one:  # waiting for the next client, it should hold no connection at all
            self.held_clients = max(self.held_clients, len(held - backends))
        zombies = {child.pid for child in procfs.children(self.pid) if child.state == "Z"}
        done_after = sum(client.done.is_set() for client in self.clients)
        if self.one_by_one and any(done + 2 <= done_before and zombies & earlier
                                   for done, earlier in self._zombies):  # fmt: skip
            self.unreaped_rounds += 1
        self._zombies.append((done_after, zombies))


def _returned(answer: object) -> list | str:
    if not (isinstance(answer, dict) and answer.get("kind") == "dict"):
        return "NoneType" if answer is None else "other"
    return sorted([key, value] for key, value in answer["items"]
                  if type(key) is int and type(value) is int)  # fmt: skip


def serve(student: object, source: str, requests: list[str], fail: list[bytes], hold: int,
          timeout: float, one_by_one: bool = False, connections: object = "all",
          refused: list[str] = ()) -> dict:  # fmt: skip
    pid = serving(student)
    *echo_listeners, refusing = student.peer_sockets  # type: ignore[attr-defined]
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    address = listener.getsockname()[:2]
    fail = [item["__bytes__"].encode("latin-1") if isinstance(item, dict) else item
            for item in fail]  # fmt: skip
    echo = EchoServer(echo_listeners, fail, hold)
    clients: list[Client] = []
    for request in requests:
        clients.append(Client(address, request, timeout + SLACK,
                              clients[-1] if one_by_one and clients else None))  # fmt: skip
    expected = procfs.socket_inodes(pid) | {os.fstat(listener.fileno()).st_ino}
    watcher = Watcher(pid, expected, {sock.getsockname()[1] for sock in echo_listeners},
                      clients, one_by_one)  # fmt: skip
    stopped, ended = threading.Event(), threading.Event()

    def shut_down(event: threading.Event) -> None:
        event.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)

    def stop_when_served() -> None:
        for client in clients:
            if not client.done.wait(CLIENT_SECONDS) or ended.is_set():
                return
        if not ended.is_set():
            shut_down(stopped)

    stuck = threading.Event()
    stuck_timer = threading.Timer(CLIENT_SECONDS + SLACK, shut_down, (stuck,))
    try:
        for client in clients:
            client.start()
        if connections == 0:  # so that an accept would find them
            procfs.wait_until(lambda: all(c.connected.is_set() for c in clients), CLIENT_SECONDS)
        watcher.start()
        if connections is None:
            threading.Thread(target=stop_when_served, daemon=True).start()
        stuck_timer.start()
        count = len(requests) if connections == "all" else connections
        addresses = [list(sock.getsockname()[:2]) for sock in echo_listeners]
        answer, error = call(student, source, "serve_forking",
                             ["serve", marker(0), addresses, list(refusing.getsockname()[:2]),
                              list(refused), count, timeout], [listener],
                             2 * CLIENT_SECONDS + 3 * SLACK)  # fmt: skip
        ended.set()
        stuck_timer.cancel()
        seen = {"raised": names(error), "returned": _returned(answer), "stuck": stuck.is_set(),
                "stopped": stopped.is_set(), "early": not stopped.is_set()}  # fmt: skip
        listener.setblocking(False)
        with contextlib.suppress(OSError):
            listener.accept()[0].close()  # a client still waiting: nobody accepted it
            seen["not_accepted"] = True
        seen.update(_children_left(pid))
    finally:
        ended.set()
        stuck_timer.cancel()
        watcher.finished.set()
        for client in clients:
            client.looked.set()
        with contextlib.suppress(OSError):  # the sandbox holds a copy: this ends it there too
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for client in clients:
            client.join(timeout=CLIENT_SECONDS)
        watcher.join(timeout=SLACK)
        echo.stop()
    waited = [client.timed_out for client in clients if not client.request.startswith("~")]
    seen.update(
        answers=[client.answer for client in clients],
        route_calls=_route_calls(echo.hits),
        held_clients=watcher.held_clients,
        held_backends=watcher.held_backends,
        unreaped_rounds=watcher.unreaped_rounds,
        most_per_connection=echo.most_per_connection,
        most_waiting=echo.most_waiting,
        accepts=0 if seen.get("not_accepted") else len(clients),
        safety_net=seen["stuck"] or bool(seen["hung"]) or any(waited),
    )
    return seen


def _route_calls(hits: list[int]) -> int:
    """How many times the parent asked ``route``, as the connections' spread shows: turn after
    turn (0 if every child picked the first listener: it decided on a copy; -1 if uneven)."""
    total = sum(hits)
    if total > 1 and hits[0] == total:
        return 0
    even = [total // len(hits) + (number < total % len(hits)) for number in range(len(hits))]
    return total if hits == even else -1


def _children_left(pid: int) -> dict:
    found = procfs.children(pid)
    zombies = sum(child.state == "Z" for child in found)
    running = [child for child in found if child.state != "Z"]
    procfs.wait_until(lambda: all(procfs.state(c.host_pid) in ("Z", "") for c in running),
                      2 * SLACK)  # fmt: skip
    hung = [child for child in running if procfs.state(child.host_pid) not in ("Z", "")]
    for child in hung:
        procfs.kill(child)
    return {"zombies": zombies, "running": len(running), "hung": len(hung)}
