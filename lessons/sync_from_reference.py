"""Keep the lesson notebooks in step with the reference package and the rubric.

1. Code: the reference package is the one source of truth for exercise code (below).
2. Points: the rubric (``autograder.rubric.RUBRIC``) is the one source of truth for points.
   After each exercise's visible test (a grade cell worth 0 points: a failing visible assert
   costs nothing by itself) comes an *autograder cell*, ``grade_<exercise>``, worth the rubric's
   points, whose hidden-tests region asks ``autograder.nbgrader_bridge`` for the exercise's
   score, so ``nbgrader autograde`` gives the points ``minilb grade`` gives. In the release
   the region is stripped and the cell shows only its first comment line.
3. Version: each lesson notebook's ``metadata.minilb.handout`` is stamped with
   ``autograder.grade.handout_version`` (a short hash of its exercises and points), so the
   grader can name a notebook handed in from another version of the handout.

Code sync, in detail:

The reference package is the one source of truth for exercise code. A notebook cell that
defines an exercise function, or a private helper (``_name``) of an exercise module, gets that
function's reference source: in a solution cell with its ``### BEGIN/END SOLUTION`` markers, in
a given cell without them (nbgrader refuses markers outside solution cells). A solution cell
that holds a module-level solution block (a solver's private helpers) gets that block afresh.

    python lessons/sync_from_reference.py          # rewrite the notebooks (idempotent)
    python lessons/sync_from_reference.py --check  # exit 1 if a notebook is out of date
    python lessons/sync_from_reference.py 04_sockets_and_forking   # only these lessons
"""

import ast
import sys
from pathlib import Path

import nbformat

from autograder.contract import LESSONS
from autograder.grade import handout_version
from autograder.handout import exercise_modules
from autograder.rubric import RUBRIC
from minilb.solutions import BEGIN_SOLUTION, END_SOLUTION

KIT = Path(__file__).resolve().parent.parent
PACKAGE = KIT / "reference_solution" / "minilb"
EXERCISE_MODULES = sorted({name.removeprefix("minilb.") for name in exercise_modules().values()})
BEGIN, END = BEGIN_SOLUTION, END_SOLUTION
EXERCISES = {name for names in LESSONS.values() for name in names}


def reference_functions() -> tuple[dict[str, str], list[str]]:
    """Each top-level function's source (closing marker comment included), and the
    module-level solution blocks."""
    functions, blocks = {}, []
    for module in EXERCISE_MODULES:
        source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and is_synced(node.name):
                end = node.end_lineno
                while end < len(lines) and lines[end].strip() == END:
                    end += 1
                functions[node.name] = "\n".join(lines[node.lineno - 1 : end])
        for start, line in enumerate(lines):
            if line == BEGIN:
                blocks.append("\n".join(lines[start : lines.index(END, start) + 1]))
    return functions, blocks


def is_synced(name: str) -> bool:
    # Lessons may define teaching versions of framework functions (lesson 4's recv_exactly):
    # only exercises and the exercise modules' private helpers are the package's to dictate.
    return name in EXERCISES or name.startswith("_")


def without_markers(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip() not in (BEGIN, END))


def synced_cell(source: str, is_solution: bool, functions: dict, blocks: list) -> str:
    """The cell's source with each known function (and solution block) replaced by the
    reference version; everything else in the cell is kept as it is."""
    lines = source.splitlines()
    replacements = []  # (first line, last line, new text), 0-based inclusive
    if is_solution:
        for start, line in enumerate(lines):
            if line == BEGIN:  # a module-level block: the solver's helpers
                end = lines.index(END, start)
                old = "\n".join(lines[start : end + 1])
                new = max(blocks, key=lambda block: _shared_names(block, old))
                replacements.append((start, end, new))
    taken = {line for first, last, _ in replacements for line in range(first, last + 1)}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            first = node.lineno - 1 - len(node.decorator_list)
            if first in taken:
                continue
            last = node.end_lineno - 1
            while last + 1 < len(lines) and lines[last + 1].strip() == END:
                last += 1
            new = functions[node.name] if is_solution else without_markers(functions[node.name])
            replacements.append((first, last, new))
    for first, last, new in sorted(replacements, reverse=True):
        lines[first : last + 1] = new.splitlines()
    return "\n".join(lines)


