"""Points never depend on load (issue 15.1): speed budgets are CPU time of the sandbox.

Lesson 3 grades speed (``lesson03.BUDGET`` per call on 40 requests). The reference and a correct
but slower solver (0.5 s of CPU per large batch, under the 1 s budget) are graded while six
CPU-bound processes run beside them: both get full marks. The same calls' wall time is
recorded too, and at least one large call takes longer than the budget by the clock: the
positive control that the old wall-clock budget would have taken points here.
"""

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import solved_notebook

from autograder import sandbox
from autograder.grade import Submission, grade_submission
from autograder.hidden import lesson03
from autograder.sandbox import Limits, SandboxedStudent, bubblewrap_works

LESSON = "03_optimal_makespan"
SLOWER = """
import time as _time
_reference_solver = optimal_makespan

def optimal_makespan(requests, fleet=DEFAULT_FLEET):
    if len(requests) >= 40:  # some honest extra work on the large batches: CPU, not sleep
        started = _time.process_time()
        while _time.process_time() - started < 0.5:
            pass
    return _reference_solver(requests, fleet)
"""
HOGS = 6


@pytest.fixture
def six_cpu_hogs():
    # Each in a session of its own: the scheduler shares the CPU between sessions first
    # (autogroups), and the sandbox runs in its own session.
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(HOGS)]
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait()


@pytest.fixture
def timed_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float, float | None]]:
    """(requests, wall seconds, CPU seconds) of every optimal_makespan call graded."""
    calls: list[tuple[int, float, float | None]] = []
    original = SandboxedStudent.call

    def call(self, function, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        started = time.monotonic()
        try:
            return original(self, function, *args, **kwargs)
        finally:
            if function == "optimal_makespan":
                requests = args[1] if kwargs.get("harness") else args[0]
                calls.append((len(requests), time.monotonic() - started,
                              self.cpu_seconds_of_last_call))

    monkeypatch.setattr(SandboxedStudent, "call", call)
    return calls


def _slower_notebook(path: Path) -> Path:
    notebook = nbformat.read(solved_notebook(LESSON, path), as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(SLOWER))
    nbformat.write(notebook, path)
    return path


def test_lesson3_full_marks_beside_six_cpu_bound_processes(
        tmp_path: Path, six_cpu_hogs: list, timed_calls: list) -> None:
    assert bubblewrap_works(), "these tests need bubblewrap (make installs it)"
    reference = solved_notebook(LESSON, tmp_path / "reference" / f"{LESSON}.ipynb")
    slower = _slower_notebook(tmp_path / "slower" / f"{LESSON}.ipynb")
    for name, path in (("reference", reference), ("slower", slower)):
        grade = grade_submission(Submission(name, LESSON, path))
        assert grade.score == grade.max_score, (name, grade.exercises, grade.notes)
    large = [(wall, cpu) for size, wall, cpu in timed_calls if size >= lesson03.LARGE]
    assert large and all(cpu is not None and cpu < lesson03.BUDGET for _, cpu in large)
    slowest = max(wall for wall, _ in large)
    assert all(hog.poll() is None for hog in six_cpu_hogs)  # the load was there throughout
    print(f"large calls: {len(large)}, slowest {slowest:.2f} s wall, CPU at most "
          f"{max(cpu for _, cpu in large):.2f} s")
    assert slowest > lesson03.BUDGET, ("no large call took longer than the budget by the "
                                       "clock: this run does not show that load is ignored")


def test_control_a_solver_over_the_cpu_budget_still_loses_the_speed_groups(
        tmp_path: Path) -> None:
    too_slow = SLOWER.replace("< 0.5", "< 1.5")
    notebook = nbformat.read(solved_notebook(LESSON, tmp_path / "s" / f"{LESSON}.ipynb"),
                             as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(too_slow))
    path = tmp_path / "s" / f"{LESSON}.ipynb"
    nbformat.write(notebook, path)
    grade = grade_submission(Submission("slow", LESSON, path))
    solver = next(item for item in grade.exercises if item["name"] == "optimal_makespan")
    assert solver["score"] == solver["max_score"] - 1.0, solver  # both speed groups lost
    assert any(lesson03.TOO_SLOW in line for line in solver["feedback"]), solver


SPIN = """
import time
def spin(seconds):
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass
    return 0
def sleep(seconds):
    time.sleep(seconds)
    return 0
"""


@pytest.mark.parametrize("measure", ["cgroup", "proc"])
def test_the_cpu_time_of_a_call_is_measured_from_outside(
        measure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if measure == "proc":  # where no cgroup can be made: /proc of the sandbox's processes
        monkeypatch.setattr(sandbox.SandboxCgroup, "create", classmethod(lambda *args: None))
    limits = Limits(startup_seconds=20, call_seconds=20, notebook_seconds=60)
    with SandboxedStudent(SPIN, "01_cost_matrix", limits) as student:
        if measure == "proc":
            assert student._cgroup is None
        student.call("spin", 0.4, timeout=20)
        spun = student.cpu_seconds_of_last_call
        student.call("sleep", 0.4, timeout=20)
        slept = student.cpu_seconds_of_last_call
    assert spun is not None and 0.35 <= spun < 2.0, spun
    assert slept is not None and slept < 0.2, slept  # waiting is not computing
