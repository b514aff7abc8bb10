"""The solution markers: the one reader of ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(each exercise body sits between them), for the student handout and for the grader's sandbox
alike.

Kept apart from ``minilb.release`` because it is light: the grader imports it, and must not pay
for nbformat on every start.
"""

import ast
from collections.abc import Collection

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")  # what nbgrader writes too


class ReleaseError(ValueError):
    """The handout cannot be built; the text says why."""


def stub_solutions(source: str, filename: str = "<source>", keep: Collection[str] = ()) -> str:
    """``source`` with each solution region replaced by a stub at the region's indentation.

    A region at column 0 encloses whole top-level definitions (a solution's private helpers):
    it is dropped, together with the blank lines after it. Regions inside the functions named
    in ``keep`` stay as they are, and so do the column-0 regions of a module that defines one
    of them: the grader's sandbox keeps earlier lessons' solution bodies this way.
    """
    owners = _outermost_functions(source) if keep else {}
    keep_helpers = bool(set(keep) & set(owners.values()))
    kept: list[str] = []
    region_start = 0  # line number of the open region's BEGIN marker, 0 outside a region
    keeping = skip_blank_lines = False
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if region_start:
                raise ReleaseError(f"{filename}:{number}: solution region opened inside another")
            region_start = number
            indent = line[: len(line) - len(line.lstrip())]
            keeping = owners.get(number) in keep if indent else keep_helpers
            if keeping:
                kept.append(line)
            elif indent:
                kept += [f"{indent}{stub}\n" for stub in STUB_LINES]
        elif marker == END_SOLUTION:
            if not region_start:
                raise ReleaseError(f"{filename}:{number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            if keeping:
                kept.append(line)
            skip_blank_lines = not keeping and not line[0].isspace()
            region_start, keeping = 0, False
        elif (keeping or not region_start) and not (skip_blank_lines and not marker):
            skip_blank_lines = False
            kept.append(line)
    if region_start:
        raise ReleaseError(f"{filename}:{region_start}: solution region is never closed")
    return "".join(kept).rstrip("\n") + "\n"


def _outermost_functions(source: str) -> dict[int, str]:
    """Line number -> the name of the top-level function that line belongs to."""
    owners: dict[int, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            owners.update(dict.fromkeys(range(node.lineno, node.end_lineno + 1), node.name))
    return owners
