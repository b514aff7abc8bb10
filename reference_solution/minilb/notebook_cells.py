"""What each cell of a lesson notebook is, and the code a grader or a policy loader runs.

The lessons mark their cells so: an exercise cell carries nbgrader metadata with
``solution: true``; a visible test cell ``grade: true`` (it asserts: the notebook's own
check); a cell tagged ``check`` asserts too (a check that is not an exercise's test); a cell
tagged ``demo`` starts servers, sleeps or draws heavy plots. The code to run is every code cell
except visible tests, checks and demos.

Notebooks are read as plain JSON, not with nbformat: a submitted notebook is untrusted and may
be malformed in any way (a symbolic link, a FIFO, gigabytes, JSON nested a million levels deep,
a ``metadata`` that is a string), and every way must end in a clear ``NotebookError``, never in
a hang or another exception. ``read_notebook`` opens the file once, refusing anything but a
regular file of sane size; ``code_cells_of`` checks the shape of every part it uses. The
predicates (``is_demo`` ...) take a cell as nbformat or plain JSON gives it (both are mappings)
and treat a part of the wrong type as absent, so that no caller crashes on one.
"""

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 2**20  # a lesson with its plots is well under 1 MiB


def _mapping(value: object) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def tags(cell: Mapping) -> list:
    """The cell's tags (``metadata.tags``), an empty list if it has none."""
    found = _mapping(cell.get("metadata")).get("tags")
    return [tag for tag in found if isinstance(tag, str)] if isinstance(found, list) else []


def is_demo(cell: Mapping) -> bool:
    """Tagged ``demo``: servers, sleeps, plots; graders and policy loaders skip it."""
    return "demo" in tags(cell)


def is_check(cell: Mapping) -> bool:
    """Tagged ``check``: it asserts that the student's code works (``minilb check`` runs it,
    even when it is a demo too); it is never graded code."""
    return "check" in tags(cell)


def is_visible_test(cell: Mapping) -> bool:
    """An nbgrader test cell: it asserts, so it is the student's check, never graded code."""
    nbgrader = _mapping(_mapping(cell.get("metadata")).get("nbgrader"))
    return nbgrader.get("grade") is True and nbgrader.get("solution") is not True


def is_autograder_cell(cell: Mapping) -> bool:
    """An exercise's autograder cell (``grade_<exercise>``): worth the exercise's points, it
    asks the kit's grader for the score when nbgrader grades the notebook (its hidden-tests
    region is stripped from the handout). Nothing in it for a student's self-check to run."""
    grade_id = _mapping(_mapping(cell.get("metadata")).get("nbgrader")).get("grade_id")
    return is_visible_test(cell) and isinstance(grade_id, str) and grade_id.startswith("grade_")


def is_student_code(cell: Mapping) -> bool:
    """A code cell that defines what the student wrote or was given."""
    return (
        cell.get("cell_type") == "code"
        and not is_demo(cell)
        and not is_check(cell)
        and not is_visible_test(cell)
    )


def without_magics(source: str) -> str:
    """``source`` with IPython-only lines (``%magic``, ``!shell``) blanked, so that plain Python
    runs it and line numbers in error messages still match the notebook."""
    lines = source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


class NotebookError(ValueError):
    """A notebook that cannot be read; the text says why, in words for the student."""


def read_notebook(path: Path, limit: int = MAX_NOTEBOOK_BYTES, one_name: bool = False) -> bytes:
    """The bytes of the regular file at ``path``, read through one descriptor.

    ``NotebookError`` if it is missing, a symbolic link (never followed), a FIFO, a device or a
    folder, larger than ``limit``, or (``one_name``: the grader's reading) a hard link, a file
    with another name that may lie outside the folder handed in. It is opened without
    following a link and without blocking, then checked on that descriptor, so a FIFO or a
    swapped file cannot hang a reader or slip past the check."""
    try:
        _require_regular(os.lstat(path).st_mode)  # first: a device is never even opened
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise NotebookError(f"the notebook could not be read ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        _require_regular(status.st_mode)
        if one_name and status.st_nlink > 1:
            raise NotebookError(f"the notebook is a hard link (one file with {status.st_nlink} "
                                "names, not all in your folder): not read")
        data = file.read(limit + 1) if status.st_size <= limit else b""
    if status.st_size > limit or len(data) > limit:
        raise NotebookError(f"the notebook is larger than {limit // 2**20} MiB: not read")
    return data


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotebookError(f"the notebook is {_kind(mode)}, not a file: not read")


def _kind(mode: int) -> str:
    kinds = {stat.S_ISLNK: "a symbolic link", stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO",
             stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def code_cells(path: Path) -> list[str]:
    """The source of each code cell to run, in order; ``NotebookError`` (naming ``path``) if
    unreadable. For the student-side tools: a link to a notebook is followed here (the grader
    never follows one: it calls ``read_notebook`` on the path as handed in)."""
    try:
        return code_cells_of(read_notebook(Path(os.path.realpath(path))))  # never raises
    except NotebookError as error:
        raise NotebookError(f"{path}: {error}") from None


def code_cells_of(data: bytes) -> list[str]:
    """``code_cells`` of a notebook's bytes (read once, by ``read_notebook``)."""
    try:
        notebook = json.loads(data)
    except RecursionError:
        raise NotebookError("the file is not a notebook (its JSON is nested too deeply)") from None
    except ValueError:  # also bytes that are not UTF-8 text
        raise NotebookError("the file is not a notebook (it is not valid JSON)") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("the file is not a notebook (it has no list of cells)")
    sources = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {number} is not a JSON object")
        _check_shape(cell, number)
        if is_student_code(cell):
            sources.append(without_magics(_source(cell, number)))
    return sources


def _check_shape(cell: dict, number: int) -> None:
    """The parts of a cell that decide whether it runs have the types the format gives them."""
    metadata = cell.get("metadata", {})
    if not isinstance(metadata, dict):
        raise NotebookError(f"cell {number}'s metadata is not a JSON object")
    if not isinstance(metadata.get("tags", []), list) or not all(
            isinstance(tag, str) for tag in metadata.get("tags", [])):
        raise NotebookError(f"cell {number}'s tags are not a list of text")
    nbgrader = metadata.get("nbgrader", {})
    if not isinstance(nbgrader, dict):
        raise NotebookError(f"cell {number}'s nbgrader metadata is not a JSON object")
    if not all(isinstance(nbgrader.get(key, False), bool) for key in ("grade", "solution")):
        raise NotebookError(f"cell {number}'s nbgrader grade/solution flags are not true/false")
    if not isinstance(cell.get("cell_type", ""), str):
        raise NotebookError(f"cell {number}'s cell_type is not text")


def _source(cell: dict, number: int) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        source = "".join(source)  # the notebook format allows a list of lines
    if not isinstance(source, str):
        raise NotebookError(f"code cell {number}'s source is neither text nor a list of lines")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON allows and no program holds
        raise NotebookError(f"code cell {number}'s source is not valid text") from None
    return source
