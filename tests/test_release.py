"""The student handout: `starter/` is exactly what `minilb release` builds, holds no solution, and
its notebooks and package run with only the stubbed exercises failing."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from minilb.exercises import LESSONS as EXERCISES_OF
from minilb.release import (
    ReleaseError,
    find_lessons,
    kept_exercises,
    normalised_notebook,
    release,
    replace_contents,
)
from minilb.solutions import BEGIN_SOLUTION, END_SOLUTION, stub_solutions

KIT = Path(__file__).resolve().parents[1]
STARTER = KIT / "starter"
LESSONS = KIT / "lessons"
PACKAGE = KIT / "reference_solution" / "minilb"
LESSON_NAMES = [lesson.name for lesson in find_lessons(LESSONS)]
IGNORED = {"__pycache__", ".ipynb_checkpoints"}


def handout_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not IGNORED & set(path.relative_to(root).parts)
        and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("starter")
    release(out)
    return out


@pytest.fixture
def starter_copy(tmp_path) -> Path:
    copy = tmp_path / "starter"
    shutil.copytree(STARTER, copy, ignore=shutil.ignore_patterns(*IGNORED))
    return copy


def test_starter_is_exactly_what_release_produces(regenerated):
    committed, fresh = handout_files(STARTER), handout_files(regenerated)
    stale = sorted(set(committed) - set(fresh))
    missing = sorted(set(fresh) - set(committed))
    differ = sorted(name for name in set(fresh) & set(committed) if fresh[name] != committed[name])
    assert not (stale or missing or differ), (
        f"starter/ is out of date (extra {stale}, missing {missing}, different {differ}): "
        "run `make release`"
    )


def test_every_lesson_is_released():
    assert LESSON_NAMES, "no lessons found"
    for name in LESSON_NAMES:
        assert (STARTER / f"{name}.ipynb").is_file(), f"no {name} in starter/: run `make release`"
    assert (STARTER / "README.md").is_file() and (STARTER / "pyproject.toml").is_file()


# ---- stubbing -----------------------------------------------------------------------------


def test_a_solution_body_becomes_a_stub_at_its_indentation():
    source = (
        'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n'
    )
    assert stub_solutions(source) == (
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n'
    )


def test_a_column_zero_region_of_helpers_is_dropped():
    source = (
        "A = 1\n\n\n### BEGIN SOLUTION\ndef _helper():\n    return 2\n### END SOLUTION\n\n\n"
        "def g():\n    return A\n"
    )
    assert stub_solutions(source) == "A = 1\n\n\ndef g():\n    return A\n"


@pytest.mark.parametrize(
    "source, complaint",
    [
        ("    ### BEGIN SOLUTION\n    x = 1\n", "never closed"),
        ("x = 1\n    ### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "inside another"),
    ],
)
def test_unpaired_markers_are_a_clear_error(source, complaint):
    with pytest.raises(ReleaseError, match=complaint):
        stub_solutions(source, "broken.py")


def test_release_outside_the_kit_says_why(tmp_path):
    with pytest.raises(ReleaseError, match="does not run inside a handout"):
        release(tmp_path / "out", lessons_dir=tmp_path)


def test_release_removes_stale_files_but_never_overwrites_a_stranger(tmp_path):
    built, out = tmp_path / "built", tmp_path / "out"
    (built / "minilb").mkdir(parents=True)
    (built / "minilb" / "__init__.py").write_text("")
    (out / "minilb").mkdir(parents=True)
    (out / "minilb" / "__init__.py").write_text("old")
    (out / "stale.ipynb").write_text("{}")
    replace_contents(out, built)
    assert handout_files(out) == {"minilb/__init__.py": b""}

    stranger = tmp_path / "home"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("precious")
    with pytest.raises(ReleaseError, match="not overwriting"):
        replace_contents(stranger, built)
    assert (stranger / "thesis.tex").read_text() == "precious"


# ---- no solution in the handout -----------------------------------------------------------


def code_without_magics(source: str) -> str:
    return "\n".join("" if line.lstrip()[:1] in "%!" else line for line in source.splitlines())


def solution_statements(source: str) -> set[str]:
    """AST dumps of every statement (at any depth) inside the solution regions of ``source``."""
    lines = source.splitlines()
    regions, start = [], None
    for number, line in enumerate(lines, start=1):
        if line.strip() == BEGIN_SOLUTION:
            start = number
        elif line.strip() == END_SOLUTION:
            regions.append((start, number))
    return {
        ast.dump(node)
        for node in ast.walk(ast.parse(code_without_magics(source)))
        if isinstance(node, ast.stmt)
        and any(begin < node.lineno and node.end_lineno < end for begin, end in regions)
    }


def all_statements(source: str) -> set[str]:
    tree = ast.parse(code_without_magics(source))
    return {ast.dump(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)}


def notebook_code(path: Path, solution_cells: bool | None = None) -> list[str]:
    cells = nbformat.read(path, as_version=4).cells
    return [
        cell.source
        for cell in cells
        if cell.cell_type == "code"
        and (
            solution_cells is None
            or bool(cell.metadata.get("nbgrader", {}).get("solution")) == solution_cells
        )
    ]


def reference_solutions() -> tuple[set[str], set[str]]:
    """Statements inside the package's solution regions, and those outside (framework code)."""
    inside, everywhere = set(), set()
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        inside |= solution_statements(source)
        everywhere |= all_statements(stub_solutions(source))
    return inside, everywhere


