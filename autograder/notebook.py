"""The code of a submitted notebook that the grader runs (docs/CONVENTIONS.md, Notebooks).

Kept: every code cell, except visible test cells (nbgrader ``grade`` true and ``solution``
false: the grader asserts, never the student's notebook) and cells tagged ``demo`` (servers,
sleeps, plots). IPython-only lines (``%magic``, ``!shell``) are dropped: plain Python runs them.
"""

import json
from pathlib import Path


class NotebookError(ValueError):
    """A notebook that cannot be read; the text says why, in words for the student."""


def _is_skipped(cell: dict) -> bool:
    metadata = cell.get("metadata") or {}
    nbgrader = metadata.get("nbgrader") or {}
    visible_test = bool(nbgrader.get("grade")) and not nbgrader.get("solution")
    return visible_test or "demo" in (metadata.get("tags") or [])


def _python_only(source: str) -> str:
    lines = source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


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
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or _is_skipped(cell):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):  # the notebook format allows a list of lines
            source = "".join(str(line) for line in source)
        if not isinstance(source, str):
            raise NotebookError("a code cell's source is neither text nor a list of lines")
        sources.append(_python_only(source))
    return sources
