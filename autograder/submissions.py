"""Which notebooks a class handed in: ``discover`` lists them from a folder the students shaped.

``minilb grade SUBMISSIONS`` recognises three layouts (``LAYOUTS``):

- ``SUBMISSIONS/<student>/<lesson>.ipynb``;
- nbgrader's ``submitted/`` folder itself: ``SUBMISSIONS/<student>/<lesson>/<notebook>.ipynb``
  (with nbgrader's ``timestamp.txt`` beside the notebook);
- nbgrader's course root, the folder that holds ``submitted/``.

The tree is untrusted (tar and zip uploads, nbgrader's ``zip_collect``): folders are listed
without following a symbolic link, a student or lesson folder that is a link is never entered
(the student is told, and scores 0), and every file is read by
``minilb.notebook_cells.read_notebook``, which opens nothing but a regular file of sane size,
without following a link or blocking on a FIFO. A folder without any notebook is refused.
"""

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autograder.contract import LESSONS
from autograder.handout import check_lesson
from autograder.late import parse_timestamp
from minilb.notebook_cells import NotebookError, read_notebook

LAYOUTS = ("<student>/<lesson>.ipynb, <student>/<lesson>/<notebook>.ipynb (nbgrader's "
           "submitted/ folder) or an nbgrader course root that holds submitted/")
NOTEBOOK = ".ipynb"


@dataclass(frozen=True)
class Submission:
    student: str
    lesson: str
    path: Path | None  # None: the student handed in nothing for this lesson
    submitted_at: datetime | None = None  # nbgrader's timestamp.txt, when there is one
    refused: str = ""  # why the grader did not read this student's folder ("": it did)


def lesson_of(stem: str) -> str | None:
    """The lesson a notebook (or nbgrader assignment) name belongs to, if any."""
    return next((lesson for lesson in LESSONS if stem == lesson or stem.startswith(lesson)), None)


def _entries(folder: Path) -> list[os.DirEntry]:
    """The folder's entries, sorted, without dot names; [] if it cannot be listed."""
    try:
        with os.scandir(folder) as listing:
            return sorted((entry for entry in listing if not entry.name.startswith(".")),
                          key=lambda entry: entry.name)
    except OSError:
        return []


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _timestamp(lesson_folder: Path) -> datetime | None:
    """nbgrader's ``timestamp.txt`` in ``lesson_folder``, read as safely as a notebook."""
    try:
        return parse_timestamp(read_notebook(lesson_folder / "timestamp.txt", 4096).decode())
    except (NotebookError, ValueError):  # none, not a file, not text or not a time
        return None


def _student_notebooks(folder: Path) -> dict[str, tuple[Path, datetime | None]]:
    """Lesson -> (the notebook to grade, its nbgrader timestamp), in one student's folder.

    A ``<lesson>.ipynb`` entry, or a ``<lesson>`` entry that is no real folder, is taken as it
    is (a link or a FIFO among them is refused when it is read, with the reason)."""
    found: dict[str, tuple[Path, datetime | None]] = {}
    for entry in _entries(folder):
        path = Path(entry.path)
        if entry.name.endswith(NOTEBOOK):
            lesson = lesson_of(entry.name[:-len(NOTEBOOK)])
            if lesson:
                found.setdefault(lesson, (path, None))
            continue
        lesson = lesson_of(entry.name)
        if lesson is None or lesson in found:
            continue
        if not _is_folder(entry):
            if entry.is_symlink():  # a lesson folder that is a link: refused when read
                found[lesson] = (path, None)
            continue
        notebooks = [Path(item.path) for item in _entries(path) if item.name.endswith(NOTEBOOK)]
        notebooks.sort(key=lambda notebook: (notebook.name != f"{lesson}{NOTEBOOK}", notebook))
        if notebooks:
            found[lesson] = (notebooks[0], _timestamp(path))
    return found


def discover(submissions: Path, lesson: str | None = None) -> list[Submission]:
    """Every (student, lesson) pair to grade, in a stable order.

    A lesson that any student handed in (or ``lesson``, when given: then only that one) is
    expected from every student: a missing one is a ``Submission`` with ``path`` None. A
    student folder that is a symbolic link is a ``Submission`` with ``refused`` set.
    ``ValueError`` (one line) if ``submissions`` is no folder or holds no notebook at all."""
    root = Path(submissions)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory of submissions")
    course = root / "submitted"
    top = course if course.is_dir() else root  # the instructor's folder: a link is fine
    handed_in: dict[str, dict[str, tuple[Path, datetime | None]]] = {}
    refused: dict[str, str] = {}
    for entry in _entries(top):
        if entry.is_symlink() and entry.is_dir():
            refused[entry.name] = ("your folder is a symbolic link to somewhere else, so "
                                   "nothing in it was read")
        elif _is_folder(entry):
            handed_in[entry.name] = _student_notebooks(Path(entry.path))
    every_lesson = sorted({name for found in handed_in.values() for name in found})
    if not every_lesson:
        links = f"; {len(refused)} student folders are symbolic links, not read" if refused \
            else ""
        raise ValueError(f"no notebook of any lesson found in {root}{links}: expected {LAYOUTS}")
    lessons = [check_lesson(lesson)] if lesson else every_lesson
    submissions_found = [Submission(student, name, *found.get(name, (None, None)))
                         for student, found in handed_in.items() for name in lessons]
    submissions_found += [Submission(student, name, None, refused=reason)
                          for student, reason in refused.items() for name in lessons]
    return sorted(submissions_found, key=lambda item: (item.student, lessons.index(item.lesson)))
