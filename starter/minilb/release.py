"""``minilb release``: build the student handout, ``starter/``, from the lessons and this package.

The handout holds the lessons' notebooks exactly as nbgrader's ``generate_assignment`` releases
them (solutions replaced by stubs, hidden tests removed; ``lessons/nbgrader_config.py``), and a
copy of this package in which every region between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` is replaced the same way. Generation is deterministic, so a test can
regenerate the handout and compare it byte for byte.

``--after LESSON`` builds the handout for the course after LESSON is over: the package's
exercises of that lesson and the earlier ones keep their reference bodies (later notebooks
import them from the package), everything later stays stubbed. The committed ``starter/`` is
the one with every exercise stubbed.
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection
from fnmatch import fnmatch
from pathlib import Path
from string import Template

import nbformat

from minilb import __version__
from minilb.exercises import LESSONS
from minilb.solutions import BEGIN_SOLUTION, ReleaseError, stub_solutions

PACKAGE_DIR = Path(__file__).resolve().parent
KIT_DIR = PACKAGE_DIR.parent.parent  # the kit that holds this package
SKIPPED_NAMES = ("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")


def kept_exercises(after: str | None) -> list[str]:
    """The exercise functions of the lessons up to and including ``after`` (none for None)."""
    if after is None:
        return []
    if after not in LESSONS:
        raise ReleaseError(f"unknown lesson {after!r}: expected one of {', '.join(LESSONS)}")
    lessons = list(LESSONS)
    return [name for lesson in lessons[: lessons.index(after) + 1] for name in LESSONS[lesson]]


def release_package(out_package: Path, keep: Collection[str] = ()) -> None:
    """Copy this package to ``out_package`` with every solution stubbed but those of ``keep``."""
    for source in sorted(PACKAGE_DIR.rglob("*")):
        relative = source.relative_to(PACKAGE_DIR)
        if any(fnmatch(part, skipped) for part in relative.parts for skipped in SKIPPED_NAMES):
            continue
        target = out_package / relative
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.suffix == ".py":
            target.parent.mkdir(parents=True, exist_ok=True)
            stubbed = stub_solutions(source.read_text(encoding="utf-8"), str(relative), keep)
            try:
                ast.parse(stubbed, str(relative))
            except SyntaxError as error:
                raise ReleaseError(
                    f"{relative}: stubbing its solutions breaks the code ({error.msg}, line "
                    f"{error.lineno}); markers must enclose a whole function body or whole "
                    "top-level definitions"
                ) from None
            target.write_text(stubbed, encoding="utf-8")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())


def find_lessons(lessons_dir: Path) -> list[Path]:
    """The lesson folders: ``NN_name/`` holding ``NN_name.ipynb``, in lesson order."""
    return sorted(
        folder
        for folder in lessons_dir.iterdir()
        if folder.name[:2].isdigit() and (folder / f"{folder.name}.ipynb").is_file()
    )


def normalised_notebook(path: Path) -> bytes:
    """The notebook without outputs, as fixed-format JSON (sorted keys, no run counts)."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)  # timestamps some front ends add
    nbformat.validate(notebook)
    return (nbformat.writes(notebook).rstrip("\n") + "\n").encode("utf-8")


