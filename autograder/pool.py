"""The worker pool of a class run, and how SIGINT and SIGTERM stop it cleanly.

Workers are forked (they inherit the imported rubric). Ctrl-C, sent to the whole terminal
group, is the grader's to handle: inside ``stopped_by_signals`` it raises ``Interrupted`` in the
main thread, which stops every worker; each worker kills its sandboxes first
(``sandbox.kill_live``) and dies with the grader if the grader dies.
"""

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from autograder import sandbox
from autograder.processes import set_parent_death_signal

T = TypeVar("T")


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a class run (``signum`` says which); finished results are
    in the cache."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _stop_signals_handled_by(handler: Callable | int) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` while inside, then to what handled them before (a
    disposition left at "ignore" would be inherited by every program the caller starts). Only
    the main thread may set handlers: elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def stopped_by_signals() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` here, in the main thread, while inside."""

    def stop(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    return _stop_signals_handled_by(stop)


def signals_ignored() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM ignored while inside (a clean-up that a second Ctrl-C must not cut
    short)."""
    return _stop_signals_handled_by(signal.SIG_IGN)


def _worker_started() -> None:
    """In each pool worker: Ctrl-C (sent to the whole terminal group) is the grader's to
    handle; SIGTERM, or the grader's death, kills this worker's sandboxes and ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_stop)
    set_parent_death_signal(signal.SIGTERM)


def _worker_stop(signum: int, frame: object) -> None:
    sandbox.kill_live()
    os._exit(128 + signum)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End every worker (each kills its sandboxes first) and the pool's threads."""
    workers = list((pool._processes or {}).values())  # no public way to reach them
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(10)
        if worker.is_alive():  # stuck: its sandboxes die with it (they watch their parent)
            worker.kill()
            worker.join()
    pool.shutdown(wait=True, cancel_futures=True)


def run_in_pools(task: Callable[..., T], jobs: list[tuple[object, tuple]], workers: int,
                 failed: Callable[[object, Exception], T]) -> Iterator[tuple[object, T]]:
    """Each job's item with ``task(*arguments)`` (or ``failed(item, error)``), as they finish.

    ``jobs`` are (item, arguments) pairs. A worker that dies breaks its pool and takes the jobs
    still in it along: those go to a fresh pool; what a second pool loses runs alone, each job
    in a pool of its own, so a job that kills its worker every time fails alone."""
    for _ in range(2):
        jobs = yield from _one_pool(task, jobs, workers, failed, last=False)
        if not jobs:
            return
    for job in jobs:
        yield from _one_pool(task, [job], 1, failed, last=True)


def _one_pool(task: Callable[..., T], jobs: list[tuple[object, tuple]], workers: int,
              failed: Callable[[object, Exception], T],
              last: bool) -> Generator[tuple[object, T], None, list[tuple[object, tuple]]]:
    """Run ``jobs`` in one pool; return those it lost to a broken pool (none if ``last``)."""
    lost = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(
        "fork"), initializer=_worker_started)  # forked: workers inherit what is imported
    try:
        futures = {}
        for item, arguments in jobs:
            try:
                futures[pool.submit(task, *arguments)] = (item, arguments)
            except BrokenProcessPool:  # a worker died while the pool was being filled
                lost.append((item, arguments))
        for future in as_completed(futures):
            item, arguments = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool as error:
                if not last:
                    lost.append((item, arguments))
                    continue
                result = failed(item, error)
            except Exception as error:  # noqa: BLE001  (say so for this one, go on)
                result = failed(item, error)
            yield item, result
    except BaseException:  # Ctrl-C, SIGTERM, or the caller stopped reading (GeneratorExit)
        with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
            _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return lost
