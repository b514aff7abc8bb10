"""Grade a whole class: ``minilb grade SUBMISSIONS --out DIR [--workers N] [--lesson NAME]``.

Submissions are ``SUBMISSIONS/<student>/<lesson>.ipynb``, or nbgrader's
``submitted/<student>/<lesson>/<notebook>.ipynb`` (detected). Each (student, lesson) runs in its
own sandbox (``sandbox.py``) against the rubric; a notebook that is missing or unreadable scores
0 with a note. Results are cached in ``DIR/.cache`` under a key made of the notebook's bytes and
the grader's own sources, so an interrupted run resumes and a re-run redoes nothing. Outputs
(written only from the grader's own results, never from anything a submission wrote):

- ``DIR/grades.csv``: ``student,lesson,score,max_score,percent,status``, one row per pair,
  then ``submitted_at,late_days,penalty,final_score`` (``late.py``: lateness is applied after
  the cache, so a changed policy needs no re-grading; nothing late, ``final_score == score``);
- ``DIR/feedback/<student>.md``: per lesson and exercise, the points and what was wrong;
- ``DIR/results/<student>/<lesson>/results.json``: the Gradescope format.

Outputs hold no timestamps of the run, so re-running produces identical files. SIGINT and
SIGTERM stop the run cleanly: workers kill their sandboxes and exit, finished results stay in
the cache, and ``Interrupted`` tells the caller which signal it was.
"""

import contextlib
import hashlib
import importlib
import json
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from autograder import sandbox
from autograder.contract import LESSONS, ExerciseResult
from autograder.handout import check_lesson
from autograder.late import LatePolicy, assess, read_timestamp
from autograder.processes import set_parent_death_signal
from autograder.reports import write_atomically, write_outputs
from autograder.sandbox import Limits, SandboxedStudent, require_isolation
from minilb.notebook_cells import NotebookError, code_cells

GRADER_SOURCES = Path(__file__).resolve().parent
REFERENCE_SOURCES = GRADER_SOURCES.parent / "reference_solution" / "minilb"
MAX_CELL_NOTES = 5


@dataclass
class LessonGrade:
    student: str
    lesson: str
    score: float
    max_score: float
    status: str  # graded, missing, unreadable, error
    notes: list[str] = field(default_factory=list)  # about the whole notebook
    exercises: list[dict] = field(default_factory=list)  # name, score, max_score, feedback
    # Lateness (never cached: see ``apply_late_policy``).
    submitted_at: str = ""  # UTC, as nbgrader's timestamp.txt said; "" when unknown
    late_days: int = 0
    penalty: float = 0.0  # points taken off for lateness
    late_note: str = ""

    @property
    def final_score(self) -> float:
        return round(max(0.0, self.score - self.penalty), 4)


@dataclass(frozen=True)
class Submission:
    student: str
    lesson: str
    path: Path | None  # None: the student handed in nothing for this lesson
    submitted_at: datetime | None = None  # nbgrader's timestamp.txt, when there is one


def lesson_of(stem: str) -> str | None:
    """The lesson a notebook (or nbgrader assignment) name belongs to, if any."""
    return next((lesson for lesson in LESSONS if stem == lesson or stem.startswith(lesson)), None)


def discover(submissions: Path, lesson: str | None = None) -> list[Submission]:
    """Every (student, lesson) pair to grade, in a stable order.

    A lesson that any student handed in (or ``lesson``, when given: then only that one) is
    expected from every student: a missing one is a ``Submission`` with ``path`` None.
    """
    root = Path(submissions)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory of submissions")
    nbgrader = (root / "submitted").is_dir()
    found: dict[tuple[str, str], Path] = {}
    students = set()
    for student_dir in sorted((root / "submitted" if nbgrader else root).iterdir()):
        if not student_dir.is_dir() or student_dir.name.startswith("."):
            continue
        students.add(student_dir.name)
        pattern = "*/*.ipynb" if nbgrader else "*.ipynb"
        for notebook in sorted(student_dir.glob(pattern)):
            name = lesson_of(notebook.parent.name if nbgrader else notebook.stem)
            if name and (student_dir.name, name) not in found:
                found[student_dir.name, name] = notebook
    lessons = [check_lesson(lesson)] if lesson else sorted({name for _, name in found})
    return [Submission(student, name, found.get((student, name)),
                       read_timestamp(found[student, name]) if nbgrader and (student, name)
                       in found else None)
            for student in sorted(students) for name in lessons]


