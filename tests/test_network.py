"""Lesson 4's socket-and-fork core (minilb.network), over real sockets and real forks.

Whatever reaps children runs in a forked process of its own (``in_own_process``), so that it
only ever sees the children it made, never the test runner's.
"""

import ast
import inspect
import os
import pickle
import signal
import socket
import threading
import time

import pytest
from background import in_background
from notebook_fixtures import write_notebook

from minilb import network, protocol
from minilb.client import send_bytes, send_concurrently
from minilb.cluster import fork_process, stop_process
from minilb.network import (
    EXIT_BACKEND_FAILED,
    reap_children,
    recv_exactly,
    serve_forking,
    spawn_relay_child,
)
from minilb.protocol import open_listener, read_until_closed
from minilb.servers import FifoServer

# recv_exactly --------------------------------------------------------------------------------


class OneByteAtATime:
    """A socket stand-in whose every ``recv`` returns a single byte: the worst partial reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.recv_calls = 0

    def settimeout(self, timeout: float | None) -> None:
        assert timeout is None or timeout > 0

    def gettimeout(self) -> float | None:
        return None

    def recv(self, size: int) -> bytes:
        self.recv_calls += 1
        chunk, self.data = self.data[:1], self.data[1:]
        return chunk


def test_recv_exactly_gathers_one_byte_drips():
    drip = OneByteAtATime(b"M5V1")
    assert recv_exactly(drip, 2, timeout=1.0) == b"M5"
    assert drip.recv_calls == 2
    assert recv_exactly(drip, 2, timeout=1.0) == b"V1"  # never reads past what it was asked


def test_recv_exactly_over_a_real_socket_with_pauses_between_bytes():
    left, right = socket.socketpair()
    with left, right:

        def drip():
            for byte in b"P3V2M1":
                right.sendall(bytes([byte]))
                time.sleep(0.01)

        sender, _ = in_background(drip)
        assert recv_exactly(left, 6, timeout=10.0) == b"P3V2M1"
        sender.join()


def test_recv_exactly_reports_an_early_close_with_how_far_it_got():
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"M")
        right.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionError, match="1 of 2"):
            recv_exactly(left, 2, timeout=5.0)


def test_recv_exactly_times_out_on_a_silent_peer():
    left, right = socket.socketpair()
    with left, right:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            recv_exactly(left, 2, timeout=0.05)
        assert time.monotonic() - started < 2.0


def test_recv_exactly_has_one_deadline_for_the_whole_read():
    """A peer that sends a byte every 0.1 s never leaves one recv waiting long, but 20 bytes
    take 2 s: a 0.3 s timeout for the whole read must end it long before."""
    left, right = socket.socketpair()
    stop = threading.Event()

    def drip():
        while not stop.wait(0.1):
            right.sendall(b"V")

    sender, _ = in_background(drip)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            recv_exactly(left, 20, timeout=0.3)
        assert time.monotonic() - started < 1.5
    finally:
        stop.set()
        sender.join()
        left.close()
        right.close()


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "2", None])
def test_recv_exactly_refuses_a_bad_size(size):
    left, right = socket.socketpair()
    with left, right, pytest.raises(ValueError, match="size"):
        recv_exactly(left, size, timeout=1.0)


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_recv_exactly_refuses_a_bad_timeout(timeout):
    left, right = socket.socketpair()
    with left, right, pytest.raises(ValueError, match="timeout"):
        recv_exactly(left, 2, timeout=timeout)


# Forked processes ---------------------------------------------------------------------------


def start_in_own_process(job):
    """Fork a process of its own (its only children are those ``job`` makes) to run ``job()``;
    ``result_of`` collects what it returns, or raises what it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            try:
                outcome = (True, job())
            except BaseException as error:  # sent back to the test, which raises it
                outcome = (False, error)
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    return pid, read_end


def result_of(started):
    pid, read_end = started
    with os.fdopen(read_end, "rb") as pipe:
        done, value = pickle.load(pipe)
    os.waitpid(pid, 0)
    if not done:
        raise value
    return value


