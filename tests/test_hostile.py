"""Hostile submissions gain nothing, and honest students in the same batch are graded exactly.

One class, graded in one run with two workers: honest students (solved, blank, one mistake)
and a dozen submissions that attack the grader. Every attack sits on top of the blank handout,
so gaining nothing means scoring 0; the honest scores must equal what each notebook scores
when graded alone; afterwards no process the run started may be left (checked on this test's
own process tree: the test adopts orphans as a child subreaper while it runs).
"""

import json
import os
import socket
import threading
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import blank_notebook, mistaken_notebook, solved_notebook, write_notebook
from process_tree import descendants, left_behind

from autograder import sandbox
from autograder.grade import Submission, grade_class, grade_submission
from autograder.processes import set_child_subreaper
from autograder.sandbox import Limits, bubblewrap_works

KIT = Path(__file__).resolve().parent.parent
LESSON = "01_cost_matrix"
LIMITS = Limits(startup_seconds=4, call_seconds=1, notebook_seconds=15, cpu_seconds=10)
PREAMBLE = "from minilb.costs import *\n"
ALWAYS_EQUAL = """
class AlwaysEqual(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
def processing_time(kind, request_type, length): return AlwaysEqual(1)
def cost_matrix(fleet=DEFAULT_FLEET): return {t: [AlwaysEqual(1)] * len(fleet) for t in 'VPM'}
"""
STEAL = """
import pathlib
def _steal(path):
    try:
        namespace = {{}}
        exec(pathlib.Path(path).read_text(), namespace)
        return namespace
    except Exception:
        return None
stolen = _steal({reference!r}) or _steal({hidden!r}) or {{}}
if 'processing_time' in stolen:
    processing_time, cost_matrix = stolen['processing_time'], stolen['cost_matrix']
"""
WRITE_OUTSIDE = """
for target in {targets!r}:
    try:
        with open(target, 'w') as f:
            f.write('student,lesson,score,max_score\\nmallory,01_cost_matrix,10,10\\n')
    except OSError:
        pass
"""
FORGE_REPLIES = """
import os, sys
for fd in range(1, 20):
    try:
        os.write(fd, b'{"ready": true, "functions": ["processing_time"], "cell_errors": []}\\n')
        for n in range(1, 400):
            os.write(fd, ('{"id": %d, "ok": 6}\\n' % n).encode())
    except OSError:
        pass
print('{"id": 1, "ok": 6}')
"""
NETWORK = """
import socket
def processing_time(kind, request_type, length):
    connection = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)
    return int(connection.recv(10))
"""
MONKEYPATCH = """
import builtins, json
builtins.isinstance = lambda *args: True
builtins.len = lambda *args: 0
json.dumps = lambda *args, **kwargs: '{"id": 1, "ok": 6}'
json.loads = lambda *args, **kwargs: {"id": 0, "function": "processing_time", "args": []}
"""

ATTACKS = {
    "exit_at_import": "import os\nos._exit(0)",
    "sys_exit_at_import": "import sys\nsys.exit(0)",
    "endless_loop_at_import": "while True:\n    pass",
    "endless_loop_in_function": "def processing_time(*args):\n    while True:\n        pass",
    "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(50_000_000))",
    "fork_bomb": "import os, time\nfor _ in range(10_000):\n    try:\n        if os.fork() == 0:"
                 "\n            time.sleep(60)\n    except OSError:\n        break",
    "kill_parent": "import os, signal\nfor pid in (os.getppid(), 1, -1):\n    try:\n"
                   "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass",
    "always_equal": ALWAYS_EQUAL,
    "flood_output": "import sys\nfor _ in range(20_000):\n    print('x' * 1000)\n"
                    "    sys.stderr.write('y' * 1000)",
    "forged_replies": FORGE_REPLIES,
    "monkeypatch_builtins": MONKEYPATCH,
}


class Listener:
    """A TCP server on 127.0.0.1 port 0 that counts connections (there must be none)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.sendall(b"6")
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.server.close()


@pytest.fixture
def subreaper():
    """This test process adopts orphans while the test runs; yields the pids it had before."""
    set_child_subreaper()
    try:
        yield set(descendants())
    finally:
        set_child_subreaper(False)


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.stop()


@pytest.mark.parametrize("backend", ["bubblewrap", "jail"])
def test_hostile_batch(tmp_path: Path, listener: Listener, subreaper: set[int], backend: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert bubblewrap_works(), "these tests need bubblewrap (make installs it)"
    if backend == "jail":  # as where bubblewrap cannot run, with --unsafe-no-sandbox
        monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    honest = {
        "alice": solved_notebook(LESSON, submissions / "alice" / f"{LESSON}.ipynb"),
        "bob": blank_notebook(LESSON, submissions / "bob" / f"{LESSON}.ipynb"),
        "carol": mistaken_notebook(LESSON, submissions / "carol" / f"{LESSON}.ipynb",
                                   "length * FACTORS[kind][request_type]", "length"),
    }
    blank_cells = [cell.source for cell in nbformat.read(honest["bob"], as_version=4).cells
                   if cell.cell_type == "code"]
    attacks = dict(ATTACKS)
    attacks["network"] = NETWORK.format(port=listener.port)
    attacks["read_reference_and_hidden"] = STEAL.format(
        reference=str(KIT / "reference_solution" / "minilb" / "costs.py"),
        hidden=str(KIT / "autograder" / "hidden" / "lesson01.py"))
    outside = [str(out / "grades.csv"), str(submissions / "alice" / "grades.csv"),
               str(KIT / "pwned.txt"), "/tmp/pwned-by-student"]
    attacks["write_outside"] = WRITE_OUTSIDE.format(targets=outside)
    for name, attack in attacks.items():
        write_notebook(submissions / name / f"{LESSON}.ipynb",
                       [*blank_cells, PREAMBLE + attack])
    forged = {"score": 10, "tests": []}  # lying files next to the notebook are ignored
    (submissions / "forged_replies" / "results.json").write_text(json.dumps(forged))
    (submissions / "forged_replies" / "grades.csv").write_text("forged_replies,01,10,10\n")
    solo = {name: grade_submission(Submission(name, LESSON, path)).score
            for name, path in honest.items()}
    assert solo["alice"] == 10 and solo["bob"] == 0 and 0 < solo["carol"] < 10

    run = grade_class(submissions, out, workers=2, limits=LIMITS, allow_unsafe=True)

    scores = {grade.student: grade.score for grade in run.grades}
    assert len(attacks) >= 12
    assert {name: scores[name] for name in honest} == solo
    assert {name: scores[name] for name in attacks} == dict.fromkeys(attacks, 0.0)
    assert listener.connections == 0
    assert not any(os.path.exists(path) for path in outside[2:])
    assert not (submissions / "alice" / "grades.csv").exists()
    rows = (out / "grades.csv").read_text().splitlines()
    assert "mallory" not in "\n".join(rows) and len(rows) == 1 + len(honest) + len(attacks)
    results = json.loads((out / "results" / "forged_replies" / LESSON / "results.json").read_text())
    assert results["score"] == 0
    assert left_behind(subreaper) == {}
    by_name = {grade.student: grade for grade in run.grades}
    assert any("did not finish loading" in note
               for note in by_name["endless_loop_at_import"].notes)
    assert any("ended the process" in note for note in by_name["exit_at_import"].notes)