def grader_version(rubric: str) -> str:
    """A hash of everything that decides a grade, so a changed grader re-grades."""
    digest = hashlib.sha256(rubric.encode())
    module_file = getattr(importlib.import_module(rubric), "__file__", None)
    files = [*GRADER_SOURCES.rglob("*.py"), *REFERENCE_SOURCES.glob("*.py")]
    if module_file:
        files.append(Path(module_file))
    for path in sorted(set(files)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _exercise_dict(result: ExerciseResult) -> dict:
    return {"name": result.exercise, "score": round(float(result.score), 4),
            "max_score": float(result.max_score),
            "feedback": [str(line) for line in result.feedback]}


def grade_submission(submission: Submission, rubric: str = "autograder.rubric",
                     limits: Limits | None = None) -> LessonGrade:
    """Grade one notebook in a sandbox; never raises for anything a student did."""
    module = importlib.import_module(rubric)
    exercises = module.RUBRIC[submission.lesson]
    max_score = float(sum(exercise.points for exercise in exercises))
    blank = [{"name": exercise.name, "score": 0.0, "max_score": float(exercise.points),
              "feedback": []} for exercise in exercises]
    grade = LessonGrade(submission.student, submission.lesson, 0.0, max_score, "graded")
    if submission.path is None:
        grade.status, grade.exercises = "missing", blank
        grade.notes = [f"No notebook was handed in for {submission.lesson} (expected "
                       f"{submission.lesson}.ipynb): 0 points."]
        return grade
    try:
        cells = code_cells(submission.path)
    except NotebookError as error:
        grade.status, grade.exercises = "unreadable", blank
        grade.notes = [f"Your notebook could not be graded: {error}. 0 points."]
        return grade
    try:
        with SandboxedStudent(cells, submission.lesson, limits) as student:
            results = module.grade_lesson(submission.lesson, student)
            grade.notes = ([student.startup_note] if student.startup_note else []) + [
                f"While loading your notebook, {note}." for note in
                student.cell_errors[:MAX_CELL_NOTES]]
    except Exception as error:  # noqa: BLE001  (the grader's fault: say so, never crash)
        grade.status, grade.exercises = "error", blank
        grade.notes = [f"The grader failed on this notebook ({type(error).__name__}); "
                       "it will be retried on the next run."]
        return grade
    grade.exercises = [_exercise_dict(result) for result in results]
    grade.score = round(sum(exercise["score"] for exercise in grade.exercises), 4)
    return grade


# -- the class run ---------------------------------------------------------------------------

def _cache_key(submission: Submission, version: str) -> str:
    digest = hashlib.sha256(version.encode())
    if submission.path is not None:
        try:
            digest.update(submission.path.read_bytes())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


def _cached(path: Path, key: str) -> LessonGrade | None:
    try:
        entry = json.loads(path.read_text())
        return LessonGrade(**entry["grade"]) if entry["key"] == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def apply_late_policy(grade: LessonGrade, submission: Submission,
                      policy: LatePolicy | None) -> LessonGrade:
    """``grade`` with its lateness filled in (a copy: the cached grade stays as graded)."""
    stamp = submission.submitted_at
    late = assess(policy or LatePolicy(), grade.lesson, stamp, grade.score, grade.max_score)
    return replace(grade, submitted_at=f"{stamp:%Y-%m-%d %H:%M:%S} UTC" if stamp else "",
                   late_days=late.late_days, penalty=late.penalty, late_note=late.note)


@dataclass
class ClassRun:
    grades: list[LessonGrade]
    graded: int  # notebooks run this time
    reused: int  # results taken from the cache


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a class run (``signum`` says which); finished results are
    in the cache."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` here, in the main thread, while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT,
                                                                    signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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


def grade_class(submissions: Path, out: Path, workers: int = 2, rubric: str = "autograder.rubric",
                limits: Limits | None = None,
                progress: Callable[[int, int], None] | None = None, lesson: str | None = None,
                late: LatePolicy | None = None, allow_unsafe: bool = False) -> ClassRun:
    """Grade every submission (reusing cached results) and write all outputs into ``out``.

    ``lesson`` grades only that lesson; ``late`` applies a late policy; ``allow_unsafe`` accepts
    the root-only jail where bubblewrap cannot run (``sandbox.require_isolation``). Raises
    ``Interrupted`` on SIGINT or SIGTERM, after stopping every worker and sandbox."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    todo = discover(submissions, lesson)
    version = grader_version(rubric)
    require_isolation(allow_unsafe)  # probe (and refuse) once, before the workers start
    done: dict[Submission, LessonGrade] = {}
    pending = []
    for submission in todo:
        key = _cache_key(submission, version)
        cache = Path(out) / ".cache" / submission.student / f"{submission.lesson}.json"
        cached = _cached(cache, key)
        if cached is not None:
            done[submission] = cached
        else:
            pending.append((submission, key, cache))
    if progress:
        progress(len(done), len(todo))
    context = multiprocessing.get_context("fork")  # workers inherit the imported rubric
    with _stopped_by_signals():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_worker_started)
        try:
            futures = {pool.submit(grade_submission, submission, rubric, limits):
                       (submission, key, cache) for submission, key, cache in pending}
            for future in as_completed(futures):
                submission, key, cache = futures[future]
                grade = future.result()
                done[submission] = grade
                if grade.status != "error":  # a grader failure is retried next time
                    write_atomically(cache, json.dumps({"key": key, "grade": asdict(grade)}))
                if progress:
                    progress(len(done), len(todo))
        except BaseException:
            for number in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut
                signal.signal(number, signal.SIG_IGN)        # the clean-up short
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    grades = [apply_late_policy(done[submission], submission, late) for submission in todo]
    write_outputs(Path(out), grades)
    return ClassRun(grades, graded=len(pending), reused=len(todo) - len(pending))


def run_with_progress_bar(submissions: Path, out: Path, workers: int,
                          rubric: str = "autograder.rubric", **options: object) -> ClassRun:
    """``grade_class`` with a progress bar on a terminal (plain lines when not a TTY);
    ``options`` go to ``grade_class``."""
    console = Console(stderr=True)
    with Progress(console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("grading", total=None)

        def show(finished: int, total: int) -> None:
            bar.update(task, completed=finished, total=total)
            if not console.is_terminal and (finished == total or finished % 50 == 0):
                print(f"graded {finished}/{total}", file=sys.stderr, flush=True)

        return grade_class(submissions, out, workers, rubric, progress=show,
                           **options)  # type: ignore[arg-type]
