"""What each cell of a lesson notebook is, and the code a grader or a policy loader runs.

The lessons mark their cells so: an exercise cell carries nbgrader metadata with
``solution: true``; a visible test cell ``grade: true`` (it asserts: the notebook's own
check); a cell tagged ``check`` asserts too (a check that is not an exercise's test); a cell
tagged ``demo`` starts servers, sleeps or draws heavy plots. The code to run is every code cell
except visible tests, checks and demos.

Notebooks are read as plain JSON, not with nbformat: a submitted notebook is untrusted and may
be malformed in any way, and every way must end in a clear ``NotebookError``. A cell may be an
nbformat node or a plain dict: both are mappings.
"""

import json
from collections.abc import Mapping
from pathlib import Path


def tags(cell: Mapping) -> list:
    """The cell's tags (``metadata.tags``), an empty list if it has none."""
    return list((cell.get("metadata") or {}).get("tags") or [])


def is_demo(cell: Mapping) -> bool:
    """Tagged ``demo``: servers, sleeps, plots; graders and policy loaders skip it."""
    return "demo" in tags(cell)


def is_check(cell: Mapping) -> bool:
    """Tagged ``check``: it asserts that the student's code works (``minilb check`` runs it,
    even when it is a demo too); it is never graded code."""
    return "check" in tags(cell)


def is_visible_test(cell: Mapping) -> bool:
    """An nbgrader test cell: it asserts, so it is the student's check, never graded code."""
    nbgrader = (cell.get("metadata") or {}).get("nbgrader") or {}
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution")


def is_autograder_cell(cell: Mapping) -> bool:
    """An exercise's autograder cell (``grade_<exercise>``): worth the exercise's points, it
    asks the kit's grader for the score when nbgrader grades the notebook (its hidden-tests
    region is stripped from the handout). Nothing in it for a student's self-check to run."""
    nbgrader = (cell.get("metadata") or {}).get("nbgrader") or {}
    return is_visible_test(cell) and str(nbgrader.get("grade_id", "")).startswith("grade_")


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


def code_cells(path: Path) -> list[str]:
    """The source of each code cell to run, in order; ``NotebookError`` if unreadable."""
    try:
        notebook = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise NotebookError(f"the notebook could not be read ({error.strerror})") from None
    except ValueError:
        raise NotebookError("the file is not a notebook (it is not valid JSON)") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("the file is not a notebook (it has no list of cells)")
    sources = []
    for cell in cells:
        if not isinstance(cell, dict) or not is_student_code(cell):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):  # the notebook format allows a list of lines
            source = "".join(str(line) for line in source)
        if not isinstance(source, str):
            raise NotebookError("a code cell's source is neither text nor a list of lines")
        sources.append(without_magics(source))
    return sources
