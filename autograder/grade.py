"""Grade a whole class: ``minilb grade SUBMISSIONS --out DIR [--workers N] [--lesson NAME]``.

SUBMISSIONS is any of the layouts of ``submissions.py``: ``<student>/<lesson>.ipynb``, nbgrader's
``submitted/`` folder (``<student>/<lesson>/<notebook>.ipynb``) or nbgrader's course root that
holds ``submitted/``; a folder holding no notebook at all is refused (exit 2). Each (student,
lesson) runs in its own sandbox (``sandbox.py``) against the rubric. Whatever is wrong with one
submission is that student's problem only: a notebook that is missing scores 0 (``missing``);
one that cannot be read or graded (not valid JSON, wrong types, nested too deeply, too large, a
symbolic link, a FIFO, a device, a student folder that is a link) scores 0 with status ``error``
and the reason, and the rest of the class is graded and written. Each notebook is read once, in
this process (``read_notebook``: no link followed, no FIFO waited on), and those very bytes are
hashed and graded. Results are cached in ``DIR/.cache`` under a key made of those bytes (or why
they could not be read) and the grader's own sources, so an interrupted run resumes and a
re-run redoes nothing; only a failure of the grader itself is retried. Outputs (written only
from the grader's own results, never from anything a submission wrote; student names escaped,
see ``reports.py``):

- ``DIR/grades.csv``: ``student,lesson,score,max_score,percent,status``, one row per pair,
  then ``submitted_at,late_days,penalty,final_score`` (``late.py``: lateness is applied after
  the cache, so a changed policy needs no re-grading; nothing late, ``final_score == score``),
  then ``handout``: the handout version the notebook's metadata names (``handout_version``;
  hex only, "" if none), a note in the feedback when it is not the course's;
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
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from autograder.contract import ExerciseResult
from autograder.late import LatePolicy, assess
from autograder.pool import Interrupted, run_in_pools, stopped_by_signals
from autograder.reports import file_name, write_atomically, write_outputs
from autograder.sandbox import Limits, SandboxedStudent, require_isolation
from autograder.submissions import Submission, discover, lesson_of
from minilb.notebook_cells import NotebookError, code_cells_of, read_notebook

__all__ = ["Interrupted", "LessonGrade", "Submission", "discover", "grade_class",
           "grade_submission", "lesson_of"]

GRADER_SOURCES = Path(__file__).resolve().parent
REFERENCE_SOURCES = GRADER_SOURCES.parent / "reference_solution" / "minilb"
MAX_CELL_NOTES = 5
HANDOUT_DIGITS = 12


def handout_version(lesson: str, rubric: str = "autograder.rubric") -> str:
    """The version of ``lesson``'s handout: a short hash of its exercises and their points
    (``lessons/sync_from_reference.py`` stamps it into ``metadata.minilb.handout``)."""
    exercises = importlib.import_module(rubric).RUBRIC[lesson]
    text = "\n".join(f"{exercise.name}:{float(exercise.points):g}" for exercise in exercises)
    return hashlib.sha256(f"{lesson}\n{text}".encode()).hexdigest()[:HANDOUT_DIGITS]


def handout_of(content: bytes) -> str:
    """The notebook's ``metadata.minilb.handout`` if it is hex text (cut), else ""."""
    try:
        stamp = json.loads(content)["metadata"]["minilb"]["handout"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return ""
    if not isinstance(stamp, str) or not stamp or not all(
            char in "0123456789abcdef" for char in stamp[:64]):
        return ""
    return stamp[:HANDOUT_DIGITS]


def handout_note(lesson: str, stamp: str, rubric: str) -> str:
    """The grader's note when the notebook is not from the course's handout ("" if it is)."""
    current = handout_version(lesson, rubric)
    if stamp == current:
        return ""
    version = f"version {stamp}" if stamp else "no version stamp"
    return (f"This notebook comes from another version of the handout ({version}, the "
            f"course's is {current}): graded on the exercises it defines.")


@dataclass
class LessonGrade:
    student: str
    lesson: str
    score: float
    max_score: float
    status: str  # graded, missing, error (the notes say why)
    notes: list[str] = field(default_factory=list)  # about the whole notebook
    exercises: list[dict] = field(default_factory=list)  # name, score, max_score, feedback
    # Lateness (never cached: see ``apply_late_policy``).
    submitted_at: str = ""  # UTC, as nbgrader's timestamp.txt said; "" when unknown
    late_days: int = 0
    penalty: float = 0.0  # points taken off for lateness
    late_note: str = ""
    retry: bool = False  # the grader itself failed: not cached, tried again on the next run
    handout: str = ""  # the handout version the notebook says it is from (hex, "" if none)
    # What each student code cell showed in the sandbox before any hidden call, for nbgrader's
    # graded notebook only: feedback, results.json and grades.csv never show it.
    cell_outputs: list[dict] = field(default_factory=list)  # see autograder.cell_outputs

    @property
    def final_score(self) -> float:
        return round(max(0.0, self.score - self.penalty), 4)


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


def read_submission(submission: Submission) -> bytes | NotebookError | None:
    """The notebook's bytes, or why they cannot be read; None if nothing was handed in."""
    if submission.path is None or submission.refused:
        return None
    try:
        return read_notebook(submission.path, one_name=True)
    except NotebookError as error:
        return error


def grade_submission(submission: Submission, rubric: str = "autograder.rubric",
                     limits: Limits | None = None,
                     notebook: bytes | NotebookError | None = None) -> LessonGrade:
    """Grade one notebook in a sandbox; never raises for anything a student did.

    ``notebook`` is what ``read_submission`` gave, when the caller read the file already (the
    class run hashes those bytes); by default the file is read here."""
    module = importlib.import_module(rubric)
    grade = _zero(submission, rubric)
    if submission.refused:
        grade.notes = [f"Your submission could not be graded: {submission.refused}. 0 points."]
        return grade
    if submission.path is None:
        grade.status = "missing"
        grade.notes = [f"No notebook was handed in for {submission.lesson} (expected "
                       f"{submission.lesson}.ipynb): 0 points."]
        return grade
    try:
        content = read_submission(submission) if notebook is None else notebook
        if isinstance(content, NotebookError):
            raise content
        cells = code_cells_of(content)  # type: ignore[arg-type]
    except NotebookError as error:
        grade.notes = [f"Your notebook could not be graded: {error}. 0 points."]
        return grade
    try:
        stamp = handout_of(content)  # type: ignore[arg-type]
        other_handout = handout_note(submission.lesson, stamp, rubric)
        with SandboxedStudent(cells, submission.lesson, limits) as student:
            results = module.grade_lesson(submission.lesson, student)
            notes = ([other_handout] if other_handout else []) + (
                [student.startup_note] if student.startup_note else []) + [
                f"While loading your notebook, {note}." for note in
                student.cell_errors[:MAX_CELL_NOTES]]
            outputs = list(student.cell_outputs)
        graded = [_exercise_dict(result) for result in results]
        score = round(sum(exercise["score"] for exercise in graded), 4)
    except Exception as error:  # noqa: BLE001  (the grader's fault: say so, never crash)
        return _grader_failed(grade, error)
    return replace(grade, status="graded", notes=notes, exercises=graded, score=score,
                   handout=stamp, cell_outputs=outputs)


def _zero(submission: Submission, rubric: str) -> LessonGrade:
    """0 points on every exercise of the lesson, status ``error`` until said otherwise."""
    exercises = importlib.import_module(rubric).RUBRIC[submission.lesson]
    blank = [{"name": exercise.name, "score": 0.0, "max_score": float(exercise.points),
              "feedback": []} for exercise in exercises]
    return LessonGrade(submission.student, submission.lesson, 0.0,
                       float(sum(exercise.points for exercise in exercises)), "error",
                       exercises=blank)


def _grader_failed(grade: LessonGrade, error: BaseException) -> LessonGrade:
    """``grade`` as an error of the grader's own, named only by a built-in exception name."""
    kind = type(error).__name__ if type(error).__module__ == "builtins" else "an internal error"
    return replace(grade, status="error", retry=True, notes=[
        f"The grader failed on this notebook ({kind}); it will be retried on the next run."])


# -- the class run ---------------------------------------------------------------------------

def _cache_key(submission: Submission, notebook: bytes | NotebookError | None,
               version: str) -> str:
    """The key of the very bytes that will be graded (or of why there are none)."""
    digest = hashlib.sha256(version.encode())
    if isinstance(notebook, bytes):
        digest.update(b"notebook\0" + notebook)
    else:
        digest.update(f"no notebook\0{submission.refused}\0{notebook}".encode())
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
        notebook = read_submission(submission)  # once, here: these bytes are hashed and graded
        key = _cache_key(submission, notebook, version)
        cache = Path(out) / ".cache" / file_name(submission.student) / f"{submission.lesson}.json"
        cached = _cached(cache, key)
        if cached is not None:
            done[submission] = cached
        else:
            pending.append((submission, notebook, key, cache))
    if progress:
        progress(len(done), len(todo))
    jobs = [(item, (item[0], rubric, limits, item[1])) for item in pending]

    def failed(item: tuple, error: Exception) -> LessonGrade:
        return _grader_failed(_zero(item[0], rubric), error)

    with stopped_by_signals(), contextlib.closing(
            run_in_pools(grade_submission, jobs, workers, failed)) as finished:
        for (submission, _, key, cache), grade in finished:  # type: ignore[misc]
            done[submission] = grade = replace(grade, cell_outputs=[])  # nbgrader's only
            if not grade.retry:  # a failure of the grader's own is retried next time
                write_atomically(cache, json.dumps({"key": key, "grade": asdict(grade)}))
            if progress:
                progress(len(done), len(todo))
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
