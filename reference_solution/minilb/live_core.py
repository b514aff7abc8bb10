"""Which socket-and-fork core the live system runs on, and a given one for before lesson 4.

The balancer relays every reply through ``minilb.network``'s ``spawn_relay_child`` and
collects the relays with ``reap_children`` (and checks that ``recv_exactly`` is written): lesson
4's exercises. ``choose_live_core`` picks what those names are, before the balancer starts:

- ``--student NOTEBOOK``: the functions that notebook defines;
- otherwise the package's own, when they are written (the kit, or a handout released after
  lesson 4);
- otherwise this module's threaded relay, so that the live demo runs from lesson 2 on.

The threaded relay keeps the contract of ``spawn_relay_child`` (the same exit codes, the client
kept on a server failure) but relays each reply in a *thread* of the balancer, not a forked
child, and ``reap_children``'s stand-in only reports relays that have ended. It teaches none of
lesson 4: no fork, no waitpid, no read loop of its own (a buffered file reads the reply). Its
"pids" are negative numbers, so nobody mistakes them for processes.
"""

import itertools
import os
import signal
import socket
from collections import deque
from collections.abc import Callable

from minilb import network
from minilb.exercises import is_stub, require_done
from minilb.network import EXIT_BACKEND_FAILED
from minilb.policies import use_student_notebook
from minilb.protocol import REQUEST_SIZE, close_with

CORE = ("recv_exactly", "spawn_relay_child", "reap_children")  # what the balancer calls

_relay_ids = itertools.count(-1, -1)
# (relay id, exit code) of each relay that ended, until collected; a deque's append and
# popleft are safe from several threads at once, so no lock is needed.
_ended: deque[tuple[int, int]] = deque()


def read_reply(sock: socket.socket, size: int, timeout: float) -> bytes:
    """``size`` bytes through a buffered file (each read has its own ``timeout``)."""
    sock.settimeout(timeout)
    with sock.makefile("rb") as stream:
        data = stream.read(size)
    if len(data) < size:
        raise ConnectionError(f"the server closed after {len(data)} of {size} bytes")
    return data


def spawn_relay_thread(
    client: socket.socket,
    backend: socket.socket,
    timeout: float,
    on_reply: Callable[[bytes], None] | None = None,
) -> int:
    """Relay the reply on ``backend`` to ``client`` in a new thread; the relay's id (< 0)."""
    # Imported here, not at the top: importing threading registers an at-fork hook, Python code
    # that would run in every child the forking balancer forks (this module is loaded there).
    import threading

    relay_id = next(_relay_ids)
    thread = threading.Thread(
        target=_relay, args=(relay_id, client, backend, timeout, on_reply), daemon=True
    )
    thread.start()
    return relay_id


def _relay(
    relay_id: int,
    client: socket.socket,
    backend: socket.socket,
    timeout: float,
    on_reply: Callable[[bytes], None] | None,
) -> None:
    exit_code = 1
    try:
        reply = read_reply(backend, REQUEST_SIZE, timeout)
        if on_reply is not None:
            on_reply(reply)
        close_with(client, reply)
        exit_code = 0
    except OSError:
        exit_code = EXIT_BACKEND_FAILED  # the client is left to the balancer, which may retry
    except Exception:
        exit_code = 1  # like a relay child that fails: the client is not answered
    finally:
        backend.close()
        _ended.append((relay_id, exit_code))
        # A signal wakes the balancer's loop at once, as a child's exit (SIGCHLD) would.
        os.kill(os.getpid(), signal.SIGCHLD)


def collect_relay_threads() -> dict[int, int]:
    """``{relay id: exit code}`` of the relays that ended since the last call."""
    ended = {}
    while _ended:
        relay_id, exit_code = _ended.popleft()
        ended[relay_id] = exit_code
    return ended


def install_threaded_core() -> None:
    """Make the live system relay with threads (see the module's docstring)."""
    network.recv_exactly = read_reply
    network.spawn_relay_child = spawn_relay_thread
    network.reap_children = collect_relay_threads


def choose_live_core(student: str | None) -> str:
    """Set up ``minilb.network`` for the live system; one line saying which core it is."""
    if student:
        use_student_notebook(student)
        require_done(*(getattr(network, name) for name in CORE))
        return f"core: your lesson 4 functions from {student} (forked relay children)"
    if not any(is_stub(getattr(network, name)) for name in CORE):
        return "core: lesson 4's functions from the minilb package (forked relay children)"
    install_threaded_core()
    return (
        "core: the kit's threaded relay, since lesson 4 is not done yet "
        "(--student 04_sockets_and_forking.ipynb runs your forking relay)"
    )
