"""One sandbox's cgroups: its memory (swap included), its processes and the CPU time it used.

Rlimits are per process (``RLIMIT_AS``: four forked children of 700 MiB are 2.8 GB under a
1 GiB limit) or per user (``RLIMIT_NPROC`` does not bind root, which bubblewrap's user is
outside its namespace when the grader runs as root). A cgroup caps the whole process tree of a
sandbox, whoever runs it, and counts what it used from the grader's side: CPU time that the
student's code cannot forge, and the memory peak. tmpfs pages the sandbox writes (``/dev/shm``,
``/tmp``) are charged to its memory cgroup too.

``SandboxCgroup.create`` makes the cgroup under the grader's own one, in cgroup v2 (one
directory, the controllers enabled for it) or v1 (one directory per controller). Where the
machine allows none (not root, a read-only ``/sys/fs/cgroup``: Gradescope's containers
probably), it returns None and the rlimits stay the only caps; CPU time is then read from
``/proc`` (``cpu_seconds_of``).
"""

import itertools
import os
import signal
import time
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpuacct")  # v1 names; v2 has "cpu" accounting built in
TICKS = os.sysconf("SC_CLK_TCK")
_numbers = itertools.count()


def _own_cgroups() -> dict[str, str]:
    """Controller ("" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            own[name] = path
    return own


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class SandboxCgroup:
    """``create`` it, ``join`` it between fork and exec, read it, ``remove`` it at the end."""

    def __init__(self, dirs: dict[str, Path], v2: bool) -> None:
        self.dirs, self.v2 = dirs, v2  # controller -> directory (v2: all the same one)

    @classmethod
    def create(cls, memory_bytes: int, max_processes: int) -> "SandboxCgroup | None":
        """A new cgroup capping memory+swap at ``memory_bytes`` and tasks at ``max_processes``;
        None where none can be made with all three controllers."""
        name = f"minilb-sandbox-{os.getpid()}-{next(_numbers)}"
        try:
            own = _own_cgroups()
            cgroup = cls._create_v1(own, name) if (CGROUPS / "memory").is_dir() else \
                cls._create_v2(own, name)
        except (OSError, ValueError):
            return None
        if cgroup is None:
            return None
        try:
            cgroup._limit(memory_bytes, max_processes)
        except OSError:
            cgroup.remove()
            return None
        return cgroup

    @classmethod
    def _create_v1(cls, own: dict[str, str], name: str) -> "SandboxCgroup | None":
        dirs: dict[str, Path] = {}
        for controller in CONTROLLERS:
            base = CGROUPS / controller / own.get(controller, "/").lstrip("/")
            try:
                (base / name).mkdir()
            except OSError:
                cls(dirs, v2=False).remove()
                return None
            dirs[controller] = base / name
        return cls(dirs, v2=False)

    @classmethod
    def _create_v2(cls, own: dict[str, str], name: str) -> "SandboxCgroup | None":
        base = CGROUPS / own.get("", "/").lstrip("/")
        enabled = (base / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            return None
        (base / name).mkdir()
        return cls(dict.fromkeys(CONTROLLERS, base / name), v2=True)

    def _limit(self, memory_bytes: int, max_processes: int) -> None:
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        if self.v2:
            _write(memory / "memory.max", str(memory_bytes))
            if (memory / "memory.swap.max").exists():
                _write(memory / "memory.swap.max", "0")
        else:
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():  # swap accounting is on
                _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
        _write(pids / "pids.max", str(max_processes))

    def join(self) -> None:
        """Put the calling process in the cgroup (every process it forks follows)."""
        for path in sorted(set(self.dirs.values())):
            _write(path / "cgroup.procs", str(os.getpid()))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) every process of the sandbox used so far, dead ones too."""
        if self.v2:
            for line in (self.dirs["cpuacct"] / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            raise OSError("cpu.stat has no usage_usec")
        return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9

    def memory_peak(self) -> int:
        """The most memory (bytes, tmpfs included) the sandbox held at once."""
        memory = self.dirs["memory"]
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        return int((memory / name).read_text())

    def out_of_memory(self) -> bool:
        """Whether the cap was hit and the kernel killed a process of the sandbox for it."""
        memory = self.dirs["memory"]
        name = "memory.events" if self.v2 else "memory.oom_control"
        for line in (memory / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def remove(self) -> None:
        """Kill whatever is left in the cgroup, then delete it (best effort, about 1 s)."""
        for path in set(self.dirs.values()):
            for _ in range(100):
                try:
                    pids = (path / "cgroup.procs").read_text().split()
                except OSError:
                    break  # already gone
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)  # the killed processes are still being torn down


def cpu_seconds_of(pids: set[int]) -> float:
    """CPU time of these processes and of the children they reaped, read from ``/proc``: the
    measure where no cgroup could be made."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended meanwhile
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def _real_uid(process: Path) -> int:
    """From ``status``: the directory's owner changes when a process makes itself undumpable."""
    for line in (process / "status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ValueError("no Uid line")


def processes_of(root: int | None = None, uid: int | None = None) -> set[int]:
    """The pids below ``root`` (itself included) or running as ``uid``, from ``/proc``."""
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if uid is not None and _real_uid(entry) == uid:
                found.add(int(entry.name))
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry.name)] = int(fields[1])
    if root is not None:
        found.add(root)
        grew = True
        while grew:
            below = {pid for pid, parent in parents.items() if parent in found} - found
            grew, found = bool(below), found | below
    return found
