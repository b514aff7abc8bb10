"""Harness for ``reap_children``: the harness forks the children, the student's function reaps.

``run(reap_children, exits, one_running)`` collects whatever earlier code left finished, then
forks one child per entry of ``exits``: a child exits with that code, or, for a negative entry
-N, is killed by signal N. Once they have all ended (still uncollected: zombies), and with one
more child kept running if ``one_running``, it calls the student's function. If the call has not
returned after ``BLOCKED_AFTER`` seconds it must be waiting for the running child, so a watchdog
lets that child end and the call can come back.

Answers ``{"kind": type name of the result, "codes": [the code reported per child, in order,
None if missing], "others": int (other keys), "running_reported": bool, "left": int (children
still uncollected), "seconds": float, "blocked": bool, "raised": names or None}``.
"""

import os
import threading

from autograder.hidden.lesson04_harness_tools import (
    SLACK,
    collect_finished,
    exception_names,
    exit_code,
    fork,
    getpid,
    has_exited,
    kill,
    leave,
    monotonic,
    setting_up,
    sleep,
)

BLOCKED_AFTER = 1.0  # seconds: a call that waits this long is waiting for the running child


def _child(code: int, hold: int | None = None) -> int:
    pid = fork()
    if pid == 0:
        try:
            if hold is not None:
                os.read(hold, 1)  # until the harness lets it go
            if code < 0:
                kill(getpid(), -code)
        finally:
            leave(max(code, 0))
    return pid


def _wait_until_exited(pids: list[int]) -> None:
    deadline = monotonic() + 5 * SLACK
    while not all(has_exited(pid) for pid in pids) and monotonic() < deadline:
        sleep(0.005)


def _reported(result: object, pids: list[int], running: int | None) -> dict:
    if type(result) is not dict:
        return {"kind": type(result).__name__, "codes": [None] * len(pids), "others": 0,
                "running_reported": False}  # fmt: skip
    codes = [result.get(pid) for pid in pids]
    return {
        "kind": "dict",
        "codes": [code if type(code) is int else None for code in codes],
        "others": len(set(result) - {*pids, running}),
        "running_reported": running is not None and running in result,
    }


def run(reap_children, exits: list[int], one_running: bool) -> dict:  # noqa: ANN001
    collect_finished()
    with setting_up():
        pids = [_child(code) for code in exits]
        _wait_until_exited(pids)
        hold_r, hold_w = os.pipe()
        running = _child(0, hold_r) if one_running else None
    released = threading.Event()  # set when the watchdog, not the harness, freed the child

    def release() -> None:
        released.set()
        os.write(hold_w, b"go")

    watchdog = threading.Timer(BLOCKED_AFTER, release)
    started, seen = monotonic(), {"raised": None}
    watchdog.start()
    try:
        seen.update(_reported(reap_children(), pids, running))
    except NotImplementedError:
        raise
    except BaseException as error:  # noqa: BLE001  (reported: it may come after blocking)
        seen.update(_reported(None, pids, running), raised=exception_names(error))
    finally:
        seen["seconds"] = monotonic() - started
        watchdog.cancel()
        watchdog.join()
        # Blocked means the call came back only once the watchdog had let the running child go:
        # a verdict that does not depend on how busy the machine is.
        seen["blocked"] = released.is_set()
        seen["left"] = sum(has_exited(pid) for pid in pids)
        os.write(hold_w, b"go")  # the running child may end now
        os.close(hold_w)
        os.close(hold_r)
        for pid in [*pids, running]:
            if pid is not None:
                exit_code(pid, SLACK)
    return seen
