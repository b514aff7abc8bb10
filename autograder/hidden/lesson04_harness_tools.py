"""What the in-sandbox part of lesson 4's scenarios needs; sent in front of it.

This runs in the STUDENT's process (``lesson04_harness_call.py``), so it decides nothing: the
grader plays every scenario from its own side (``lesson04_harness_peers.py``,
``autograder/TRUST.md``). Standard library only.

Each exercise is graded on its own, as DESIGN section 7 asks of lessons: while a function runs,
the lesson's other exercises it calls are the reference versions below (``reference_helpers``).
They are in the sandbox only during a call, which has no way to carry them out of it.
"""

import contextlib
import os
import socket
from collections import namedtuple
from collections.abc import Callable, Iterator

# Bound now, before the student's function runs in this call.
getpid, fork, leave, kill = os.getpid, os.fork, os._exit, os.kill
waitpid, monotonic = os.waitpid, __import__("time").monotonic

CHILD_RETURNED = 77  # exit code of a student's forked child that came back into the harness


def call_in_parent_only(function: Callable, *args: object) -> object:
    """``function(*args)``; a forked child that comes back here (by returning, raising or
    ``sys.exit``) leaves at once with ``CHILD_RETURNED``: only the parent may go on."""
    parent = getpid()
    try:
        return function(*args)
    finally:
        if getpid() != parent:
            leave(CHILD_RETURNED)


def collect_finished() -> int:
    """Collect every child that has exited, without waiting: how many there were."""
    count = 0
    while True:
        try:
            pid, _ = waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


# --- the lesson's other exercises, as the reference has them ---------------------------------

try:  # the lesson's own classes, as the student's code imports them
    from minilb.costs import Request
    from minilb.protocol import ProtocolError
except ImportError:  # pragma: no cover - the sandbox always has the lesson's package
    Request = namedtuple("Request", "type length")

    class ProtocolError(ValueError):
        pass


def reference_parse_request(data: bytes, error: type = ProtocolError) -> tuple[str, int]:
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) != 2:
        raise error(f"a request is exactly 2 bytes, got {data!r}")
    request_type, digit = chr(data[0]), chr(data[1])
    if request_type not in "VPM" or digit not in "123456789":
        raise error(f"bad request {bytes(data)!r}: type V, P or M, then a digit 1-9")
    return Request(request_type, int(digit))


def reference_recv_exactly(sock: socket.socket, size: int, timeout: float) -> bytes:
    deadline, data, old_timeout = monotonic() + timeout, b"", sock.gettimeout()
    try:
        while len(data) < size:
            left = deadline - monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out with {len(data)} of {size} bytes")
            sock.settimeout(left)
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError(f"peer closed after {len(data)} of {size} bytes")
            data += chunk
        return data
    finally:
        sock.settimeout(old_timeout)


def reference_spawn_relay_child(
    client: socket.socket, backend: socket.socket, timeout: float, on_reply: Callable | None = None
) -> int:
    pid = fork()
    if pid:
        backend.close()
        return pid
    code = 1
    try:
        reply = reference_recv_exactly(backend, 2, timeout)
        if on_reply is not None:
            on_reply(reply)
        client.sendall(reply)
        client.shutdown(socket.SHUT_RDWR)
        client.close()
        code = 0
    except OSError:
        code = 3
    finally:
        leave(code)


def reference_reap_children() -> dict[int, int]:
    codes = {}
    while True:
        try:
            pid, status = waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return codes
        if pid == 0:
            return codes
        codes[pid] = os.waitstatus_to_exitcode(status)


REFERENCE = {
    "parse_request": reference_parse_request,
    "recv_exactly": reference_recv_exactly,
    "spawn_relay_child": reference_spawn_relay_child,
    "reap_children": reference_reap_children,
}


@contextlib.contextmanager
def reference_helpers(function: Callable) -> Iterator[None]:
    """While ``function`` runs, the lesson's other exercises in its notebook are the
    reference's, so a mistake in one of them is not charged again here."""
    namespace = getattr(function, "__globals__", None)
    name = getattr(function, "__name__", "")
    if not isinstance(namespace, dict):
        yield
        return
    swapped = {helper: namespace.get(helper) for helper in REFERENCE if helper != name}
    namespace.update({helper: REFERENCE[helper] for helper in swapped})
    error = namespace.get("ProtocolError")  # the class the student's code catches
    if isinstance(error, type) and issubclass(error, ValueError) and "parse_request" in swapped:
        namespace["parse_request"] = lambda data: reference_parse_request(data, error)
    try:
        yield
    finally:
        for helper, original in swapped.items():
            if original is None:
                namespace.pop(helper, None)
            else:
                namespace[helper] = original