def test_no_marker_is_left_in_the_handout():
    for name, data in handout_files(STARTER).items():
        if name.endswith((".py", ".ipynb")):
            text = data.decode()
            sources = notebook_code(STARTER / name) if name.endswith(".ipynb") else [text]
            for source in sources:
                for line in source.splitlines():
                    assert line.strip() not in (BEGIN_SOLUTION, END_SOLUTION), f"marker in {name}"


def test_the_handout_package_holds_no_solution():
    solutions, framework = reference_solutions()
    assert solutions, "no solution regions found in the reference package"
    forbidden = solutions - framework  # a statement that also appears in framework code is fine
    for path in (STARTER / "minilb").rglob("*.py"):
        leaked = all_statements(path.read_text()) & forbidden
        assert not leaked, f"starter/minilb/{path.name} holds solution code: {sorted(leaked)[:2]}"


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_a_released_notebook_holds_no_solution_of_its_own_or_a_later_lesson(lesson):
    def lesson_solutions(names):
        return {
            statement
            for name in names
            for source in notebook_code(LESSONS / name / f"{name}.ipynb", solution_cells=True)
            for statement in solution_statements(source)
        }

    forbidden = reference_solutions()[0] | lesson_solutions(n for n in LESSON_NAMES if n >= lesson)
    # Instructors release lessons in order, so earlier lessons' solutions may be given code.
    forbidden -= lesson_solutions(n for n in LESSON_NAMES if n < lesson)
    for source in notebook_code(LESSONS / lesson / f"{lesson}.ipynb", solution_cells=False):
        forbidden -= all_statements(source)
    assert lesson_solutions([lesson]), f"{lesson} has no solution regions"
    for source in notebook_code(STARTER / f"{lesson}.ipynb"):
        leaked = all_statements(source) & forbidden
        assert not leaked, f"the released {lesson} holds solution code: {sorted(leaked)[:2]}"


# ---- the handout runs ---------------------------------------------------------------------


def handout_env(starter: Path) -> dict[str, str]:
    # The kit's reference package is installed in this venv: put the copy first on the path.
    return {**os.environ, "PYTHONPATH": str(starter)}


def is_exercise_test(cell) -> bool:
    """A visible test (``test_<exercise>``); an autograder cell holds only a comment here."""
    info = cell.metadata.get("nbgrader", {})
    return bool(info.get("grade")) and info.get("grade_id", "").startswith("test_")