def in_own_process(job):
    return result_of(start_in_own_process(job))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def wait_until_exited(pid):
    """Block until child ``pid`` has exited, but leave it unreaped (a zombie)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def exit_code_of(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def no_children_left():
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# spawn_relay_child ---------------------------------------------------------------------------


def test_the_child_relays_the_reply_and_the_parent_keeps_only_the_client():
    baseline = open_fds()
    client, client_peer = socket.socketpair()
    backend, server = socket.socketpair()
    pid = spawn_relay_child(client, backend, timeout=5.0)
    assert backend.fileno() == -1  # the parent's copy is closed: the child owns it
    assert client.fileno() != -1  # kept open for a retry
    server.sendall(b"M3")
    assert read_until_closed(client_peer, timeout=5.0) == b"M3"
    assert exit_code_of(pid) == 0
    for sock in (client, client_peer, server):
        sock.close()
    assert open_fds() == baseline


def test_on_reply_sees_the_reply_in_the_child_before_the_client_does():
    client, client_peer = socket.socketpair()
    backend, server = socket.socketpair()
    seen_read, seen_write = os.pipe()
    pid = spawn_relay_child(client, backend, 5.0, on_reply=lambda r: os.write(seen_write, r))
    os.close(seen_write)
    server.sendall(b"V7")
    assert read_until_closed(client_peer, timeout=5.0) == b"V7"
    assert exit_code_of(pid) == 0
    assert os.read(seen_read, 10) == b"V7"
    os.close(seen_read)
    for sock in (client, client_peer, server):
        sock.close()


def client_got_nothing(client_peer):
    """Nothing was sent and the connection is still open (the parent could still answer)."""
    client_peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        client_peer.recv(10)
    return True


@pytest.mark.parametrize("failure", ["closes", "goes silent", "reply refused"])
def test_a_failing_backend_ends_the_child_with_code_3_and_no_answer(failure):
    client, client_peer = socket.socketpair()
    backend, server = socket.socketpair()

    def refuse(reply):
        raise ConnectionError(f"not the echo: {reply!r}")

    on_reply = refuse if failure == "reply refused" else None
    pid = spawn_relay_child(client, backend, timeout=0.1, on_reply=on_reply)
    if failure == "closes":
        server.shutdown(socket.SHUT_RDWR)  # close() would leave the child's copy open
    elif failure == "reply refused":
        server.sendall(b"P1")
    assert exit_code_of(pid) == EXIT_BACKEND_FAILED
    assert client_got_nothing(client_peer)
    for sock in (client, client_peer, server):
        sock.close()


def test_any_other_error_in_the_child_is_exit_code_1():
    client, client_peer = socket.socketpair()
    backend, server = socket.socketpair()

    def broken(reply):
        raise KeyError("a bug")

    pid = spawn_relay_child(client, backend, 5.0, on_reply=broken)
    server.sendall(b"P1")
    assert exit_code_of(pid) == 1
    assert client_got_nothing(client_peer)
    for sock in (client, client_peer, server):
        sock.close()


# reap_children -------------------------------------------------------------------------------


def test_reap_children_collects_every_finished_child_with_its_exit_code():
    def job():
        pids = {fork_process(lambda code=code: os._exit(code)): code for code in (0, 3, 7)}
        killed = fork_process(lambda: time.sleep(60))
        os.kill(killed, signal.SIGKILL)
        pids[killed] = -signal.SIGKILL
        for pid in pids:
            wait_until_exited(pid)
        return pids, reap_children(), reap_children(), no_children_left()

    expected, reaped, again, none_left = in_own_process(job)
    assert reaped == expected
    assert again == {} and none_left  # nothing reaped twice, no zombie left


def test_reap_children_without_children_returns_nothing():
    assert in_own_process(reap_children) == {}


def test_reap_children_never_waits_for_a_running_child():
    def job():
        go_read, go_write = os.pipe()
        pid = fork_process(lambda: os.read(go_read, 1))  # runs until told to go
        started = time.monotonic()
        while_running = reap_children()
        elapsed = time.monotonic() - started
        os.write(go_write, b"!")
        wait_until_exited(pid)
        return while_running, elapsed, reap_children() == {pid: 0}

    while_running, elapsed, reaped_after = in_own_process(job)
    assert while_running == {} and elapsed < 1.0
    assert reaped_after


# serve_forking -------------------------------------------------------------------------------


@pytest.fixture
def fifo_server():
    listener = open_listener()
    address = listener.getsockname()[:2]
    pid = fork_process(FifoServer(listener, "VP", unit=0.001).serve_forever)
    listener.close()
    yield address
    stop_process(pid)


def start_relay(server, connections, timeout=5.0):
    """serve_forking in a process of its own: (its address, the started process). Its result:
    exit codes, the requests routed, fds before and after, whether no child is left."""
    listener = open_listener()
    address = listener.getsockname()[:2]

    def job():
        routed = []

        def route(request):  # runs in the parent: what it records stays recorded
            routed.append(request)
            return server

        before = open_fds()
        codes = serve_forking(listener, route, connections, timeout)
        return codes, routed, before, open_fds(), no_children_left()

    started = start_in_own_process(job)
    listener.close()
    return address, started


def test_serve_forking_relays_50_concurrent_clients_to_their_own_echo(fifo_server):
    requests = [(kind, n) for kind in "VPM" for n in range(1, 10)] * 2
    requests = requests[:50]
    address, relay = start_relay(fifo_server, len(requests))
    exchanges = send_concurrently(address, requests, concurrency=50, timeout=30)
    assert [e.reply for e in exchanges] == [f"{t}{n}".encode() for t, n in requests]
    codes, routed, fds_before, fds_after, none_left = result_of(relay)
    assert len(codes) == 50 and set(codes.values()) == {0}
    assert sorted(routed) == sorted(requests)  # decided in the parent, all 50 kept
    assert fds_after == fds_before and none_left


def test_serve_forking_answers_bad_requests_with_err_and_goes_on(fifo_server):
    address, relay = start_relay(fifo_server, 5, timeout=0.3)
    assert send_bytes(address, b"X1", timeout=10).startswith(b"ERR unknown request type")
    with socket.create_connection(address, timeout=10) as short:
        short.sendall(b"M")
        short.shutdown(socket.SHUT_WR)
        assert read_until_closed(short, 10).startswith(b"ERR peer closed the connection after 1")
    with socket.create_connection(address, timeout=10) as silent:
        assert read_until_closed(silent, 10).startswith(b"ERR timed out")
    with socket.create_connection(address, timeout=10):
        pass  # connected and left at once
    assert send_bytes(address, b"V2", timeout=10) == b"V2"  # still serving
    codes, routed, fds_before, fds_after, none_left = result_of(relay)
    assert list(codes.values()) == [0] and len(routed) == 1
    assert fds_after == fds_before and none_left


def test_serve_forking_answers_err_when_the_server_is_down():
    gone = open_listener()
    server = gone.getsockname()[:2]
    gone.close()
    address, relay = start_relay(server, 1)
    assert send_bytes(address, b"M1", timeout=10).startswith(b"ERR server")
    assert result_of(relay)[0] == {}


def test_serve_forking_with_no_connections_returns_at_once_and_refuses_negative():
    with open_listener() as listener:
        assert serve_forking(listener, lambda request: ("127.0.0.1", 1), 0) == {}
        with pytest.raises(ValueError, match="connections"):
            serve_forking(listener, lambda request: ("127.0.0.1", 1), -1)


# A student's notebook ------------------------------------------------------------------------

STUDENT_IMPORTS = """\
import contextlib
import os
import socket
import time
from collections.abc import Callable

