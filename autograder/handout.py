"""The ``minilb`` package as a submission of one lesson may see it inside the sandbox.

DESIGN section 7: a lesson is graded with the reference versions of earlier lessons' functions.
So the sandbox gets a copy of the package in which the exercises of earlier lessons keep their
reference bodies and every other exercise body is stubbed (``raise NotImplementedError()``) by
the same ``stub_solutions`` that builds the student handout. The grading lesson's own
solutions never enter the sandbox.
"""

import ast
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from autograder.contract import LESSONS
from minilb.solutions import stub_solutions

REFERENCE_PACKAGE = Path(__file__).resolve().parent.parent / "reference_solution" / "minilb"


def check_lesson(lesson: str) -> str:
    """Return ``lesson`` if it is one of the course's lessons, else raise ``ValueError``."""
    if lesson not in LESSONS:
        raise ValueError(f"unknown lesson {lesson!r}: expected one of {', '.join(LESSONS)}")
    return lesson


def earlier_exercises(lesson: str) -> list[str]:
    """The exercise functions of the lessons before ``lesson``, in course order."""
    names: list[str] = []
    for name, functions in LESSONS.items():
        if name == check_lesson(lesson):
            return names
        names.extend(functions)
    return names


@functools.cache  # parsing every reference module is slow, and they cannot change mid-run
def exercise_modules() -> dict[str, str]:
    """Exercise function name -> the ``minilb`` module that defines it in the reference."""
    wanted = {name for functions in LESSONS.values() for name in functions}
    where = {}
    for path in sorted(REFERENCE_PACKAGE.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name in wanted:
                where[node.name] = f"minilb.{path.stem}"
    return where


@functools.cache
def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(REFERENCE_PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def lesson_package(lesson: str) -> Path:
    """A directory holding ``minilb/`` as lesson ``lesson`` sees it (built once, then cached)."""
    keep = set(earlier_exercises(lesson))
    root = Path(tempfile.gettempdir()) / f"minilb-grader-{os.getuid()}" / _fingerprint() / lesson
    if (root / "minilb").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=root.parent, prefix=".building-"))
    building.chmod(0o755)  # the sandbox may run as an unprivileged user
    (building / "minilb").mkdir()
    for path in sorted(REFERENCE_PACKAGE.glob("*.py")):
        stubbed = stub_solutions(path.read_text(), path.name, keep)
        (building / "minilb" / path.name).write_text(stubbed)
    try:
        building.rename(root)  # atomic: parallel graders never see a half-built package
    except OSError:
        shutil.rmtree(building)  # another process built it first
    return root
