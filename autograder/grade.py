"""Grade a whole class: ``minilb grade SUBMISSIONS --out DIR [--workers N]``.

Submissions are ``SUBMISSIONS/<student>/<lesson>.ipynb``, or nbgrader's
``submitted/<student>/<lesson>/<notebook>.ipynb`` (detected). Each (student, lesson) runs in its
own sandbox (``sandbox.py``) against the rubric; a notebook that is missing or unreadable scores
0 with a note. Results are cached in ``DIR/.cache`` under a key made of the notebook's bytes and
the grader's own sources, so an interrupted run resumes and a re-run redoes nothing. Outputs
(written only from the grader's own results, never from anything a submission wrote):

- ``DIR/grades.csv``: ``student,lesson,score,max_score,percent,status``, one row per pair;
- ``DIR/feedback/<student>.md``: per lesson and exercise, the points and what was wrong;
- ``DIR/results/<student>/<lesson>/results.json``: the Gradescope format.

Outputs hold no timestamps, so re-running produces identical files.
"""

import csv
import hashlib
import importlib
import io
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from autograder.contract import LESSONS, ExerciseResult
from autograder.sandbox import Limits, SandboxedStudent, bubblewrap_works
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


@dataclass(frozen=True)
class Submission:
    student: str
    lesson: str
    path: Path | None  # None: the student handed in nothing for this lesson


def lesson_of(stem: str) -> str | None:
    """The lesson a notebook (or nbgrader assignment) name belongs to, if any."""
    return next((lesson for lesson in LESSONS if stem == lesson or stem.startswith(lesson)), None)


def discover(submissions: Path) -> list[Submission]:
    """Every (student, lesson) pair to grade, in a stable order.

    A lesson that any student handed in is expected from every student: a missing one is a
    ``Submission`` with ``path`` None.
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
            lesson = lesson_of(notebook.parent.name if nbgrader else notebook.stem)
            if lesson and (student_dir.name, lesson) not in found:
                found[student_dir.name, lesson] = notebook
    lessons = sorted({lesson for _, lesson in found})
    return [Submission(student, lesson, found.get((student, lesson)))
            for student in sorted(students) for lesson in lessons]


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
        grade.notes = [f"No notebook was handed in for {submission.lesson}: 0 points."]
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


# -- outputs -------------------------------------------------------------------------------

def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def grades_csv(grades: Iterable[LessonGrade]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "lesson", "score", "max_score", "percent", "status"])
    for grade in grades:
        percent = 100 * grade.score / grade.max_score if grade.max_score else 0.0
        writer.writerow([grade.student, grade.lesson, _number(grade.score),
                         _number(grade.max_score), _number(percent), grade.status])
    return out.getvalue()


def feedback_markdown(student: str, grades: list[LessonGrade]) -> str:
    lines = [f"# Feedback for {student}", ""]
    for grade in grades:
        lines += [f"## {grade.lesson}: {_number(grade.score)} / {_number(grade.max_score)}", ""]
        lines += [f"> {note}" for note in grade.notes] + ([""] if grade.notes else [])
        for exercise in grade.exercises:
            lines.append(f"### {exercise['name']}: {_number(exercise['score'])} / "
                         f"{_number(exercise['max_score'])}")
            lines += [f"- {line}" for line in exercise["feedback"]] or ["- all correct"
                                                                       if exercise["score"]
                                                                       >= exercise["max_score"]
                                                                       else "- not graded"]
            lines.append("")
    return "\n".join(lines)


def gradescope_results(grade: LessonGrade) -> dict:
    """The Gradescope autograder format (``results.json``)."""
    return {
        "score": grade.score,
        "output": "\n".join(grade.notes),
        "stdout_visibility": "hidden",
        "tests": [{"name": f"{grade.lesson}: {exercise['name']}", "score": exercise["score"],
                   "max_score": exercise["max_score"], "output": "\n".join(exercise["feedback"]),
                   "visibility": "visible"} for exercise in grade.exercises],
    }


def write_outputs(out: Path, grades: list[LessonGrade]) -> None:
    _write_atomically(out / "grades.csv", grades_csv(grades))
    for student in sorted({grade.student for grade in grades}):
        mine = [grade for grade in grades if grade.student == student]
        _write_atomically(out / "feedback" / f"{student}.md", feedback_markdown(student, mine))
        for grade in mine:
            _write_atomically(out / "results" / student / grade.lesson / "results.json",
                              json.dumps(gradescope_results(grade), indent=2) + "\n")


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


@dataclass
class ClassRun:
    grades: list[LessonGrade]
    graded: int  # notebooks run this time
    reused: int  # results taken from the cache


def grade_class(submissions: Path, out: Path, workers: int = 2, rubric: str = "autograder.rubric",
                limits: Limits | None = None,
                progress: Callable[[int, int], None] | None = None) -> ClassRun:
    """Grade every submission (reusing cached results) and write all outputs into ``out``."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    todo = discover(submissions)
    version = grader_version(rubric)
    bubblewrap_works()  # probe (and warn) once, before the workers start
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
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(grade_submission, submission, rubric, limits): (submission, key,
                                                                                cache)
                   for submission, key, cache in pending}
        for future in as_completed(futures):
            submission, key, cache = futures[future]
            grade = future.result()
            done[submission] = grade
            if grade.status != "error":  # a grader failure is retried next time
                _write_atomically(cache, json.dumps({"key": key, "grade": asdict(grade)}))
            if progress:
                progress(len(done), len(todo))
    grades = [done[submission] for submission in todo]
    write_outputs(Path(out), grades)
    return ClassRun(grades, graded=len(pending), reused=len(todo) - len(pending))


def run_with_progress_bar(submissions: Path, out: Path, workers: int,
                          rubric: str = "autograder.rubric") -> ClassRun:
    """``grade_class`` with a progress bar on a terminal (plain lines when not a TTY)."""
    console = Console(stderr=True)
    with Progress(console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("grading", total=None)

        def show(finished: int, total: int) -> None:
            bar.update(task, completed=finished, total=total)
            if not console.is_terminal and (finished == total or finished % 50 == 0):
                print(f"graded {finished}/{total}", file=sys.stderr, flush=True)

        return grade_class(submissions, out, workers, rubric, progress=show)
