"""`minilb grade` leaves no process behind: not after a run, not after Ctrl-C or SIGTERM
mid-batch, with bubblewrap or in the --unsafe-no-sandbox jail, even when student code forks,
sleeps, escapes into new sessions or loops forever.

Each run happens under ``process_tree.py``, a child subreaper: every orphan of the run is
reparented to it, so "nothing left" is checked on exactly the processes this test started.
"""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import blank_notebook, solved_notebook, write_notebook

from autograder.sandbox import bubblewrap_works

HERE = Path(__file__).resolve().parent
LESSON = "01_cost_matrix"
SLEEPERS = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
"""
ESCAPERS = """
import os, time
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)
"""
HOSTILE = {
    "b_sleepers": SLEEPERS,
    "c_escapers": ESCAPERS,
    "d_endless_loop": "def processing_time(*args):\n    while True:\n        pass",
    "e_fork_bomb": "import os, time\nfor _ in range(10_000):\n    try:\n        if os.fork() == 0:"
                   "\n            time.sleep(600)\n    except OSError:\n        break",
    "f_sleep_in_function": "import time\ndef processing_time(*args):\n    time.sleep(600)",
}
# `minilb grade`, optionally with bubblewrap made unavailable (then --unsafe-no-sandbox: the jail)
GRADE = """
import sys
from autograder import sandbox
if sys.argv[1] == "jail":
    sandbox.bubblewrap_works = lambda: False
from minilb.cli import main
sys.exit(main(["grade", *sys.argv[2:]]))
"""


def make_batch(root: Path) -> Path:
    solved_notebook(LESSON, root / "a_solved" / f"{LESSON}.ipynb")
    blank = blank_notebook(LESSON, root / "z_blank" / f"{LESSON}.ipynb")
    cells = [cell.source for cell in nbformat.read(blank, as_version=4).cells
             if cell.cell_type == "code"]
    for name, attack in HOSTILE.items():
        write_notebook(root / name / f"{LESSON}.ipynb", [*cells, attack])
    return root


def run_under_subreaper(tmp_path: Path, backend: str, signal_name: str | None = None) -> dict:
    submissions, out = make_batch(tmp_path / "class"), tmp_path / "out"
    grade = [sys.executable, "-c", GRADE, backend, str(submissions), "--out", str(out),
             "--workers", "2"] + (["--unsafe-no-sandbox"] if backend == "jail" else [])
    watcher = [sys.executable, str(HERE / "process_tree.py")]
    if signal_name:
        watcher += ["--signal", signal_name, "--when", str(out / ".cache" / "*" / "*.json")]
    done = subprocess.run([*watcher, "--", *grade], capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout)


BACKENDS = ["bubblewrap", "jail"]


@pytest.fixture(autouse=True)
def needs_bubblewrap():
    assert bubblewrap_works(), "these tests need bubblewrap (make installs it)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_whole_run_leaves_nothing(tmp_path, backend):
    report = run_under_subreaper(tmp_path, backend)
    assert report["returncode"] == 0, report["stderr"]
    assert report["left"] == {}
    assert "graded 7 notebooks" not in report["stderr"]  # the summary goes to stdout
    assert (tmp_path / "out" / "grades.csv").read_text().count("\n") == 8


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signal_name, code", [("INT", 130), ("TERM", 143)])
def test_a_stopped_run_leaves_nothing_and_keeps_finished_results(tmp_path, backend,
                                                                signal_name, code):
    report = run_under_subreaper(tmp_path, backend, signal_name)
    assert report["returncode"] == code, report["stderr"]
    assert report["left"] == {}
    last_line = report["stderr"].strip().splitlines()[-1]
    assert f"stopped by SIG{signal_name}" in last_line and "run again to resume" in last_line
    cached = list((tmp_path / "out" / ".cache").glob("*/*.json"))
    assert 1 <= len(cached) < 7
    assert not (tmp_path / "out" / "grades.csv").exists()
