"""Memory and disk are capped per sandbox, not per process (issue 14.5).

Two memory-hostile notebooks (filling /dev/shm, /tmp and /dev, forking children that each hold
700 MiB) graded on two workers beside a correct one: the whole run, measured from outside as
the peak of a cgroup that holds ``minilb grade`` and everything it starts, stays within two
sandbox caps (plus the grader itself), the hostile students get 0 and the correct one full
marks. The positive control runs the same notebook without the sandbox's cgroup and shows the
measure sees a sandbox go far past its cap.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_fixtures import solved_notebook, write_notebook

from autograder.cgroups import SandboxCgroup
from autograder.sandbox import Limits, SandboxedStudent, bubblewrap_works

LESSON = "01_cost_matrix"
MiB = 1 << 20
CAP = Limits().memory_bytes
GRADER_ALLOWANCE = 640 * MiB  # the grader's own processes and the files they read

FILL = """
import os
def fill(path, megabytes=600):
    try:
        with open(path, "wb") as handle:
            for _ in range(megabytes):
                handle.write(b"x" * (1 << 20))
    except OSError:
        pass
for path in ("/dev/shm/fill", "/tmp/fill", "/dev/fill", os.path.expanduser("~/fill")):
    fill(path)
"""
FORK_HOLDERS = """
import os, time
children = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        try:
            held = b"x" * ({megabytes} << 20)  # written, so every page is really used
            time.sleep(3)
        finally:
            os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""
HOG = """
held = [b"x" * (300 << 20) for _ in range(3)]
"""


def _grade_in_cgroup(tmp_path: Path, students: dict[str, list[str]], *, sandbox_cgroups: bool,
                     workers: int = 2) -> tuple[int, dict[str, dict]]:
    """Run ``minilb grade`` in a cgroup of its own: (its memory peak, grades.csv by student)."""
    outer = SandboxCgroup.create(8 << 30, 4096)
    if outer is None:
        pytest.skip("no memory cgroup can be made here, so the sandbox has none either")
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    for student, cells in students.items():
        notebook = submissions / student / f"{LESSON}.ipynb"
        if cells:
            write_notebook(notebook, cells)
        else:
            solved_notebook(LESSON, notebook)
    program = "from minilb.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    if not sandbox_cgroups:
        program = ("from autograder import cgroups; cgroups.SandboxCgroup.create = "
                   "classmethod(lambda *args: None); " + program)
    try:
        done = subprocess.run(
            [sys.executable, "-c", program, "grade", str(submissions), "--out", str(out),
             "--workers", str(workers), "--lesson", LESSON],
            capture_output=True, text=True, timeout=600, preexec_fn=outer.join)
        assert done.returncode == 0, done.stderr[-2000:]
        peak = outer.memory_peak()
    finally:
        outer.remove()
    with (out / "grades.csv").open() as handle:
        return peak, {row["student"]: row for row in csv.DictReader(handle)}


@pytest.mark.skipif(os.getuid() != 0, reason="cgroups are made by root")
def test_two_memory_hostile_notebooks_on_two_workers_stay_within_two_caps(tmp_path: Path) -> None:
    assert bubblewrap_works(), "these tests need bubblewrap (make installs it)"
    peak, grades = _grade_in_cgroup(tmp_path, {
        "alice": [],  # the solved notebook
        "forker": [FILL, FORK_HOLDERS.format(children=4, megabytes=700)],
        "hog": [FILL, FORK_HOLDERS.format(children=2, megabytes=700), HOG],
    }, sandbox_cgroups=True)
    assert peak <= 2 * CAP + GRADER_ALLOWANCE, f"the class took {peak / MiB:.0f} MiB at peak"
    assert set(grades) == {"alice", "forker", "hog"}
    assert grades["alice"]["score"] == grades["alice"]["max_score"]
    assert float(grades["forker"]["score"]) == 0 and float(grades["hog"]["score"]) == 0
    for student in ("forker", "hog"):  # the reason, in the grader's words
        feedback = (tmp_path / "out" / "feedback" / f"{student}.md").read_text()
        assert "the sandbox ran out of memory (at most 1024 MiB" in feedback, feedback


@pytest.mark.skipif(os.getuid() != 0, reason="cgroups are made by root")
def test_control_without_the_sandbox_cgroup_the_measure_sees_a_sandbox_pass_its_cap(
        tmp_path: Path) -> None:
    peak, grades = _grade_in_cgroup(tmp_path, {
        "forker": [FORK_HOLDERS.format(children=3, megabytes=500)],
    }, sandbox_cgroups=False, workers=1)
    assert peak > CAP + 256 * MiB, f"only {peak / MiB:.0f} MiB: the measure cannot see a leak"
    assert set(grades) == {"forker"}


@pytest.mark.skipif(os.getuid() != 0, reason="cgroups are made by root")
def test_tmpfs_inside_the_sandbox_are_small_and_dev_is_read_only() -> None:
    probe = """
import os
def room(path):
    written = 0
    try:
        with open(path, "wb") as handle:
            for _ in range(200):
                handle.write(b"x" * (1 << 20))
                written += 1
    except OSError:
        pass
    return written
def sizes():
    return [room("/dev/shm/x"), room("/tmp/x"), room("/dev/x")]
"""
    limits = Limits(startup_seconds=20, call_seconds=20, notebook_seconds=60)
    with SandboxedStudent(probe, LESSON, limits) as student:
        shm, tmp, dev = student.call("sizes", timeout=20)
        cgroup = student._cgroup
        assert cgroup is not None and cgroup.memory_peak() < CAP
    assert shm <= limits.shm_bytes // MiB and tmp <= limits.tmp_bytes // MiB and dev == 0
    assert tmp > 0 and shm > 0  # positive control: writing is possible, only bounded
