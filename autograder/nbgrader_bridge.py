"""The bridge from nbgrader's autograder cells to the kit's grader: one grading truth.

Each lesson notebook has, after an exercise's visible test, an *autograder cell* (an nbgrader
grade cell worth the rubric's points) whose hidden-tests region calls::

    exercise_score("02_greedy_balancing", "choose_server")

``nbgrader autograde`` runs that cell in the kernel it started in
``autograded/<student>/<lesson>/``, next to the notebook being graded. ``exercise_score`` grades
that notebook file with ``autograder.grade.grade_submission``, the very function behind
``minilb grade`` and Gradescope (the student's code runs in the sandbox, the hidden tests in this
process), prints the feedback and returns the exercise's score. The cell's last expression is
that score, and nbgrader takes a number there as partial credit. The whole lesson is graded
once per kernel; the other autograder cells of the notebook reuse the result.

The notebook is read as ``minilb grade`` reads one (a link, a FIFO or a broken notebook scores 0
with the reason, never an exception). nbgrader copies ``submitted/`` into ``autograded/``
following links, so a notebook (or folder) that was a symbolic link in ``submitted/`` is looked
up there and refused, as ``minilb grade`` refuses it.

What the student's cells showed in the sandbox (``LessonGrade.cell_outputs``: printed text,
results, errors, figures, checked by ``autograder.cell_outputs``) is written beside
the notebook (``outputs_file``), for ``RestoreStudentOutputs`` to put back on those cells once
the autograder cells have run: nbgrader's kernel never runs them (``SkipStudentCells``).
"""

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from autograder.grade import LessonGrade, Submission, grade_submission

_graded: dict[tuple[str, Path], LessonGrade] = {}


def find_notebook(lesson: str, folder: Path | None = None) -> Path:
    """The notebook of ``lesson`` in ``folder`` (default: the kernel's working directory)."""
    folder = Path.cwd() if folder is None else Path(folder)
    exact = folder / f"{lesson}.ipynb"
    if os.path.lexists(exact):  # a link or worse is refused, with the reason, when it is read
        return exact
    candidates = sorted(path for path in folder.glob("*.ipynb") if path.stem.startswith(lesson))
    if len(candidates) != 1:
        found = ", ".join(path.name for path in candidates) or "none"
        raise FileNotFoundError(f"expected one notebook of {lesson} in {folder}, found {found}")
    return candidates[0]


def linked_in_submitted(notebook: Path) -> str:
    """Why the grader refuses ``autograded/<student>/<lesson>/<notebook>``: the student's
    folder, lesson folder or notebook in ``submitted/`` was a symbolic link ("" if none)."""
    path = Path(notebook).absolute()
    if len(path.parents) < 4 or path.parents[2].name != "autograded":
        return ""
    original = path.parents[3] / "submitted" / path.parents[1].name / path.parent.name
    for part, what in ((original.parent, "folder"), (original, "lesson folder"),
                       (original / path.name, "notebook")):
        if part.is_symlink():
            return f"your submitted {what} is a symbolic link, so it was not read"
    return ""


def outputs_file(notebook: Path) -> Path:
    """Where the sandbox's outputs of ``notebook``'s student cells are kept for nbgrader."""
    return Path(notebook).with_name(f".{Path(notebook).stem}.cell_outputs.json")


def is_autograded(notebook: Path) -> bool:
    """Whether ``notebook`` is nbgrader's ``autograded/<student>/<lesson>/`` copy."""
    parents = Path(notebook).absolute().parents
    return len(parents) >= 3 and parents[2].name == "autograded"


def lesson_grade(lesson: str, notebook: Path) -> LessonGrade:
    """The lesson's grade for ``notebook``, computed once per process."""
    key = (lesson, notebook.absolute())
    if key not in _graded:
        # nbgrader gives 0 points to a cell that writes anything to stderr: the grader's own
        # warnings (no bubblewrap on this machine, say) go to stdout with the feedback.
        with contextlib.redirect_stderr(sys.stdout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _graded[key] = grade_submission(Submission(
                notebook.parent.name, lesson, notebook, refused=linked_in_submitted(notebook)))
        if is_autograded(notebook):  # nbgrader autograde, not a notebook run elsewhere
            with contextlib.suppress(OSError):  # the score matters more than the outputs
                outputs_file(notebook).write_text(json.dumps(_graded[key].cell_outputs))
    return _graded[key]


def exercise_score(lesson: str, exercise: str, notebook: Path | None = None) -> float:
    """Grade ``exercise`` of ``lesson`` (the whole lesson once), print why, return its score."""
    grade = lesson_grade(lesson, Path(notebook) if notebook else find_notebook(lesson))
    result = next((item for item in grade.exercises if item["name"] == exercise), None)
    if result is None:
        raise KeyError(f"{exercise} is not an exercise of {lesson} in the rubric")
    if exercise == grade.exercises[0]["name"]:  # notes on the whole notebook: print them once
        for note in grade.notes:
            print(note)
    score, points = result["score"], result["max_score"]
    print(f"{exercise}: {score:g} of {points:g} points from the hidden tests")
    for line in result["feedback"]:
        print(f"- {line}")
    return score
