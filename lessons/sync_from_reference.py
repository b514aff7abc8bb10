"""Copy the reference package's functions into the lesson notebooks, so the two never drift.

The reference package is the one source of truth for exercise code. A notebook cell that
defines an exercise function, or a private helper (``_name``) of an exercise module, gets that
function's reference source: in a solution cell with its ``### BEGIN/END SOLUTION`` markers, in
a given cell without them (nbgrader refuses markers outside solution cells). A solution cell
that holds a module-level solution block (a solver's private helpers) gets that block afresh.

    python lessons/sync_from_reference.py          # rewrite the notebooks
    python lessons/sync_from_reference.py --check  # exit 1 if a notebook is out of date
"""

import ast
import sys
from pathlib import Path

import nbformat

from autograder.contract import LESSONS
from autograder.handout import exercise_modules
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


def sync(notebook_path: Path, write: bool) -> bool:
    """Sync one notebook; return whether it was out of date."""
    notebook = nbformat.read(notebook_path, as_version=4)
    functions, blocks = reference_functions()
    changed = False
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
    stale = [
        path.name
        for path in sorted(KIT.glob("lessons/[0-9]*/[0-9]*.ipynb"))
        if sync(path, write=not check)
    ]
    if stale:
        verb = "out of date (run `python lessons/sync_from_reference.py`)" if check else "synced"
        print(f"{verb}: {', '.join(stale)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