def run_notebook(path: Path, starter: Path) -> tuple[nbformat.NotebookNode, dict]:
    """Run every cell of ``path`` with ``starter``'s package first on the path: the notebook
    and each failing cell's (exception name, message)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(starter)}}
    )
    errors = {}
    with client.setup_kernel(env=handout_env(starter), stderr=subprocess.DEVNULL):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                errors[index] = (error.ename, error.evalue)
    return notebook, errors


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_a_released_notebook_runs_with_only_the_stubs_failing(lesson, starter_copy):
    notebook = nbformat.read(starter_copy / f"{lesson}.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(starter_copy)}},
    )
    errors = {}
    with client.setup_kernel(env=handout_env(starter_copy), stderr=subprocess.DEVNULL):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                errors[index] = (error.ename, error.evalue)
        probe = nbformat.v4.new_code_cell("import minilb; print(minilb.__file__)")
        notebook.cells.append(probe)
        client.execute_cell(probe, len(notebook.cells) - 1)
    assert probe.outputs[0]["text"].strip() == str(starter_copy / "minilb" / "__init__.py")

    tests = [i for i, cell in enumerate(notebook.cells) if is_exercise_test(cell)]
    assert tests, f"{lesson} has no visible test cells"
    for index in tests:
        assert errors.get(index, ("no error",))[0] == "NotImplementedError", (
            f"{lesson} cell {index}: a visible test should hit the stub, got {errors.get(index)}"
        )
    for index, (name, message) in errors.items():
        stub = ("NotImplementedError", "exercise not done yet")  # a stub, or a check naming it
        assert any(word in f"{name} {message}" for word in stub), (
            f"{lesson} cell {index} is broken in the handout: {name}: {message}"
        )


def test_the_handout_package_works_on_its_own(starter_copy):
    env = handout_env(starter_copy)
    run = subprocess.run(
        [sys.executable, "-m", "minilb.cli", "--help"],
        cwd=starter_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("    ")}
    assert "check" in listed and not listed & {"release", "grade", "gradescope-package"}
    script = (
        "import minilb, minilb.servers, minilb.balancer, minilb.plots, minilb.client\n"
        "from minilb.costs import processing_time\n"
        "print(minilb.__file__)\n"
        "try:\n"
        "    processing_time('VP', 'V', 1)\n"
        "except NotImplementedError:\n"
        "    print('stubbed')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=starter_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(starter_copy / "minilb" / "__init__.py"), "stubbed"]


# ---- nbgrader's own commands on the lessons -------------------------------------------------


def nbgrader(course: Path, *args: str) -> None:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course / ".jupyter"), "PATH": path}
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stdout}{run.stderr}"


def test_nbgrader_generates_and_autogrades_a_lesson_as_it_is(tmp_path):
    from nbgrader.api import Gradebook

    lesson = LESSON_NAMES[0]
    course = tmp_path / "lessons"
    shutil.copytree(LESSONS, course, ignore=shutil.ignore_patterns(*IGNORED))
    nbgrader(course, "generate_assignment", lesson)
    released = course / "release" / lesson / f"{lesson}.ipynb"
    assert "raise NotImplementedError()" in released.read_text()

    # The solved source notebook as a submission: autograde must give it every point.
    folder = course / "submitted" / "solved" / lesson
    folder.mkdir(parents=True)
    shutil.copy(LESSONS / lesson / f"{lesson}.ipynb", folder)
    nbgrader(course, "autograde", lesson)

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        total = gradebook.find_assignment(lesson).max_score
        assert total > 0
        assert gradebook.find_submission(lesson, "solved").score == total


def test_nbgrader_releases_exactly_what_minilb_release_ships(tmp_path, regenerated):
    """An instructor's own `nbgrader generate_assignment` in lessons/ gives the handout's
    notebooks cell for cell: no post-processing happens between nbgrader and starter/."""
    course = tmp_path / "lessons"
    shutil.copytree(LESSONS, course, ignore=shutil.ignore_patterns(*IGNORED))
    nbgrader(course, "generate_assignment", "[0-9]*", "--force")
    for lesson in LESSON_NAMES:
        released = course / "release" / lesson / f"{lesson}.ipynb"
        ours = nbformat.reads(normalised_notebook(released).decode(), as_version=4).cells
        shipped = nbformat.read(regenerated / f"{lesson}.ipynb", as_version=4).cells
        assert len(ours) == len(shipped), f"{lesson}: {len(ours)} cells, handout {len(shipped)}"
        for number, (cell, other) in enumerate(zip(ours, shipped, strict=True)):
            assert (cell.cell_type, cell.source, cell.metadata) == (
                other.cell_type, other.source, other.metadata
            ), f"{lesson} cell {number} differs between nbgrader and minilb release"


def test_a_column_zero_solution_region_is_released_as_a_comment(regenerated):
    """Lesson 3's solver helpers sit in a column-0 region: the released cell still runs."""
    for lesson in LESSON_NAMES:
        for cell in nbformat.read(regenerated / f"{lesson}.ipynb", as_version=4).cells:
            lines = cell.source.splitlines()
            assert "raise NotImplementedError()" not in lines, f"{lesson}: a top-level raise"


