"""What every lesson-4 harness shares; the grader sends it in front of each harness.

A harness runs inside the sandbox, in the student's process, after the notebook's cells ran
(``autograder.contract``): sockets cannot cross the pipe, so it builds them there, calls the
student's function and returns what it saw as plain data. The grader judges; nothing here
scores. Standard library only, and children only from ``os.fork``: a ``subprocess`` or
``multiprocessing`` child would be collected by the student's ``waitpid(-1)``. No ``/proc``
either: the fallback jail has none.

Trust: this code shares a process with the student's, so a submission written to fool the
grader could forge what a harness sees (patch ``os.fork``, replace ``socket``...). The functions
a harness relies on are bound when its source is loaded, just before the student's function runs
in that call, which stops accidents and casual tricks, not a determined forger; a forged answer
only raises the forger's own score, and reading suspicious submissions catches it.

Each exercise is graded on its own, as DESIGN section 7 asks of lessons: while a function runs,
the lesson's other exercises it calls are the reference versions below (``reference_helpers``).
They are in the sandbox only during a call, which has no way to carry them out of it.
"""

import contextlib
import os
import resource
import signal
import socket
import stat
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator

# Bound now, before the student's function runs in this call (see "Trust" above).
getpid, fork, leave, kill = os.getpid, os.fork, os._exit, os.kill
waitpid, waitid, monotonic, sleep = os.waitpid, os.waitid, time.monotonic, time.sleep

CHILD_RETURNED = 77  # exit code of a student's forked child that came back into the harness
SLACK = 1.5  # seconds of grace on every deadline: graders share busy machines
HUNG = "hung"  # a child that had to be killed
GONE = "gone"  # a child someone else (the student's code) already collected


class HarnessFailure(Exception):
    """The harness could not set its scenario up (a sandbox limit?): not the student's doing."""


@contextlib.contextmanager
def setting_up() -> Iterator[None]:
    """Failures to make sockets, pipes, threads or children here are the harness's own."""
    try:
        yield
    except NotImplementedError:
        raise
    except (OSError, RuntimeError) as error:
        raise HarnessFailure(f"{type(error).__name__}: {error}") from None


def call_in_parent_only(function: Callable, *args: object) -> object:
    """``function(*args)``; a forked child that comes back here (by returning, raising or
    ``sys.exit``) leaves at once with ``CHILD_RETURNED``: only the parent may go on."""
    parent = getpid()
    try:
        return function(*args)
    finally:
        if getpid() != parent:
            leave(CHILD_RETURNED)


def exception_names(error: BaseException) -> list[str]:
    """The exception's class name, then its bases' (so a subclass of ValueError still counts)."""
    return [str(cls.__name__) for cls in type(error).__mro__[:-1]][:20]


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of a fresh loopback TCP connection, in blocking mode: (ours, theirs)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname()[:2])
        theirs, _ = listener.accept()
    for end in (ours, theirs):
        end.settimeout(None)
    return ours, theirs


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the peer sends within ``seconds`` (at most 256 bytes), and whether it then closed."""
    deadline, data = monotonic() + seconds, b""
    while len(data) < 256:
        left = deadline - monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(256 - len(data))
        except TimeoutError:
            return data, False
        except OSError:  # reset: closed too, if rudely
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def open_sockets() -> set[int]:
    """The descriptors of every socket this process holds."""
    limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16)
    found = set()
    for fd in range(limit):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                found.add(fd)
        except OSError:
            pass
    return found


def has_exited(pid: int) -> bool:
    """Whether child ``pid`` has exited and waits to be collected (a zombie); collects nothing."""
    try:
        return waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def exit_code(pid: int, seconds: float) -> int | str:
    """Collect child ``pid`` within ``seconds``: its exit code, ``HUNG`` if it had to be killed,
    or ``GONE`` if it was collected already."""
    deadline = monotonic() + seconds
    while True:
        try:
            done, status = waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return GONE
        if done:
            return os.waitstatus_to_exitcode(status)
        if monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                kill(pid, signal.SIGKILL)
            waitpid(pid, 0)
            return HUNG
        sleep(0.005)


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


def collect_the_rest(seconds: float, known: set[int]) -> tuple[int, int]:
    """Wait up to ``seconds`` for the children still running, collecting them, then kill those
    of ``known`` still there: (how many finished meanwhile, how many had to be killed)."""
    finished, deadline = 0, monotonic() + seconds
    while True:
        try:
            pid, _ = waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return finished, 0  # none left
        if pid:
            finished += 1
        elif monotonic() > deadline:
            break
        else:
            sleep(0.01)
    return finished, sum(exit_code(pid, 0) == HUNG for pid in known)


@contextlib.contextmanager
def small_thread_stacks() -> Iterator[None]:
    """Threads made meanwhile get small stacks: dozens of them fit in the sandbox's memory."""
    previous = threading.stack_size(1 << 18)
    try:
        yield
    finally:
        threading.stack_size(previous)


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
    deadline, data = monotonic() + timeout, b""
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