def check_solution_markers(notebook_path: Path) -> None:
    """Raise ``ReleaseError`` naming the cell whose solution markers do not pair up."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for number, cell in enumerate(notebook.cells):
        where = f"{notebook_path.name}, cell {number}"
        if cell.cell_type != "code" or BEGIN_SOLUTION not in cell.source:
            continue
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            raise ReleaseError(f"{where}: solution markers in a cell that is not a solution cell")
        stub_solutions(cell.source, f"{where}, line")


def generate_assignments(course_dir: Path) -> None:
    """Run nbgrader's ``generate_assignment`` on every lesson in ``course_dir`` at once."""
    # An empty Jupyter config dir keeps an instructor's personal nbgrader settings out, and
    # nbgrader runs helper commands (alembic) that live next to this Python, maybe off PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course_dir / ".jupyter"), "PATH": path}
    # One run for all lessons (a glob nbgrader expands itself): its start-up is the slow part.
    command = [sys.executable, "-m", "nbgrader", "generate_assignment", "[0-9]*", "--force"]
    result = subprocess.run(command, cwd=course_dir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        log = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise ReleaseError("nbgrader generate_assignment failed:\n" + "\n".join(log))


def release_notebooks(lessons_dir: Path, out_dir: Path) -> list[str]:
    """Release every lesson with nbgrader, flat into ``out_dir``; return the notebook names."""
    lessons = find_lessons(lessons_dir)
    if not lessons:
        raise ReleaseError(f"no lessons (NN_name/NN_name.ipynb) in {lessons_dir}")
    shipped_by: dict[str, str] = {}  # file name in the handout -> the lesson that ships it
    with tempfile.TemporaryDirectory(prefix="minilb-course-") as tmp:
        course_dir = Path(tmp)
        shutil.copy(lessons_dir / "nbgrader_config.py", course_dir)
        for lesson in lessons:
            check_solution_markers(lesson / f"{lesson.name}.ipynb")
            ignore = shutil.ignore_patterns(*SKIPPED_NAMES)
            shutil.copytree(lesson, course_dir / lesson.name, ignore=ignore)
        generate_assignments(course_dir)
        for lesson in lessons:
            release_dir = course_dir / "release" / lesson.name
            for file in sorted(path for path in release_dir.rglob("*") if path.is_file()):
                name = file.relative_to(release_dir).as_posix()
                if name in shipped_by:
                    first = shipped_by[name]
                    raise ReleaseError(f"lessons {first} and {lesson.name} both ship {name}")
                shipped_by[name] = lesson.name
                if file.suffix == ".ipynb":
                    data = normalised_notebook(file)
                else:
                    data = file.read_bytes()
                (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (out_dir / name).write_bytes(data)
    return sorted(name for name in shipped_by if name.endswith(".ipynb"))


def write_templates(templates_dir: Path, out_dir: Path, notebooks: list[str]) -> None:
    """The handout's README.md and pyproject.toml, filled in from ``templates_dir``."""
    values = {
        "version": __version__,
        "notebooks": "\n".join(f"- `{name}`" for name in notebooks),
        "first_notebook": notebooks[0],
    }
    for name in ("README.md", "pyproject.toml"):
        template = Template((templates_dir / name).read_text(encoding="utf-8"))
        (out_dir / name).write_text(template.substitute(values), encoding="utf-8")


def replace_contents(out_dir: Path, built_dir: Path) -> None:
    """Make ``out_dir`` hold exactly what is in ``built_dir`` (stale files go)."""
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / "minilb" / "__init__.py").exists():
            raise ReleaseError(f"{out_dir} is not empty and holds no handout: not overwriting it")
        for child in out_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(built_dir, out_dir, dirs_exist_ok=True)


def release(
    out_dir: Path, lessons_dir: Path = KIT_DIR / "lessons", after: str | None = None
) -> list[str]:
    """Build the handout into ``out_dir``; return the released notebooks' names.

    ``after``: a lesson whose exercises (and the earlier lessons') keep their reference bodies.
    """
    keep = kept_exercises(after)
    if not (lessons_dir / "nbgrader_config.py").is_file():
        raise ReleaseError(
            f"no lessons/nbgrader_config.py at {lessons_dir}: `minilb release` builds the "
            "handout from the course kit, it does not run inside a handout"
        )
    with tempfile.TemporaryDirectory(prefix="minilb-starter-") as tmp:
        built_dir = Path(tmp)
        notebooks = release_notebooks(lessons_dir, built_dir)
        release_package(built_dir / "minilb", keep)
        write_templates(lessons_dir / "handout", built_dir, notebooks)
        replace_contents(out_dir, built_dir)
    return notebooks


def run(args: argparse.Namespace) -> int:
    notebooks = release(args.out.resolve(), args.lessons.resolve(), args.after)
    given = f" (exercises up to {args.after} given)" if args.after else ""
    print(f"released {len(notebooks)} notebooks and the stubbed package{given} into {args.out}")
    return 0


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "release", help="build the student handout (starter/) from the lessons"
    )
    parser.add_argument(
        "--out", type=Path, default=KIT_DIR / "starter", help="handout folder (default: starter/)"
    )
    parser.add_argument(
        "--lessons", type=Path, default=KIT_DIR / "lessons", help="lessons (default: lessons/)"
    )
    parser.add_argument(
        "--after",
        metavar="LESSON",
        choices=list(LESSONS),
        help="the handout for after LESSON: its and earlier lessons' exercises are given in the "
        "package (default: every exercise stubbed, as in starter/)",
    )
    parser.set_defaults(handler=run)
