"""Run one submission's code in a sandboxed child process and call its functions over a pipe.

``SandboxedStudent`` implements ``contract.Student``. The child (``child.py``) runs under
bubblewrap: every namespace unshared (no network, its own PIDs, so it cannot even see the
grader), an unprivileged user inside, read-only views of only the Python installation,
third-party packages and this lesson's copy of ``minilb``; small private tmpfs for /tmp and
/dev/shm, a read-only /dev. CPU time, memory, open files and file sizes are capped with rlimits
per process, and the whole sandbox (memory with swap and tmpfs, processes) by its cgroup where
the machine allows one (``cgroups.py``: rlimits are per process or per user, and do not bind
root, which bubblewrap's user is outside when the grader runs as root). The whole process tree
dies with the sandbox. Where bubblewrap cannot run, grading refuses (``require_isolation``)
unless the instructor accepts a weaker sandbox, the best that runs here: ``jail.py`` (root
allowed to mount: the same view of the files, no network, a throwaway user id, no PID
namespace), else ``uid_sandbox.py`` (root without CAP_SYS_ADMIN, as on Gradescope: a throwaway
user id, the kit hidden by file modes).

Speed is graded in CPU time, never wall time, so that the points do not depend on the machine's
load: ``cpu_seconds_of_last_call`` is what the sandbox's processes used during the last call,
read from the grader's side (the cgroup, else ``/proc``).

A call that times out or kills the child costs only that call: the child is killed and a fresh
one (same code) answers the next call. A function that timed out twice is not called again, and
a notebook gets a total time budget, so a hanging submission cannot stall a class. Every live
child is registered, so a grader that is told to stop can kill them all (``kill_live``).

Lesson 4 needs the grader's own sockets inside the sandbox (``TRUST.md``): a UNIX socket pair,
the *channel*, carries descriptors in with a call (``call(..., fds=...)``). Before any student
code runs, the child sends out a few sockets it made in the sandbox's network namespace
(``peer_sockets``: listeners the grader's peers serve on) and the grader notes the pid of the
serving process as it sees it (``serving_pid``), to read its children and descriptors in /proc.
"""

import functools
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import child, jail, uid_sandbox
from autograder.cell_outputs import checked_all
from autograder.cgroups import SandboxCgroup, cpu_seconds_of, processes_of
from autograder.contract import LESSONS, StudentCallError, cell_error_notes
from autograder.handout import (
    REFERENCE_PACKAGE,
    earlier_exercises,
    exercise_modules,
    lesson_package,
)

CHILD_SOURCE = Path(child.__file__).read_text()
SANDBOX_TAG = "MINILB_SANDBOX"  # an environment variable every sandboxed process starts with
NOBODY = 65534
PACKAGE_MOUNT, SITE_MOUNT = "/opt/lesson", "/opt/site-packages"


@dataclass(frozen=True)
class Limits:
    startup_seconds: float = 20.0  # to run all the notebook's code cells
    call_seconds: float = 10.0  # a cap on any timeout a hidden test asks for
    notebook_seconds: float = 120.0  # everything one notebook may cost
    timeouts_per_function: int = 2
    restarts: int = 20
    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30  # per process (rlimit) and for the whole sandbox (cgroup)
    processes: int = 256  # threads count too: lesson 4 runs 50 clients and their forked relays
    open_files: int = 1024
    file_bytes: int = 16 << 20
    tmp_bytes: int = 64 << 20  # the private /tmp
    shm_bytes: int = 16 << 20  # the private /dev/shm
    reply_bytes: int = 16 << 20


