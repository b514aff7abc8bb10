"""Grading cost per notebook, three ways on the same notebooks in one run.

The class: ``STUDENTS`` students, each handing in the solved notebook of all four lessons (the
instructor's, solutions in), so every way does its whole job on every lesson, lesson 4's
sockets and forks included. Timed on those same notebooks, one after the other:

- ``minilb grade --workers 2`` (the sandbox on, a fresh ``--out``: nothing from a cache);
- plain notebook execution, ``jupyter nbconvert --execute`` of each notebook, the least any
  notebook-running grader pays (nbgrader's autograde without the kit runs every cell this way);
- the kit's own nbgrader path, ``nbgrader autograde`` in a copy of ``lessons/`` (its autograder
  cells call the same sandboxed grader as ``minilb grade``).

Printed: seconds per notebook for each (context only: a shared machine's load decides them)
and the two ratios, each against its target with "met" or "NOT met". The ratios are honest
because all three ran on the same notebooks in the same run. Exit 1 when a way fails to grade
(a non-zero exit, or a solved notebook below full marks).
"""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT / "tests"))

from notebook_fixtures import solved_notebook  # noqa: E402

from autograder.rubric import RUBRIC  # noqa: E402
from autograder.sandbox import bubblewrap_works  # noqa: E402

STUDENTS = 4
LESSONS = ("01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan",
           "04_sockets_and_forking")
BIN = Path(sys.executable).parent
TARGET_OVER_EXECUTION = 4.0  # minilb grade at least this many times cheaper than running them
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}  # nbgrader runs alembic from PATH


def make_class(submitted: Path) -> list[Path]:
    """nbgrader's layout, which all three ways read: submitted/<student>/<lesson>/<lesson>.ipynb."""
    return [solved_notebook(lesson, submitted / f"student{number}" / lesson / f"{lesson}.ipynb")
            for number in range(STUDENTS) for lesson in LESSONS]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{run.stdout[-2000:]}"
                           f"{run.stderr[-2000:]}")
    return elapsed


def time_minilb(course: Path, out: Path) -> float:
    seconds = timed([str(BIN / "minilb"), "grade", str(course), "--out", str(out),
                     "--workers", "2"], course)
    full = {lesson: sum(exercise.points for exercise in RUBRIC[lesson]) for lesson in LESSONS}
    with open(out / "grades.csv", newline="") as table:
        short = [row for row in csv.DictReader(table)
                 if float(row["score"]) != full[row["lesson"]]]
    if short:
        raise RuntimeError(f"minilb grade gave a solved notebook less than full marks: {short}")
    return seconds


def time_execution(notebooks: list[Path], scratch: Path) -> float:
    total = 0.0
    for number, notebook in enumerate(notebooks):
        folder = scratch / f"run{number}"
        folder.mkdir(parents=True)
        copy = shutil.copy(notebook, folder)
        total += timed([str(BIN / "jupyter"), "nbconvert", "--execute", "--to", "notebook",
                        "--ExecutePreprocessor.timeout=300", "--output", "executed.ipynb",
                        str(copy)], folder)
    return total


def time_nbgrader(course: Path) -> float:
    every_lesson = "0[1-4]_*"  # one nbgrader run for all (it expands the pattern)
    timed([str(BIN / "nbgrader"), "generate_assignment", every_lesson, "--force"], course)
    return timed([str(BIN / "nbgrader"), "autograde", every_lesson, "--force"], course)


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.1f}x (target >= {target:g}x: {'met' if ratio >= target else 'NOT met'})"


def main() -> int:
    sandbox = "on (bubblewrap)" if bubblewrap_works() else "OFF (bubblewrap unavailable)"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        course = root / "course"
        shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
            "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
            "gradebook.db"))
        notebooks = make_class(course / "submitted")
        count = len(notebooks)
        try:
            ours = time_minilb(course, root / "grades") / count
            executing = time_execution(notebooks, root / "executed") / count
            nbgrader = time_nbgrader(course) / count
        except RuntimeError as failure:
            print(f"bench_grade: {failure}", file=sys.stderr)
            return 1
    print(f"{count} solved notebooks ({STUDENTS} students x {len(LESSONS)} lessons), sandbox "
          f"{sandbox}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  minilb grade --workers 2:      {ours:.2f} s per notebook")
    print(f"  jupyter nbconvert --execute:   {executing:.2f} s per notebook")
    print(f"  nbgrader autograde (the kit's): {nbgrader:.2f} s per notebook")
    print("minilb grade against plain notebook execution: "
          f"{verdict(executing / ours, TARGET_OVER_EXECUTION)}")
    print(f"minilb grade against the kit's nbgrader path: {nbgrader / ours:.1f}x "
          "(no target: nbgrader starts a kernel per notebook, then calls the same grader)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
