"""Linux process control the standard library lacks: ``prctl`` flags, read through ctypes.

- ``set_parent_death_signal``: the kernel signals this process when its parent dies, so a
  grader's child never outlives it (a pool worker whose grader was killed, a sandboxed child
  whose worker died).
- ``set_child_subreaper``: orphaned descendants are reparented to this process instead of init,
  so it can find and reap them (the tests use it to prove nothing is left behind).
"""

import ctypes
import os

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl({option}): {os.strerror(number)}")


def set_parent_death_signal(signal_number: int) -> None:
    """Receive ``signal_number`` when the parent thread dies (cleared by fork and setuid)."""
    _prctl(PR_SET_PDEATHSIG, signal_number)


def set_child_subreaper(enabled: bool = True) -> None:
    """Adopt orphaned descendants (instead of letting them go to init)."""
    _prctl(PR_SET_CHILD_SUBREAPER, int(enabled))