def _shared_names(block: str, other: str) -> int:
    def names(text: str) -> set[str]:
        return {n.name for n in ast.parse(without_markers(text)).body if hasattr(n, "name")}

    return len(names(block) & names(other))


BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader_metadata(grade_id: str, points: float) -> dict:
    """A locked grade cell's metadata (what nbgrader writes for an "Autograder tests" cell)."""
    points = int(points) if float(points).is_integer() else float(points)
    return {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
            "schema_version": 3, "solution": False}


def autograder_source(lesson: str, exercise: str, points: float) -> str:
    return "\n".join([
        f"# Graded by the autograder: {points:g} points (hidden tests, run when you hand in)",
        BEGIN_HIDDEN,
        "from autograder.nbgrader_bridge import exercise_score",
        "",
        f"exercise_score({lesson!r}, {exercise!r})",
        END_HIDDEN,
    ])


def is_autograder_cell(cell: nbformat.NotebookNode) -> bool:
    nbgrader = cell.metadata.get("nbgrader", {})
    return bool(nbgrader.get("grade")) and nbgrader.get("grade_id", "").startswith("grade_")


def sync_grading_cells(notebook: nbformat.NotebookNode, lesson: str) -> bool:
    """Give every rubric exercise of ``lesson`` a 0-point visible test followed by its
    autograder cell (moved there if it sits elsewhere, dropped if the rubric no longer has the
    exercise); return whether anything changed."""
    before = nbformat.writes(notebook)
    old = {cell.metadata.nbgrader["grade_id"]: cell
           for cell in notebook.cells if is_autograder_cell(cell)}
    cells = notebook.cells = [cell for cell in notebook.cells if not is_autograder_cell(cell)]
    for exercise in RUBRIC[lesson]:
        where = [i for i, cell in enumerate(cells)
                 if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise.name]
        if len(where) != 1:
            raise ValueError(f"{lesson}: {len(where)} solution cells for {exercise.name}")
        after = where[0] + 1  # the autograder cell's place: after the visible test, if any
        test = cells[after] if after < len(cells) else None
        if test and test.metadata.get("nbgrader", {}).get("grade_id") == f"test_{exercise.name}":
            test.metadata["nbgrader"] = nbgrader_metadata(f"test_{exercise.name}", 0)
            after += 1
        grade_id = f"grade_{exercise.name}"
        cell = old.get(grade_id) or nbformat.v4.new_code_cell()
        if grade_id not in old:
            cell.id = f"grade-{exercise.name}"  # stable, so that re-running changes nothing
        cell.source = autograder_source(lesson, exercise.name, exercise.points)
        cell.metadata["nbgrader"] = nbgrader_metadata(grade_id, exercise.points)
        cells.insert(after, cell)
    return nbformat.writes(notebook) != before


def sync(notebook_path: Path, write: bool) -> bool:
    """Sync one notebook; return whether it was out of date."""
    notebook = nbformat.read(notebook_path, as_version=4)
    functions, blocks = reference_functions()
    changed = False
    if notebook_path.stem in RUBRIC:
        changed = sync_grading_cells(notebook, notebook_path.stem)
        stamp = handout_version(notebook_path.stem)
        if notebook.metadata.get("minilb", {}).get("handout") != stamp:
            notebook.metadata.setdefault("minilb", {})["handout"] = stamp
            changed = True
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        is_solution = bool(cell.metadata.get("nbgrader", {}).get("solution"))
        try:
            new = synced_cell(cell.source, is_solution, functions, blocks)
        except SyntaxError:
            continue  # magics or a deliberate syntax lesson: nothing of ours in it
        if new != cell.source:
            cell.source, changed = new, True
    if changed and write:
        nbformat.write(notebook, notebook_path)
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    only = [arg for arg in argv if not arg.startswith("--")]
    stale = [
        path.name
        for path in sorted(KIT.glob("lessons/[0-9]*/[0-9]*.ipynb"))
        if (not only or path.stem in only) and sync(path, write=not check)
    ]
    if stale:
        verb = "out of date (run `python lessons/sync_from_reference.py`)" if check else "synced"
        print(f"{verb}: {', '.join(stale)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
