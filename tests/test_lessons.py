"""The lesson notebooks: committed clean, faithful to the exercise API, and runnable headless.

Each solution cell must be the reference function, character for character up to formatting
(the AST is compared), so the notebooks and the package can never drift apart.
"""

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

from autograder.contract import LESSONS
from autograder.rubric import RUBRIC

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"
EXERCISE_MODULES = (
    "minilb.costs", "minilb.scheduling", "minilb.optimal", "minilb.protocol", "minilb.network",
)
EXERCISES = {name for names in LESSONS.values() for name in names}
LESSON_OF = {name: lesson for lesson, names in LESSONS.items() for name in names}
CELL_TIMEOUT = 120


def notebook(lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(LESSONS_DIR / lesson / f"{lesson}.ipynb", as_version=4)


def code_cells(lesson: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook(lesson).cells if cell.cell_type == "code"]


def python_source(cell: nbformat.NotebookNode) -> str:
    """The cell without IPython magics, which are not Python."""
    return "\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!")))


def definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }


@cache
def reference_definitions() -> dict[str, tuple[object, ast.AST]]:
    """Every top-level function and class of the exercise modules: (module, AST node)."""
    found = {}
    for name in EXERCISE_MODULES:
        module = importlib.import_module(name)
        tree = ast.parse(Path(inspect.getsourcefile(module)).read_text())
        found.update({d: (module, node) for d, node in definitions(tree).items()})
    return found


def solution_cells(lesson: str) -> list[tuple[int, nbformat.NotebookNode]]:
    cells = notebook(lesson).cells
    return [
        (i, cell)
        for i, cell in enumerate(cells)
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]


def signature_of(node: ast.FunctionDef, module: object) -> list[tuple[str, str, object]]:
    """(name, kind, default value) per parameter, defaults evaluated in the module's namespace."""
    positional = node.args.posonlyargs + node.args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(node.args.defaults)) + [
        eval(compile(ast.Expression(d), "<default>", "eval"), vars(module))
        for d in node.args.defaults
    ]
    kinds = ["POSITIONAL_ONLY"] * len(node.args.posonlyargs) + ["POSITIONAL_OR_KEYWORD"] * len(
        node.args.args
    )
    params = [(a.arg, k, d) for a, k, d in zip(positional, kinds, defaults, strict=True)]
    assert node.args.vararg is None and not node.args.kwonlyargs and node.args.kwarg is None
    return params