def test_the_autograder_cells_show_only_their_points_in_the_release(regenerated):
    for lesson in LESSON_NAMES:
        for cell in nbformat.read(regenerated / f"{lesson}.ipynb", as_version=4).cells:
            info = cell.metadata.get("nbgrader", {})
            if info.get("grade_id", "").startswith("grade_"):
                assert cell.source == (
                    f"# Graded by the autograder: {info['points']:g} points "
                    "(hidden tests, run when you hand in)"
                )


def test_release_after_a_lesson_gives_that_lessons_exercises_in_the_package(tmp_path):
    out = tmp_path / "after"
    release(out, after="02_greedy_balancing")
    given = kept_exercises("02_greedy_balancing")
    assert given == [*EXERCISES_OF["01_cost_matrix"], *EXERCISES_OF["02_greedy_balancing"]]
    script = (
        "from minilb.scheduling import greedy_assign\n"
        "print(greedy_assign([('M', 1), ('V', 2)]))\n"
        "from minilb.optimal import lower_bound\n"
        "try:\n    lower_bound([('V', 1)])\nexcept NotImplementedError:\n    print('stubbed')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=out, env=handout_env(out),
                         capture_output=True, text=True, timeout=60)
    assert run.stdout.split("\n")[:2] == ["[2, 0]", "stubbed"], run.stdout + run.stderr
    # Lesson 3 then runs with only its own exercises failing, as a student starts it.
    notebook, errors = run_notebook(out / "03_optimal_makespan.ipynb", out)
    assert errors, "lesson 3's visible tests should hit its stubs"
    for index, (name, message) in errors.items():
        assert name == "NotImplementedError", f"lesson 3 cell {index}: {name}: {message}"
    with pytest.raises(ReleaseError, match="unknown lesson"):
        kept_exercises("05_quantum")


# --- no helper in the handout answers an exercise ----------------------------------------------

# The handout's modules a lesson's code may call. Left out: the commands and long-running parts
# (cli, check, release, demo, balancer, servers, cluster, schedule_command), which no exercise
# could be answered with and which may wait on the network.
HELPER_MODULES = (
    "costs", "scheduling", "optimal", "protocol", "network", "timeline", "policies", "earlier",
    "live_core", "exercises", "notebook_cells", "solutions", "plots", "client",
)  # fmt: skip

