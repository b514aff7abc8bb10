"""The ``minilb`` package as a submission of one lesson may see it inside the sandbox.

DESIGN section 7: a lesson is graded with the reference versions of earlier lessons' functions.
So the sandbox gets a copy of the package in which the exercises of earlier lessons keep their
reference bodies and every other exercise body is stubbed (``raise NotImplementedError()``), the
way the student handout is. The grading lesson's own solutions never enter the sandbox.
"""

import ast
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from autograder.contract import LESSONS

REFERENCE_PACKAGE = Path(__file__).resolve().parent.parent / "reference_solution" / "minilb"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


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


def exercise_modules() -> dict[str, str]:
    """Exercise function name -> the ``minilb`` module that defines it in the reference."""
    wanted = {name for functions in LESSONS.values() for name in functions}
    where = {}
    for path in sorted(REFERENCE_PACKAGE.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name in wanted:
                where[node.name] = f"minilb.{path.stem}"
    return where


def stub_solutions(source: str, keep: set[str]) -> str:
    """Stub each solution region, except in the functions named in ``keep``.

    A region inside a function becomes ``raise NotImplementedError()``; a region at module
    level (a solution's helpers) is dropped, unless the module defines a function in ``keep``.
    """
    owners = {}  # line number -> the function it sits in
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython magics: then nothing is kept
        tree = ast.Module(body=[], type_ignores=[])
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for number in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                owners.setdefault(number, node.name)
    keep_helpers = bool(keep & set(owners.values()))
    lines, out, skipping = source.splitlines(keepends=True), [], False
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        owner = owners.get(number)
        if marker == BEGIN and (owner not in keep if owner else not keep_helpers):
            indent = line[: len(line) - len(line.lstrip())]
            if owner:
                out.append(f"{indent}raise NotImplementedError()\n")
            skipping = True
        elif skipping:
            skipping = marker != END
        else:
            out.append(line)
    return "".join(out)


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
        (building / "minilb" / path.name).write_text(stub_solutions(path.read_text(), keep))
    try:
        building.rename(root)  # atomic: parallel graders never see a half-built package
    except OSError:
        shutil.rmtree(building)  # another process built it first
    return root