from minilb.costs import REQUEST_TYPES, Request
from minilb.network import EXIT_BACKEND_FAILED
from minilb.protocol import REQUEST_SIZE, ProtocolError, close_with, error_reply
"""
STUDENT_FUNCTIONS = (
    protocol.parse_request, network.recv_exactly, network.spawn_relay_child,
    network.reap_children, network.serve_forking,
)  # fmt: skip


def noting_calls(function, calls_path):
    """The source of ``function`` with a first line that appends its name to ``calls_path``
    (the notebook's functions run in other processes: a file is how they tell the test)."""
    source = inspect.getsource(function)
    first_statement = ast.parse(source).body[0].body[0]
    lines = source.splitlines(keepends=True)
    indent = " " * first_statement.col_offset
    note = (f"{indent}with open({str(calls_path)!r}, 'a') as calls:"
            f" calls.write('{function.__name__}\\n')\n")
    lines.insert(first_statement.lineno - 1, note)
    return "".join(lines)


def write_student_notebook(path, calls_path=None, stubs=False):
    """A lesson 4 notebook defining the five functions: the reference code (each noting its
    calls in ``calls_path``), or, with ``stubs``, the handout's stubs."""
    cells = [STUDENT_IMPORTS]
    for function in STUDENT_FUNCTIONS:
        if stubs:
            signature = inspect.getsource(function).split(":\n", 1)[0]
            cells.append(f'{signature}:\n    """Yours."""\n    raise NotImplementedError()\n')
        else:
            cells.append(noting_calls(function, calls_path))
    return str(write_notebook(path, cells))


def student_calls(calls_path):
    return set(calls_path.read_text().split()) if calls_path.exists() else set()
