"""The sandbox where neither bubblewrap nor the jail can run: a throwaway user id.

Gradescope runs its container as root, but (like Docker's defaults) probably without
``CAP_SYS_ADMIN`` and with new user namespaces refused: no mounts, no namespaces. What root can
still do there is change user. ``enter`` runs between fork and exec, as root:

1. the sandbox's cgroup (memory, pids, CPU time) where the machine lets the grader make one;
2. rlimits, then a throwaway user id (``jail.uid_of``: ``UID_BASE`` + the child's pid, so the
   process limit binds it and ``jail.kill_all`` ends every process it made, wherever it went);
3. ``PR_SET_PDEATHSIG``; the grader starts it in a new session and kills that at the end,
   with every process of the uid, and deletes what the uid left in /tmp, /var/tmp, /dev/shm.

What hides the kit is file modes, not a private view: the student's code sees the machine's
files as "other" sees them. So before it is used, ``works`` checks from a process of a
throwaway uid that the hidden tests and the reference solution cannot be read (Gradescope's
``run_autograder`` makes ``/autograder/source`` unreadable to other users first) and that the
Python interpreter can run. It has no private network and no PID namespace: student code can
connect to the machine's other ports and see its process list.
"""

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence

from autograder.jail import uid_of
from autograder.processes import set_parent_death_signal

PROBE_UID = uid_of(0)  # never a real pid's: pids start at 1


def drop_to(uid: int) -> None:
    """Become ``uid`` (and the group of that number), with no supplementary groups."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def enter(home: str, set_limits: Callable[[], None], join_cgroup: Callable[[], None]) -> None:
    """Between fork and exec, as root: caps, then the throwaway uid, working in ``home``."""
    join_cgroup()
    set_limits()
    uid = uid_of(os.getpid())
    os.chown(home, uid, uid)
    os.umask(0o077)
    drop_to(uid)
    os.chdir(home)
    set_parent_death_signal(signal.SIGKILL)  # after setuid, which clears it


SHARED_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # where any user may write


def remove_files_of(uid: int) -> None:
    """Delete what ``uid`` left in the machine's shared writable directories."""
    for directory in SHARED_DIRS:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


READ_PROBE = """
import sys
for path in sys.argv[1:]:
    try:
        open(path, "rb").close()
    except OSError:
        continue
    print(path)
    sys.exit(3)
"""


def readable_by_others(python: str, paths: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether ``python`` runs as a throwaway uid, and which of ``paths`` that uid can read."""
    try:
        done = subprocess.run([python, "-I", "-S", "-c", READ_PROBE, *paths],
                              capture_output=True, timeout=30, cwd="/",
                              preexec_fn=functools.partial(drop_to, PROBE_UID))
    except (OSError, subprocess.SubprocessError):
        return False, []
    if done.returncode not in (0, 3):
        return False, []
    return True, done.stdout.decode(errors="replace").split()


@functools.cache
def works(python: str, secrets: tuple[str, ...]) -> str:
    """"" when the uid sandbox can run here and keeps ``secrets`` unreadable, else why not."""
    if os.getuid() != 0:
        return "it needs root (to change to a throwaway user id)"
    runs, readable = readable_by_others(python, secrets)
    if not runs:
        return f"{python} cannot run as another user (is it in a directory only root can enter?)"
    if readable:
        return (f"other users can read {readable[0]}: make the kit unreadable to them first "
                "(chmod -R go-rwx KIT)")
    return ""
