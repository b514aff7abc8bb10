"""Run a command where new namespaces are refused, as Docker's default seccomp profile does.

``python no_namespaces.py COMMAND...`` installs a seccomp filter (x86-64) that makes
``unshare`` and ``setns`` fail with EPERM, ``clone`` with any ``CLONE_NEW*`` flag fail with
EPERM, and ``clone3`` fail with ENOSYS (so the C library falls back to ``clone``), then execs
the command. Together with ``capsh --drop=cap_sys_admin`` this is the container the tests
take Gradescope's to be: root, no CAP_SYS_ADMIN, no new user namespaces. Test helper only.
"""

import ctypes
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
AUDIT_ARCH_X86_64 = 0xC000003E
UNSHARE, SETNS, CLONE, CLONE3 = 272, 308, 56, 435
CLONE_NEW_ANY = 0x7E020000  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
LD_W_ABS, JEQ_K, JSET_K, RET_K = 0x20, 0x15, 0x45, 0x06
ALLOW, ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


# seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16. Jumps count instructions skipped.
FILTER = b"".join([
    _op(LD_W_ABS, 4),                      # 0  arch
    _op(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),   # 1  x86-64: go on at 3
    _op(RET_K, ALLOW),                     # 2
    _op(LD_W_ABS, 0),                      # 3  syscall number
    _op(JEQ_K, UNSHARE, 5, 0),             # 4  -> 10
    _op(JEQ_K, SETNS, 4, 0),               # 5  -> 10
    _op(JEQ_K, CLONE3, 4, 0),              # 6  -> 11
    _op(JEQ_K, CLONE, 0, 4),               # 7  clone: 8, else 12
    _op(LD_W_ABS, 16),                     # 8  its flags
    _op(JSET_K, CLONE_NEW_ANY, 0, 2),      # 9  a new namespace: 10, else 12
    _op(RET_K, ERRNO | EPERM),             # 10
    _op(RET_K, ERRNO | ENOSYS),            # 11
    _op(RET_K, ALLOW),                     # 12
])


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def refuse_namespaces() -> None:
    if platform.machine() != "x86_64":
        raise SystemExit("no_namespaces.py: x86-64 only")
    libc = ctypes.CDLL(None, use_errno=True)
    program = SockFprog(len(FILTER) // 8, FILTER)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(
            PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


if __name__ == "__main__":
    refuse_namespaces()
    os.execvp(sys.argv[1], sys.argv[1:])