SUBSTITUTE = r"""
import contextlib, importlib, inspect, io, json, os, signal, sys, time
from pathlib import Path

import nbformat

from minilb.exercises import LESSONS, is_stub
from minilb.notebook_cells import code_cells, is_autograder_cell, is_visible_test, without_magics

lesson, modules = sys.argv[1], sys.argv[2].split(",")
helpers = {}
for module_name in modules:
    module = importlib.import_module(f"minilb.{module_name}")
    for name, value in vars(module).items():
        if name.startswith("_") or not callable(value) or isinstance(value, type(os)):
            continue
        if getattr(value, "__module__", None) == module.__name__ and not is_stub(value):
            helpers[f"{module_name}.{name}"] = value

namespace = {"__name__": "__main__"}
with contextlib.redirect_stdout(io.StringIO()):
    for source in code_cells(Path(f"{lesson}.ipynb")):
        exec(source, namespace)
tests = {
    cell.metadata["nbgrader"]["grade_id"].removeprefix("test_"): without_magics(cell.source)
    for cell in nbformat.read(f"{lesson}.ipynb", as_version=4).cells
    if is_visible_test(cell) and not is_autograder_cell(cell)
}


def passes(exercise, helper):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        code = 1
        try:
            sys.stdout = sys.stderr = open(os.devnull, "w")
            namespace[exercise] = helper
            exec(tests[exercise], namespace)
            code = 0
        except BaseException:
            pass
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.02)
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


tried, answers = 0, []
for exercise in LESSONS[lesson]:
    parameters = inspect.signature(namespace[exercise]).parameters.values()
    required = [p for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    for label, helper in helpers.items():
        try:
            inspect.signature(helper).bind(*[None] * len(required))
        except (TypeError, ValueError):
            continue  # it cannot even be called as the exercise is
        tried += 1
        if passes(exercise, helper):
            answers.append(f"{label} passes the visible tests of {exercise}")
print(json.dumps({"tried": tried, "answers": answers}))
"""


@pytest.mark.parametrize("lesson", LESSON_NAMES)
def test_no_helper_of_the_handout_passes_an_exercises_visible_tests(lesson, starter_copy, tmp_path):
    # Each exercise's visible test runs with the exercise replaced by every callable of the
    # handout's package that takes its arguments; the lesson's other exercises, and earlier
    # lessons' (from the student's notebooks beside it), are the reference's.
    student = tmp_path / "student"
    shutil.copytree(starter_copy, student, ignore=shutil.ignore_patterns("*.ipynb"))
    for name in LESSON_NAMES:
        shutil.copy(LESSONS / name / f"{name}.ipynb", student)
    result = subprocess.run(
        [sys.executable, "-c", SUBSTITUTE, lesson, ",".join(HELPER_MODULES)],
        cwd=student, env=handout_env(student), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tried"] > len(EXERCISES_OF[lesson]), report  # the probe did probe
    assert not report["answers"], "\n".join(report["answers"])


def test_cells_an_instructor_adds_for_manual_grading_survive_sync_and_release(tmp_path):
    """An nbgrader ``task`` cell and a manually graded answer cell, added by an instructor to a
    lesson, come through ``sync_from_reference`` and into the released handout unchanged."""
    import importlib.util

    lessons = tmp_path / "lessons"
    shutil.copytree(KIT / "lessons", lessons, ignore=shutil.ignore_patterns(
        "__pycache__", "release", "submitted", "autograded", "gradebook.db"))
    path = lessons / "01_cost_matrix" / "01_cost_matrix.ipynb"
    notebook = nbformat.read(path, as_version=4)
    task = nbformat.v4.new_markdown_cell("**Task (graded by hand):** why is M slow at video?")
    task.metadata["nbgrader"] = {"task": True, "grade": False, "solution": False, "locked": True,
                                 "grade_id": "task_why", "points": 2, "schema_version": 3}
    answer = nbformat.v4.new_markdown_cell("YOUR ANSWER HERE")
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False,
                                   "grade_id": "why_answer", "points": 1, "schema_version": 3}
    notebook.cells[3:3] = [task, answer]
    nbformat.write(notebook, path)

    spec = importlib.util.spec_from_file_location("sync", lessons / "sync_from_reference.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    synced = nbformat.read(path, as_version=4)
    sync.sync_grading_cells(synced, "01_cost_matrix")
    release(tmp_path / "handout", lessons)
    released = nbformat.read(tmp_path / "handout" / "01_cost_matrix.ipynb", as_version=4)
    for cells in (synced.cells, released.cells):
        kept = {cell.metadata["nbgrader"]["grade_id"]: (cell.source, cell.metadata["nbgrader"])
                for cell in cells if cell.metadata.get("nbgrader", {}).get("grade_id") in
                ("task_why", "why_answer")}
        source, metadata = kept["task_why"]  # nbgrader's release adds a checksum: fine
        assert source == task.source
        assert metadata.items() >= task.metadata["nbgrader"].items()
        assert kept["why_answer"][1].items() >= answer.metadata["nbgrader"].items()
