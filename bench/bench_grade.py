"""Grading speed: `minilb grade` against `nbgrader autograde`, on the same notebooks, same run.

A class of 100 students hands in lessons 1 and 2 (solved, blank, or with a mistake). We time
`minilb grade --workers 2` on the whole class (sandbox on) and `nbgrader autograde` on the
first students' lesson-1 notebooks (nbgrader runs a Jupyter kernel per notebook, so a subset
keeps the benchmark short), and print seconds per notebook for both and their ratio.
Targets: at least 8x faster than nbgrader (the exit status; both are timed in the same run,
so a busy machine slows both alike), and about 0.2 s per notebook on an idle 2-core machine
(printed, not enforced: a shared machine's load decides it).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT / "tests"))

from notebook_fixtures import blank_notebook, mistaken_notebook, solved_notebook  # noqa: E402

from autograder.sandbox import bubblewrap_works  # noqa: E402

STUDENTS, NBGRADER_SUBSET = 100, 8
LESSONS = ("01_cost_matrix", "02_greedy_balancing")
MISTAKE = ("length * FACTORS[kind][request_type]", "length")
MINILB = str(Path(sys.executable).parent / "minilb")
NBGRADER = str(Path(sys.executable).parent / "nbgrader")


def make_class(root: Path) -> None:
    for number in range(STUDENTS):
        student = root / f"student{number:03d}"
        for lesson in LESSONS:
            path = student / f"{lesson}.ipynb"
            if number % 10 == 9:
                blank_notebook(lesson, path)
            elif number % 10 == 8 and lesson == LESSONS[0]:
                mistaken_notebook(lesson, path, *MISTAKE)
            else:
                solved_notebook(lesson, path)


def time_minilb(submissions: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([MINILB, "grade", str(submissions), "--out", str(out), "--workers", "2"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def time_nbgrader(submissions: Path, course: Path) -> float:
    lesson = LESSONS[0]
    (course / "source" / lesson).mkdir(parents=True)
    shutil.copy(KIT / "lessons" / lesson / f"{lesson}.ipynb", course / "source" / lesson)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = r'{course}'\n"
        "c.ExecutePreprocessor.timeout = 120\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = {"cwd": course, "check": True, "capture_output": True, "env": env}  # alembic on PATH
    subprocess.run([NBGRADER, "generate_assignment", lesson, "--force"], **run)
    students = sorted(submissions.iterdir())[:NBGRADER_SUBSET]
    for student in students:
        target = course / "submitted" / student.name / lesson
        target.mkdir(parents=True)
        shutil.copy(student / f"{lesson}.ipynb", target)
    start = time.perf_counter()
    subprocess.run([NBGRADER, "autograde", lesson, "--force"], **run)
    return (time.perf_counter() - start) / len(students)


def main() -> int:
    sandbox = "on (bubblewrap)" if bubblewrap_works() else "OFF (bubblewrap unavailable)"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        make_class(root / "class")
        notebooks = STUDENTS * len(LESSONS)
        ours = time_minilb(root / "class", root / "out") / notebooks
        rerun = time_minilb(root / "class", root / "out") / notebooks
        theirs = time_nbgrader(root / "class", root / "course")
    print(f"minilb grade, {notebooks} notebooks, 2 workers, sandbox {sandbox}: "
          f"{ours:.3f} s per notebook (about 0.2 when idle)")
    print(f"nbgrader autograde, {NBGRADER_SUBSET} of the same notebooks: {theirs:.3f} s per "
          "notebook")
    print(f"speed-up over nbgrader: {theirs / ours:.1f}x (target >= 8x)")
    print(f"re-run from the cache: {ours / rerun:.1f}x faster than the first run")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if theirs / ours >= 8 else 1


if __name__ == "__main__":
    sys.exit(main())
