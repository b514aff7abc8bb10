"""Our own process tree, so a test can prove that nothing it started is left running.

A test makes itself a child subreaper (``autograder.processes.set_child_subreaper``): then
every orphan among its descendants is reparented to it instead of init, and ``descendants``
(the ppid chain read from /proc/<pid>/stat) finds everything it started, however far it went
(a new session, a double fork). No other process on the machine is ever looked at beyond its
parent id, so graders running beside the tests cannot disturb them.

Run as a script, it is the subreaper for one command (a ``minilb grade`` run):
``python process_tree.py [--signal INT|TERM --when DIR/GLOB] -- command ...`` starts the command
in its own session, sends the signal (to its process group for INT, as a terminal's Ctrl-C does;
to the process for TERM, as ``kill`` does) once a file matches the glob, waits for it, then
waits until no descendant is left and prints a JSON report: returncode, left, stderr.
"""

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.processes import set_child_subreaper  # noqa: E402


def _parent_ids() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process (the fields after the command name)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        table[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return table


def descendants(root: int | None = None) -> dict[int, str]:
    """Every descendant of ``root`` (default: this process): pid -> state (Z: a zombie)."""
    root = os.getpid() if root is None else root
    table = _parent_ids()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = table[pid][1]
        todo += children.get(pid, [])
    return found


def _reap(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)  # only adopted orphans: never a child someone waits for
        except ChildProcessError:
            pass


def left_behind(before: set[int], seconds: float = 20.0) -> dict[int, str]:
    """Descendants not in ``before`` that are still there after ``seconds`` (reaping adopted
    zombies meanwhile); returns as soon as there are none."""
    deadline = time.monotonic() + seconds
    while True:
        left = {pid: state for pid, state in descendants().items() if pid not in before}
        _reap(set(left))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _wait_for(pattern: str, process: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not glob.glob(pattern) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signal", choices=["INT", "TERM"])
    parser.add_argument("--when", help="send the signal once a file matches this glob")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    set_child_subreaper()
    errors = tempfile.TemporaryFile()  # not a pipe: a leftover process must not hold us up
    process = subprocess.Popen(args.command, stdout=subprocess.DEVNULL, stderr=errors,
                               start_new_session=True)
    if args.signal:
        _wait_for(args.when, process)
        if process.poll() is None:
            if args.signal == "INT":
                os.killpg(process.pid, signal.SIGINT)
            else:
                os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=600)
    left = left_behind(set())
    errors.seek(0)
    stderr = errors.read().decode(errors="replace")
    print(json.dumps({"returncode": process.returncode, "left": left, "stderr": stderr}))
    for pid in left:  # reported; now they must not outlive the test either
        os.kill(pid, signal.SIGKILL)
    left_behind(set())
    return 0


if __name__ == "__main__":
    sys.exit(main())
