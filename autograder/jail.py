"""The sandbox where bubblewrap cannot run (``--unsafe-no-sandbox``): root only.

The child is started by ``enter`` (a ``preexec_fn``), which runs as root between fork and exec:

0. the sandbox's cgroup (``cgroups.py``: memory with swap, pids, CPU time), where one exists;
1. new mount, network, IPC and UTS namespaces (no network but its own loopback, which lesson 4's
   socket exercises use; mounts stay private);
2. a tmpfs root holding read-only bind mounts of exactly what bubblewrap would show: the system
   directories, the Python installation, site-packages, this lesson's copy of ``minilb`` and
   ``/dev/null``, plus a small writable ``/tmp``; then ``chroot`` into it (the root itself is
   a read-only 1 MiB tmpfs, so ``/tmp`` is the only place to write). The kit, its hidden
   tests, the reference solution and other students' work are simply not in that tree;
3. rlimits, then a throwaway user id (``UID_BASE`` + the child's pid: unique on this machine,
   so the process limit counts only this child, and ``kill_all`` can end every process it made,
   even those that left its session);
4. ``PR_SET_PDEATHSIG``: the child dies with the process that started it.

What it lacks compared with bubblewrap is a PID namespace (``kill_all`` stands in for it).
Inside a container without ``CAP_SYS_ADMIN`` it cannot mount: ``works`` says so.
"""

import ctypes
import fcntl
import functools
import os
import signal
import socket
import struct
import subprocess
from collections.abc import Callable

from autograder.processes import set_parent_death_signal

UID_BASE = 2_000_000_000  # + a pid (at most 2**22): far above any real account
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
IFREQ = struct.Struct("16sH22x")  # struct ifreq: the interface name, then its flags

# (kind, source, target): "bind" shows source read-only at target, "symlink" links target to
# source. The same layout bubblewrap gets (sandbox.layout).
Mount = tuple[str, str, str]

_libc = ctypes.CDLL(None, use_errno=True)


def uid_of(pid: int) -> int:
    return UID_BASE + pid


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def encoded(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(_libc.mount(encoded(source), encoded(target), encoded(fstype), flags, encoded(data)),
           f"mount {target}")


def _loopback_up() -> None:
    """A new network namespace starts with ``lo`` down: bring it up (as bubblewrap does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as handle:
        current = IFREQ.unpack(fcntl.ioctl(handle, SIOCGIFFLAGS, IFREQ.pack(b"lo", 0)))[1]
        fcntl.ioctl(handle, SIOCSIFFLAGS, IFREQ.pack(b"lo", current | IFF_UP))


def enter(root: str, layout: list[Mount], set_limits: Callable[[], None],
          join_cgroup: Callable[[], None] = lambda: None, tmp_bytes: int = 64 << 20) -> None:
    """Between fork and exec, as root: build the jail at ``root``, enter it, drop to its uid.

    ``join_cgroup`` runs first (``/sys/fs/cgroup`` is not in the jail); ``/tmp`` holds at most
    ``tmp_bytes``, charged to that cgroup's memory."""
    join_cgroup()
    os.umask(0o022)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _loopback_up()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the machine
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for kind, source, target in layout:
        inside = root + target
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        if kind == "symlink":
            os.symlink(source, inside)
            continue
        if os.path.isdir(source):
            os.makedirs(inside, exist_ok=True)
        else:
            open(inside, "w").close()
        _mount(source, inside, None, MS_BIND | MS_REC)
        device = target.startswith("/dev/")  # /dev/null must stay a usable device
        _mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
               | (0 if device else MS_NODEV))
    os.makedirs(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir("/tmp")
    set_limits()
    uid = uid_of(os.getpid())
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    set_parent_death_signal(signal.SIGKILL)  # after setuid, which clears it


def kill_all(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (a jail's throwaway uid), wherever it went."""
    helper = os.fork()
    if helper == 0:  # kill(-1) from that uid reaches exactly that uid's processes
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


@functools.cache
def works(python: str, root: str, layout: tuple[Mount, ...]) -> bool:
    """Whether a jail can be built here (root, and allowed to mount): probed once."""
    if os.getuid() != 0:
        return False
    try:
        done = subprocess.run([python, "-I", "-S", "-c", "pass"], capture_output=True,
                              timeout=30, preexec_fn=functools.partial(
                                  enter, root, list(layout), lambda: None))
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
