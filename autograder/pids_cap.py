"""A cap on how many processes one sandbox may run, where the machine lets the grader set one.

``RLIMIT_NPROC`` counts the processes of a *user*, and does not bind root. Under bubblewrap
started by root the sandbox's user is root outside its namespace, so the rlimit alone would let
a fork bomb grow until the sandbox is killed, taking PIDs from the whole machine meanwhile. A
pids cgroup caps a process tree whoever runs it. Where none can be made (not root, a read-only
``/sys/fs/cgroup``), ``PidsCap.create`` returns None and the rlimits stay the only cap (the
jail runs as a throwaway user, where the rlimit does bind).
"""

import itertools
import os
import signal
import time
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
_numbers = itertools.count()


def _pids_root() -> Path | None:
    """Where pids cgroups can be made: the v1 pids hierarchy, or v2 with pids enabled."""
    v1 = CGROUPS / "pids"
    if (v1 / "cgroup.procs").exists():
        return v1 if os.access(v1, os.W_OK) else None
    try:
        enabled = (CGROUPS / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return CGROUPS if "pids" in enabled and os.access(CGROUPS, os.W_OK) else None


class PidsCap:
    """One sandbox's pids cgroup: ``join`` it between fork and exec, ``remove`` it at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> "PidsCap | None":
        root = _pids_root()
        if root is None:
            return None
        path = root / f"minilb-sandbox-{os.getpid()}-{next(_numbers)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_processes))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path)

    def join(self) -> None:
        """Put the calling process in the cgroup (every process it forks follows)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        """Kill whatever is left in the cgroup, then delete it (best effort, about 1 s)."""
        for _ in range(100):
            try:
                pids = (self.path / "cgroup.procs").read_text().split()
            except OSError:
                return  # already gone
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.01)  # the killed processes are still being torn down