def _set_limits(limits: Limits) -> None:
    for name, value in ((resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_AS, limits.memory_bytes),
                        (resource.RLIMIT_NPROC, limits.processes),
                        (resource.RLIMIT_NOFILE, limits.open_files),
                        (resource.RLIMIT_FSIZE, limits.file_bytes),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(name, (value, value))


def _join(cgroup: SandboxCgroup | None) -> None:
    if cgroup is not None:
        cgroup.join()


def _enter_bubblewrap(limits: Limits, cgroup: SandboxCgroup | None) -> None:
    """Between fork and exec of bubblewrap: rlimits, and the cgroup that binds root too."""
    _set_limits(limits)
    _join(cgroup)


def _python() -> str:
    return os.path.realpath(sys.executable)


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def layout(package_dir: Path) -> list[jail.Mount]:
    """What the child may see, as (kind, source, target): the same for bubblewrap and the jail."""
    mounts: list[jail.Mount] = []
    for system_dir in ("/usr", "/lib", "/lib64", "/bin"):
        if os.path.islink(system_dir):
            mounts.append(("symlink", os.readlink(system_dir), system_dir))
        elif os.path.isdir(system_dir):
            mounts.append(("bind", system_dir, system_dir))
    prefix = os.path.realpath(sys.base_prefix)
    if not prefix.startswith("/usr/"):
        mounts.append(("bind", prefix, prefix))
    return mounts + [("bind", _site_packages(), SITE_MOUNT),
                     ("bind", str(package_dir), PACKAGE_MOUNT)]


def _bwrap_command(package_dir: Path, limits: Limits) -> list[str]:
    command = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid",
               str(NOBODY), "--die-with-parent", "--new-session", "--disable-userns"]
    for kind, source, target in layout(package_dir):
        command += ["--symlink" if kind == "symlink" else "--ro-bind", source, target]
    # bubblewrap's /dev is an unbounded tmpfs the sandbox's user owns: read-only, but for its
    # devices and a small /dev/shm (``--size`` only applies to ``--tmpfs``).
    return command + ["--proc", "/proc", "--dev", "/dev",
                      "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm",
                      "--remount-ro", "/dev", "--size", str(limits.tmp_bytes),
                      "--tmpfs", "/tmp", "--chdir", "/tmp", "--"]


def _jail_layout(package_dir: Path) -> list[jail.Mount]:
    return [*layout(package_dir), ("bind", os.devnull, os.devnull)]


@functools.cache
def bubblewrap_works() -> bool:
    """Whether bubblewrap can start Python here (probed once); warns once when it cannot."""
    if shutil.which("bwrap") is not None:
        probe = _bwrap_command(lesson_package(next(iter(LESSONS))), Limits())
        try:
            done = subprocess.run([*probe, _python(), "-I", "-S", "-c", "pass"],
                                  capture_output=True, timeout=30)
            if done.returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            pass
    warnings.warn("bubblewrap is not available here: student code cannot be isolated by it "
                  "(install the Debian package bubblewrap)", RuntimeWarning, stacklevel=2)
    return False


def jail_works() -> bool:
    """Whether the fallback jail can run here (root, allowed to mount); probed once."""
    if os.getuid() != 0:
        return False
    root = Path(tempfile.gettempdir()) / f"minilb-jail-probe-{os.getpid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    try:
        return jail.works(_python(), str(root),
                          tuple(_jail_layout(lesson_package(next(iter(LESSONS))))))
    finally:
        root.rmdir()


def _secrets() -> tuple[str, ...]:
    """Files the uid sandbox must find unreadable: every hidden test and reference module."""
    hidden = Path(__file__).resolve().parent / "hidden"
    return tuple(str(path) for path in sorted([*hidden.glob("*.py"),
                                               *REFERENCE_PACKAGE.glob("*.py")]))


def uid_sandbox_problem() -> str:
    """"" when the uid sandbox can run here with the kit hidden from it, else why not."""
    return uid_sandbox.works(_python(), _secrets())


def isolation() -> str:
    """The best sandbox that runs here: "bubblewrap", "jail", "uid" or "" (none)."""
    if bubblewrap_works():
        return "bubblewrap"
    if jail_works():
        return "jail"
    return "" if uid_sandbox_problem() else "uid"


class SandboxRefused(ValueError):
    """Student code cannot be isolated here as asked: the message says what to do."""


def require_isolation(allow_unsafe: bool) -> str:
    """How student code will be isolated ("bubblewrap", "jail" or "uid"), or
    ``SandboxRefused``. Without ``allow_unsafe`` only bubblewrap is accepted."""
    if bubblewrap_works():
        return "bubblewrap"
    if not allow_unsafe:
        raise SandboxRefused(
            "bubblewrap cannot run here, so student code could read the hidden tests: install "
            "it (apt-get install bubblewrap) and allow unprivileged user namespaces, or pass "
            "--unsafe-no-sandbox to accept a weaker sandbox (needs root: private mounts, no "
            "network, a throwaway user id, no PID namespace; or, without CAP_SYS_ADMIN, only "
            "a throwaway user id and the kit unreadable to other users)")
    kind = isolation()
    if not kind:
        raise SandboxRefused(
            "--unsafe-no-sandbox needs root, and either permission to mount (CAP_SYS_ADMIN; in "
            "Docker: --cap-add SYS_ADMIN) or a kit other users cannot read; neither works "
            f"here ({uid_sandbox_problem()}), so nothing is graded")
    return kind


