"""``minilb check NOTEBOOK``: run a notebook's visible tests and report on each exercise.

The notebook runs headless from top to bottom in a fresh kernel, from its own folder (so a
notebook in the handout imports the handout's ``minilb``); the file itself is not changed.
Cells tagged ``demo`` (live servers, heavy plots) are skipped, unless they are also tagged
``check``: a cell tagged ``check`` asserts that your code works, so it always runs.

Cells are named as Jupyter numbers them: ``cell [5]`` is the fifth code cell, the one that shows
``[5]`` beside it after "Restart Kernel and Run All Cells".

Exit code: 0 if every visible test passes and no cell raised, 1 if not, 2 if the file is not a
readable notebook (or no Python kernel would start).
"""

import argparse
import contextlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat.reader import NotJSONError
from rich.console import Console
from rich.markup import escape

from minilb.exercises import defines_stub
from minilb.notebook_cells import is_autograder_cell, is_check, is_demo

DEFAULT_CELL_TIMEOUT = 60.0  # seconds; the lessons' test cells take well under one
KERNEL_START_TIMEOUT = 180.0  # seconds; a kernel starts in a few, more on a busy machine


class KernelError(ValueError):
    """The Python kernel that runs the notebook could not be started (one line for the user)."""


@dataclass(frozen=True)
class CellError:
    """An exception that a cell raised: its class name and its message."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


@dataclass(frozen=True)
class ExerciseResult:
    """How one exercise did: ``status`` is passed, failed, not implemented, waiting (for an
    earlier lesson's exercise it uses) or error."""

    exercise: str
    status: str
    detail: str = ""


def load_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, or ``ValueError`` with a one-line reason."""
    if not path.is_file():
        raise ValueError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, NotJSONError):
        raise ValueError(f"{path} is not a readable notebook (not JSON text)") from None
    except Exception as error:  # nbformat raises several kinds for JSON that is no notebook
        raise ValueError(f"{path} is not a Jupyter notebook ({type(error).__name__})") from None


def nbgrader_info(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_run(cell: nbformat.NotebookNode) -> bool:
    """Whether ``minilb check`` runs this cell: every code cell but the demos that are no
    checks, and the autograder's cells (the hidden tests run only when you hand in)."""
    if cell.cell_type != "code" or is_autograder_cell(cell):
        return False
    return is_check(cell) or not is_demo(cell)


def jupyter_numbers(notebook: nbformat.NotebookNode) -> dict[int, int]:
    """Cell index -> the number Jupyter shows beside it after Run All (its place among the
    code cells, from 1)."""
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    return {index: number for number, index in enumerate(code, start=1)}


def run_cells(
    notebook: nbformat.NotebookNode, folder: Path, timeout: float
) -> dict[int, CellError | None]:
    """Run the cells ``is_run`` picks, in order: cell index -> its error, None if none."""
    client = NotebookClient(
        notebook,
        timeout=timeout,
        startup_timeout=KERNEL_START_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": folder}},
    )
    runs: dict[int, CellError | None] = {}
    with contextlib.ExitStack() as stack:
        try:
            # The kernel's own chatter (transport warnings) would only bury the report.
            stack.enter_context(client.setup_kernel(stderr=subprocess.DEVNULL))
        except Exception as error:  # no kernelspec, a kernel that dies or never answers...
            raise KernelError(f"could not start a Python kernel: {error}") from None
        for index, cell in enumerate(notebook.cells):
            if not is_run(cell):
                continue
            runs[index] = None
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                runs[index] = CellError(error.ename, error.evalue)
            except CellTimeoutError:
                # The kernel is still busy with this cell: nothing after it can run.
                runs[index] = CellError("Timeout", f"still running after {timeout:g} seconds")
                break
            except DeadKernelError:
                runs[index] = CellError("DeadKernel", "the Python kernel died in this cell")
                break
    return runs


def judge(
    exercise: str,
    runs: dict[int, CellError | None],
    solution: int | None,
    test: int,
    written: bool = False,
) -> ExerciseResult:
    """Turn what the exercise cell and its test cell raised into a verdict.

    ``written``: the exercise cell's function is no stub any more, so a ``NotImplementedError``
    comes from something it calls, never from the student's own function.
    """
    solution_error = runs.get(solution) if solution is not None else None
    if solution_error is not None:
        return ExerciseResult(exercise, "error", f"the exercise cell raised {solution_error}")
    if test not in runs:
        return ExerciseResult(exercise, "error", "its test cell did not run")
    test_error = runs[test]
    if test_error is None:
        return ExerciseResult(exercise, "passed")
    if test_error.name == "AssertionError":
        return ExerciseResult(exercise, "failed", test_error.message or "an assertion failed")
    if test_error.name == "ExerciseNotDone":  # an earlier lesson's exercise it builds on
        return ExerciseResult(exercise, "waiting", test_error.message)
    if test_error.name == "NotImplementedError":
        if written:
            detail = "it calls a function that is still a stub (NotImplementedError)"
            return ExerciseResult(exercise, "error", detail)
        return ExerciseResult(exercise, "not implemented")
    return ExerciseResult(exercise, "error", str(test_error))


def check_notebook(
    notebook: nbformat.NotebookNode, runs: dict[int, CellError | None]
) -> tuple[list[ExerciseResult], list[str]]:
    """Per exercise verdicts, and a line for every other cell that failed."""
    solution_cells = {
        nbgrader_info(cell).get("grade_id"): index
        for index, cell in enumerate(notebook.cells)
        if nbgrader_info(cell).get("solution")
    }
    written = {
        exercise for exercise, index in solution_cells.items()
        if not defines_stub(notebook.cells[index].source, exercise)
    }  # fmt: skip
    numbers = jupyter_numbers(notebook)
    results, exercise_cells = [], set(solution_cells.values())
    for index, cell in enumerate(notebook.cells):
        info = nbgrader_info(cell)
        if not info.get("grade") or info.get("solution") or not is_run(cell):
            continue
        exercise = info.get("grade_id", f"cell [{numbers[index]}]").removeprefix("test_")
        exercise_cells.add(index)
        solution = solution_cells.get(exercise)
        results.append(judge(exercise, runs, solution, index, exercise in written))
    others = [
        f"cell [{numbers[index]}] ({first_line(notebook.cells[index].source)}) {explain(error)}"
        for index, error in sorted(runs.items())
        if error is not None and index not in exercise_cells
    ]
    return results, others


def explain(error: CellError) -> str:
    if error.name == "ExerciseNotDone":
        return f"needs an earlier exercise: {error.message}"
    if error.name == "NotImplementedError":
        return "needs an exercise that is not implemented yet"
    if error.name == "AssertionError":
        return f"failed: {error.message or 'an assertion failed'}"
    return f"raised {error}"


def first_line(source: str) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= 50 else line[:47] + "..."


MARKS = {
    "passed": "[green]✓ passed[/]",
    "failed": "[red]✗ failed[/]",
    "not implemented": "[yellow]… not implemented yet[/]",
    "waiting": "[yellow]… waits for an earlier lesson[/]",
    "error": "[red]✗ error in your code[/]",
}


def print_report(
    name: str, results: list[ExerciseResult], others: list[str], skipped_demos: int
) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(name)}[/]")
    for result in results:
        detail = f": {escape(result.detail)}" if result.detail else ""
        console.print(f"  {result.exercise}: {MARKS[result.status]}{detail}", markup=True)
    if not results:
        console.print("  this notebook has no exercises with visible tests")
    for line in others:
        console.print(f"  [red]other cell failed[/]: {escape(line)}")
    passed = sum(result.status == "passed" for result in results)
    console.print(f"{passed} of {len(results)} exercises pass their visible tests.")
    if others:
        cells = "cell" if len(others) == 1 else "cells"
        console.print(f"{len(others)} other {cells} failed: the notebook does not run cleanly.")
    if skipped_demos:
        cells = "cell" if skipped_demos == 1 else "cells"
        console.print(f"({skipped_demos} demo {cells} skipped: run them in Jupyter.)")


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout}")
    path = args.notebook.resolve()
    notebook = load_notebook(path)
    results, others = check_notebook(notebook, run_cells(notebook, path.parent, args.timeout))
    skipped = sum(
        cell.cell_type == "code" and is_demo(cell) and not is_run(cell) for cell in notebook.cells
    )
    print_report(args.notebook.name, results, others, skipped)
    # Any cell that raised counts, not only the exercises' tests: "all pass" must mean that.
    clean = not others and all(result.status == "passed" for result in results)
    return 0 if clean else 1


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "check",
        help="run a notebook's visible tests and report on each exercise",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook", type=Path, help="the notebook, e.g. 01_cost_matrix.ipynb")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds each cell may run (default {DEFAULT_CELL_TIMEOUT:g})",
    )
    parser.set_defaults(handler=run)