def reference_signature(function: object) -> list[tuple[str, str, object]]:
    return [
        (p.name, p.kind.name, p.default) for p in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize("lesson", LESSONS)
def test_notebook_is_committed_without_outputs(lesson):
    nb = notebook(lesson)
    assert nb.metadata.kernelspec.name == "python3"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    counted = [i for i, c in enumerate(nb.cells) if c.get("execution_count") is not None]
    assert not dirty, f"{lesson}: cells {dirty} have outputs; clear them before committing"
    assert not counted, f"{lesson}: cells {counted} have an execution count; clear them"


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_cells_are_exactly_the_lessons_exercises(lesson):
    cells = solution_cells(lesson)
    names = [cell.metadata.nbgrader["grade_id"] for _, cell in cells]
    assert sorted(names) == sorted(LESSONS[lesson]), f"{lesson} has exercises {names}"
    MetadataValidatorV3().validate_nb(notebook(lesson))  # what nbgrader itself will insist on
    for _, cell in cells:
        name = cell.metadata.nbgrader["grade_id"]
        assert cell.cell_type == "code"
        assert cell.metadata.nbgrader == {
            "solution": True,
            "grade": False,
            "locked": False,
            "grade_id": name,
            "schema_version": 3,
        }
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_cells_are_the_reference_functions(lesson):
    reference = reference_definitions()
    for _, cell in solution_cells(lesson):
        name = cell.metadata.nbgrader["grade_id"]
        defined = definitions(ast.parse(python_source(cell)))
        assert name in defined, f"{lesson}: the cell {name!r} does not define {name}()"
        for helper, node in defined.items():  # the exercise, and any private helpers of it
            assert helper in reference, f"{lesson}: {helper} is not in the reference package"
            module, expected = reference[helper]
            assert ast.dump(node) == ast.dump(expected), (
                f"{lesson}: {helper} differs from {module.__name__}.{helper}; rebuild the notebook"
            )
        module, _ = reference[name]
        assert signature_of(defined[name], module) == reference_signature(getattr(module, name))


def nbgrader_of(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def locked_grade_cell(grade_id: str, points: float) -> dict:
    return {"solution": False, "grade": True, "locked": True, "grade_id": grade_id,
            "points": points, "schema_version": 3}


HIDDEN = "### BEGIN HIDDEN TESTS\nfrom autograder.nbgrader_bridge import exercise_score\n\n"


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_exercise_is_followed_by_its_visible_test_then_its_autograder_cell(lesson):
    cells = notebook(lesson).cells
    points = {exercise.name: exercise.points for exercise in RUBRIC[lesson]}
    for index, cell in solution_cells(lesson):
        name = cell.metadata.nbgrader["grade_id"]
        test = cells[index + 1]
        assert test.cell_type == "code", f"{lesson}: no test cell right after {name}"
        # Worth nothing by itself: a failing visible assert must not cost the hidden points.
        assert nbgrader_of(test) == locked_grade_cell(f"test_{name}", 0), (
            f"{lesson}: test_{name} metadata; run `python lessons/sync_from_reference.py`"
        )
        assert name in test.source and ("expect" in test.source or "assert" in test.source)
        if name not in points:
            continue  # an exercise the rubric does not grade (yet)
        graded = cells[index + 2]
        assert nbgrader_of(graded) == locked_grade_cell(f"grade_{name}", points[name]), (
            f"{lesson}: grade_{name} must be worth the rubric's {points[name]} points; "
            "run `python lessons/sync_from_reference.py`"
        )
        assert f"{HIDDEN}exercise_score({lesson!r}, {name!r})\n### END HIDDEN TESTS" in (
            graded.source
        )


@pytest.mark.parametrize("lesson", LESSONS)
def test_nbgrader_points_are_the_rubrics(lesson):
    """What nbgrader adds up per exercise and in total is exactly the rubric."""
    graded = {
        nbgrader_of(cell)["grade_id"]: nbgrader_of(cell)["points"]
        for cell in notebook(lesson).cells
        if nbgrader_of(cell).get("grade") and nbgrader_of(cell)["points"]
    }
    assert graded == {f"grade_{exercise.name}": exercise.points for exercise in RUBRIC[lesson]}


@pytest.mark.parametrize("lesson", LESSONS)
def test_given_code_never_reveals_this_or_a_later_lessons_exercises(lesson):
    reference = reference_definitions()
    for cell in code_cells(lesson):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        tree = ast.parse(python_source(cell))
        for name, node in definitions(tree).items():
            if name in EXERCISES:
                assert LESSON_OF[name] < lesson, f"{lesson} gives away {name}"
                assert ast.dump(node) == ast.dump(reference[name][1]), f"{lesson}: given {name}"
        for node in ast.walk(tree):
            # Earlier lessons' exercises come from the package (`minilb release --after`
            # gives them); this lesson's and later ones would be stubs in the handout.
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minilb"):
                imported = {alias.name for alias in node.names} & EXERCISES
                later = {name for name in imported if LESSON_OF[name] >= lesson}
                assert not later, f"{lesson} imports {later} from minilb: stubs for students"
            if isinstance(node, ast.Attribute) and node.attr in EXERCISES:
                assert "minilb" not in ast.unparse(node), f"{lesson} uses {ast.unparse(node)}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_markers_are_only_where_nbgrader_expects_them(lesson):
    for cell in notebook(lesson).cells:
        if "HIDDEN TESTS" in cell.source:  # only the call into autograder/, never a test
            assert nbgrader_of(cell).get("grade_id", "").startswith("grade_"), lesson
            assert cell.source.count("\n") == 5, f"{lesson}: hidden tests live in autograder/"
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            assert "### BEGIN SOLUTION" not in cell.source, f"{lesson}: marker in a given cell"


@pytest.mark.parametrize("lesson", LESSONS)
def test_notebook_runs_headless_with_all_visible_tests_passing_and_draws(lesson):
    nb = notebook(lesson)
    folder = LESSONS_DIR / lesson
    # nbclient raises CellExecutionError, naming the cell, if any cell (a visible test) fails.
    NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": folder}}
    ).execute()
    outputs = [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{lesson} drew no figure"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        grade_id = nbgrader_of(cell).get("grade_id", "")
        printed = "".join(o.get("text", "") for o in cell.outputs)
        if grade_id.startswith("test_"):
            assert "passed" in printed, f"{lesson}: {grade_id} silent"
        elif grade_id.startswith("grade_"):  # the reference earns every point of the rubric
            points = nbgrader_of(cell)["points"]
            assert f"{points:g} of {points:g} points" in printed, f"{lesson}: {printed}"
            (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
            assert float(result.data["text/plain"]) == points


def test_notebook_code_taken_from_the_reference_is_up_to_date():
    """Exercise and given functions in the notebooks are the reference package's, verbatim."""
    script = Path(__file__).resolve().parent.parent / "lessons" / "sync_from_reference.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sync_puts_every_autograder_cell_back_in_place_and_is_idempotent():
    spec = importlib.util.spec_from_file_location("sync", LESSONS_DIR / "sync_from_reference.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    lesson = "02_greedy_balancing"
    nb = notebook(lesson)
    moved = next(c for c in nb.cells if nbgrader_of(c).get("grade_id") == "grade_makespan")
    nb.cells.remove(moved)
    nb.cells.append(moved)  # an instructor moved it
    nb.cells = [c for c in nb.cells if nbgrader_of(c).get("grade_id") != "grade_finish_times"]
    for cell in nb.cells:
        if nbgrader_of(cell).get("grade_id") == "grade_choose_server":
            cell.metadata.nbgrader["points"] = 99  # or edited the points by hand
    assert sync.sync_grading_cells(nb, lesson)
    assert not sync.sync_grading_cells(nb, lesson)
    assert nbformat.writes(nb) == nbformat.writes(notebook(lesson))


# --- every graded rule is stated in the handout -------------------------------------------------
# Every hidden group of every lesson maps to the sentence of the handout that states it in one
# place, autograder/stated_rules.toml: tests/test_stated_rules.py checks it.