# Live children of this process: pid -> the throwaway uid (None under bubblewrap).
# ``kill_live`` empties it when the grader is told to stop.
_LIVE: dict[int, int | None] = {}


def _kill_child(pid: int, uid: int | None) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # its whole session; bubblewrap's namespace follows
    except ProcessLookupError:
        pass
    if uid is not None:
        jail.kill_all(uid)  # processes that left the session (setsid) too
        uid_sandbox.remove_files_of(uid)  # the uid sandbox writes in the machine's /tmp


_LIVE_CGROUPS: set[SandboxCgroup] = set()  # their cgroups, removed with them


def kill_live() -> None:
    """Kill every sandboxed child this process started and has not killed yet."""
    for pid, uid in list(_LIVE.items()):
        _kill_child(pid, uid)
    _LIVE.clear()
    for cgroup in list(_LIVE_CGROUPS):
        cgroup.remove()
    _LIVE_CGROUPS.clear()


def _to_wire(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": bytes(value).decode("latin-1")}
    if isinstance(value, list | tuple):
        return [_to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_wire(item) for key, item in value.items()}
    return value


class _ChildGone(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


class SandboxedStudent:
    """The functions one notebook defines, running in a sandbox (a ``contract.Student``).

    ``cells`` are the notebook's code cells (see ``minilb.notebook_cells.code_cells``); use as
    a context manager so the child is always killed. ``startup_note`` says, in words for the
    student, why the code could not be loaded (empty when it loaded), and ``cell_errors`` lists
    cells that raised.
    """

    def __init__(self, cells: list[str] | str, lesson: str, limits: Limits | None = None) -> None:
        self.cells = [cells] if isinstance(cells, str) else list(cells)
        self.lesson = lesson
        self.limits = limits or Limits()
        modules = exercise_modules()
        self.given = {name: modules[name] for name in earlier_exercises(lesson)}
        self.package_dir = lesson_package(lesson)
        self.functions: set[str] = set()
        self.cell_errors: list[str] = []
        self.cell_outputs: list[dict] = []  # what each cell showed on the first start
        self.startup_note = ""
        self._startup_kind = "crashed"
        self._process: subprocess.Popen | None = None
        self._cgroup: SandboxCgroup | None = None
        self.isolation = ""  # which sandbox the child runs in, once started
        self.cpu_seconds_of_last_call: float | None = None  # None: could not be measured
        self._buffer = b""
        self._next_id = 0
        self._restarts = -1
        self._timeouts: dict[str, int] = {}
        self._deadline = time.monotonic() + self.limits.notebook_seconds
        self._scratch: str | None = None  # the jail's root, or the uid sandbox's home
        self._jail_uid: int | None = None  # the throwaway uid (jail and uid sandbox)
        self._channel: socket.socket | None = None
        self.serving_pid: int | None = None  # the child, as the grader's /proc names it
        self.peer_sockets: list[socket.socket] = []  # made in the sandbox before student code

    def __enter__(self) -> "SandboxedStudent":
        self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._kill()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    # -- the Student protocol ---------------------------------------------------------------

    def has(self, function: str) -> bool:
        return function in self.functions

    def call(
        self, function: str, *args: Any, timeout: float = 5.0, harness: str | None = None,
        fds: tuple[int, ...] = (),
    ) -> Any:
        if self.startup_note:
            raise StudentCallError(self._startup_kind, message=self.startup_note)
        if self._timeouts.get(function, 0) >= self.limits.timeouts_per_function:
            raise StudentCallError("timeout", message=f"{function} timed out before; not retried")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise StudentCallError("timeout", message="the notebook used up its time budget")
        if self._process is None:
            self._start()
            if self.startup_note:
                raise StudentCallError(self._startup_kind, message=self.startup_note)
        self._next_id += 1
        request = {"id": self._next_id, "function": function, "args": _to_wire(list(args))}
        if harness is not None:
            request["harness"] = harness
        seconds = min(timeout, self.limits.call_seconds, remaining)
        self.cpu_seconds_of_last_call = None
        try:
            before = self._cpu_seconds()
            if fds:
                self._send_fds(fds)
                request["fds"] = len(fds)
            self._send(request)
            reply = self._receive(seconds, self._next_id)
            after = self._cpu_seconds()
            if before is not None and after is not None:
                self.cpu_seconds_of_last_call = max(0.0, after - before)
        except _ChildGone as gone:
            self._kill()
            if gone.kind == "timeout":
                self._timeouts[function] = self._timeouts.get(function, 0) + 1
                gone.message = f"{function} did not return within {seconds:g} s"
            raise StudentCallError(gone.kind, message=gone.message) from None  # type: ignore[arg-type]
        if "ok" in reply:
            return child.from_wire(reply["ok"])
        kind = reply.get("error")
        if kind not in ("raised", "missing", "not-plain-data"):
            raise StudentCallError("crashed", message="the sandbox answered nonsense")
        return self._raise(kind, reply)

    # -- the child process ------------------------------------------------------------------

    def _raise(self, kind: str, reply: dict) -> Any:
        raise StudentCallError.from_reply(kind, reply)  # type: ignore[arg-type]

    def _start(self) -> None:
        self._restarts += 1
        if self._restarts > self.limits.restarts:
            self._startup_kind, self.startup_note = "crashed", "the code crashed too many times"
            return
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", SANDBOX_TAG: "1"}
        python = [_python(), "-I", "-S", "-B", "-c", CHILD_SOURCE]
        self.isolation = isolation()
        if not self.isolation:
            raise SandboxRefused("no sandbox can run here (see sandbox.require_isolation)")
        self._cgroup = SandboxCgroup.create(self.limits.memory_bytes, self.limits.processes)
        if self._cgroup is not None:
            _LIVE_CGROUPS.add(self._cgroup)
        set_limits = functools.partial(_set_limits, self.limits)
        join = functools.partial(_join, self._cgroup)
        path = [PACKAGE_MOUNT, SITE_MOUNT]
        command = python
        if self.isolation == "bubblewrap":
            command = _bwrap_command(self.package_dir, self.limits) + python
            preexec = functools.partial(_enter_bubblewrap, self.limits, self._cgroup)
        elif self.isolation == "jail":
            self._scratch = self._scratch or tempfile.mkdtemp(prefix="minilb-jail-")
            preexec = functools.partial(jail.enter, self._scratch,
                                        _jail_layout(self.package_dir), set_limits, join,
                                        self.limits.tmp_bytes)
        else:  # the uid sandbox sees the real paths, and a private home instead of /tmp
            shutil.rmtree(self._scratch or "", ignore_errors=True)
            self._scratch = tempfile.mkdtemp(prefix="minilb-home-")
            env.update(HOME=self._scratch, TMPDIR=self._scratch)
            path = [str(self.package_dir), _site_packages()]
            preexec = functools.partial(uid_sandbox.enter, self._scratch, set_limits, join)
        self._buffer = b""
        self._channel, inside = socket.socketpair()
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, preexec_fn=preexec, pass_fds=(inside.fileno(),))
        channel_fd = inside.fileno()
        inside.close()
        self._jail_uid = None if self.isolation == "bubblewrap" else \
            jail.uid_of(self._process.pid)
        _LIVE[self._process.pid] = self._jail_uid
        try:
            self._send({"cells": self.cells, "given": self.given, "path": path,
                        "channel": channel_fd})
            self._meet_the_child()
            ready = self._receive(min(self.limits.startup_seconds,
                                      max(0.0, self._deadline - time.monotonic())), None)
        except _ChildGone as gone:
            self._kill()
            self._startup_kind = gone.kind
            self.startup_note = ("the notebook's code did not finish loading in time"
                                 if gone.kind == "timeout" else
                                 f"the notebook's code ended the process while loading ({gone})")
            return
        self.functions = {name for name in ready.get("functions", []) if isinstance(name, str)}
        self.cell_errors = cell_error_notes(ready.get("cell_errors"))  # in the grader's words
        if self._restarts == 0:  # a restart may follow hidden calls: its prints are not kept
            self.cell_outputs = checked_all(ready.get("cell_outputs"), len(self.cells))
        if self._out_of_memory():
            self.cell_errors.append(f"the sandbox ran out of memory (at most {self._memory_cap()}"
                                    " for all its processes and files together) and some of "
                                    "its processes were killed")

    def _meet_the_child(self) -> None:
        """Take the sockets the child made before running student code, note its pid (no
        student code has run yet, so the process tree is still the sandbox's own), let it go."""
        assert self._channel is not None and self._process is not None
        if not select.select([self._channel], [], [], self.limits.startup_seconds)[0]:
            raise _ChildGone("timeout", "timed out")
        try:
            _, fds, _, _ = socket.recv_fds(self._channel, 16, 16)
        except OSError:
            raise _ChildGone("crashed", self._exit_description()) from None
        self.peer_sockets = [socket.socket(fileno=fd) for fd in fds]
        self.serving_pid = _deepest_descendant(self._process.pid)
        self._channel.sendall(b"go")

    def _send_fds(self, fds: tuple[int, ...]) -> None:
        assert self._channel is not None
        try:
            socket.send_fds(self._channel, [b"f"], list(fds))
        except OSError:
            raise _ChildGone("crashed", self._exit_description()) from None

    def _send(self, message: dict) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message).encode() + b"\n")
            self._process.stdin.flush()
        except OSError:
            raise _ChildGone("crashed", self._exit_description()) from None

    def _receive(self, seconds: float, wanted_id: int | None) -> dict:
        """The next reply line for ``wanted_id`` (None: the ready message), or ``_ChildGone``."""
        assert self._process is not None and self._process.stdout is not None
        deadline, fd = time.monotonic() + seconds, self._process.stdout.fileno()
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                message = _parse(line)
                if message is not None and message.get("id") == wanted_id:
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise _ChildGone("timeout", "timed out")
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _ChildGone("crashed", self._exit_description())
            self._buffer += chunk
            if len(self._buffer) > self.limits.reply_bytes:
                raise _ChildGone("crashed", "the answer was far too large")

    def _cpu_seconds(self) -> float | None:
        """CPU time the sandbox's processes used so far, seen from the grader's side."""
        if self._process is None:
            return None
        try:
            if self._cgroup is not None:
                return self._cgroup.cpu_seconds()
            if self._jail_uid is not None:  # every process of the throwaway uid
                return cpu_seconds_of(processes_of(uid=self._jail_uid))
            return cpu_seconds_of(processes_of(root=self._process.pid))
        except OSError:
            return None

    def _memory_cap(self) -> str:
        return f"{self.limits.memory_bytes / (1 << 20):g} MiB"

    def _out_of_memory(self) -> bool:
        try:
            return self._cgroup is not None and self._cgroup.out_of_memory()
        except OSError:
            return False

    def _exit_description(self) -> str:
        assert self._process is not None
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the process stopped answering"
        if self._out_of_memory():
            return (f"the sandbox ran out of memory (at most {self._memory_cap()} for all its "
                    "processes and files together)")
        if code < 0 or code > 128:
            number = -code if code < 0 else code - 128
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ \
                else str(number)
            return f"the process was killed by {name}"
        return f"the process exited with code {code}"

    def _kill(self) -> None:
        process, self._process = self._process, None
        for sock in [*self.peer_sockets, *([self._channel] if self._channel else [])]:
            sock.close()
        self.peer_sockets, self._channel, self.serving_pid = [], None, None
        if process is None:
            return
        _kill_child(process.pid, self._jail_uid)
        _LIVE.pop(process.pid, None)
        process.wait()
        if self._cgroup is not None:
            self._cgroup.remove()
            _LIVE_CGROUPS.discard(self._cgroup)
            self._cgroup = None
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


def _deepest_descendant(pid: int) -> int | None:
    """The last process of the chain that starts at ``pid`` (bubblewrap, its init, Python)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    while True:
        children = [child for child, parent in parents.items() if parent == pid]
        if len(children) != 1:
            return pid if not children else None
        pid = children[0]


def _parse(line: bytes) -> dict | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
