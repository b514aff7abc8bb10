"""What the grader reads about the sandbox's processes from outside, in its own ``/proc``.

Runs in the GRADER's process, never in the sandbox (``autograder/TRUST.md``): the student's
code cannot rewrite what the kernel shows here. ``serving`` is the sandboxed process that
answers calls, as ``SandboxedStudent.serving_pid`` noted it before any student code ran; its
children are named by the pids they have inside the sandbox (the last field of ``NSpid``),
since those are the pids the student's code sees and returns.
"""

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

GRADER = "self"  # the grader's own /proc entry
POLL = 0.005  # seconds between two looks while waiting for an event
EXIT_CODE_FIELD = 49  # /proc/PID/stat, counted after the command's closing parenthesis


@dataclass(frozen=True)
class Child:
    host_pid: int  # as the grader sees it
    pid: int  # as the sandbox sees it
    state: str  # "Z": exited, waiting to be collected
    status: int  # the raw wait status, once a zombie

    @property
    def code(self) -> int:
        return os.waitstatus_to_exitcode(self.status)


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _inner_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return pid


def children(serving: int) -> list[Child]:
    """The serving process's children (running or zombies), as the kernel lists them."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(int(entry))
            if int(fields[1]) == serving:
                status = int(fields[EXIT_CODE_FIELD]) if fields[0] == "Z" else 0
                found.append(Child(int(entry), _inner_pid(int(entry)), fields[0], status))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far (user and system), 0 if it is gone."""
    try:
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def state(pid: int) -> str:
    """The process's state letter ("S" sleeping in a call, "R" running...), "" if gone."""
    try:
        return _stat_fields(pid)[0]
    except (OSError, IndexError):
        return ""


def socket_inodes(pid: int) -> set[int]:
    """The inodes of every socket the process holds (what its ``/proc/PID/fd`` links name)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
    return found


def socket_blocking(pid: int, inode: int) -> bool | None:
    """Whether the process's descriptor of the socket ``inode`` is blocking (``O_NONBLOCK``
    clear in the ``flags:`` of ``/proc/PID/fdinfo/FD``, in octal); None if it holds no such
    socket. Every descriptor of one socket tells the same: the flag belongs to the open file,
    which ``dup`` and ``send_fds`` share."""
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
                if os.readlink(f"/proc/{pid}/fd/{fd}") != f"socket:[{inode}]":
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = next(line for line in info if line.startswith("flags:"))
                return not int(flags.split()[1], 8) & os.O_NONBLOCK
    return None


def tcp_connections(pid: int | str) -> list[tuple[int, int, int]]:
    """(local port, remote port, inode) of every TCP connection in the process's network
    namespace (``/proc/PID/net/tcp``: the sandbox's own loopback, or the grader's)."""
    found = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if inode and fields[3] != "0A":  # 0A: listening
                found.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), inode))
    return found


def wait_until(event: Callable[[], bool], seconds: float) -> bool:
    """Whether ``event()`` came true within ``seconds``: the deadline is only a safety net."""
    deadline = time.monotonic() + seconds
    while not event():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(child.host_pid, signal.SIGKILL)


def quiet(pid: int, seconds: float) -> bool:
    """Whether the process was seen asleep in a call twice in a row within ``seconds`` with the
    same descriptors (it is waiting, not between two steps), so what it holds now is what it
    keeps."""

    def settled() -> bool:
        if state(pid) != "S":
            return False
        before = socket_inodes(pid)
        time.sleep(POLL)
        return state(pid) == "S" and socket_inodes(pid) == before

    return wait_until(settled, seconds)
