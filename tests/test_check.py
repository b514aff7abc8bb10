"""`minilb check NOTEBOOK`: a per-exercise report of the visible tests, and its exit codes."""

import shutil
from pathlib import Path

import nbformat
import pytest

from minilb.check import CellError, judge
from minilb.cli import main

KIT = Path(__file__).resolve().parents[1]
LESSON = "01_cost_matrix"
SOURCE = KIT / "lessons" / LESSON / f"{LESSON}.ipynb"
RELEASED = KIT / "starter" / f"{LESSON}.ipynb"


def check(capsys, notebook: Path) -> tuple[int, str, str]:
    code = main(["check", str(notebook), "--timeout", "120"])
    out, err = capsys.readouterr()
    return code, out, err


def exercises(notebook: Path) -> list[str]:
    cells = nbformat.read(notebook, as_version=4).cells
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]


def test_a_solved_lesson_passes(tmp_path, capsys):
    shutil.copy(SOURCE, tmp_path)
    code, out, _ = check(capsys, tmp_path / SOURCE.name)
    assert code == 0, out
    for exercise in exercises(SOURCE):
        assert f"{exercise}: ✓ passed" in out
    assert "other cell failed" not in out


def test_a_blank_handout_notebook_is_not_implemented_yet(tmp_path, capsys):
    # From a copy of the handout, so the kernel imports the handout's stubbed package.
    starter = tmp_path / "starter"
    shutil.copytree(KIT / "starter", starter, ignore=shutil.ignore_patterns("__pycache__"))
    code, out, _ = check(capsys, starter / RELEASED.name)
    assert code == 1
    for exercise in exercises(SOURCE):
        assert f"{exercise}: … not implemented yet" in out
    assert "0 of" in out


def test_a_bug_is_reported_with_the_assertion_message(tmp_path, capsys):
    notebook = nbformat.read(SOURCE, as_version=4)
    solutions = [
        cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")
    ]
    wrong, crashing = solutions[0], solutions[1]
    wrong.source = wrong.source.replace("### BEGIN SOLUTION", "return -1\n    ### BEGIN SOLUTION")
    crashing.source = crashing.source.replace(
        "### BEGIN SOLUTION", "raise KeyError('oops')\n    ### BEGIN SOLUTION"
    )
    buggy = tmp_path / "buggy.ipynb"
    nbformat.write(notebook, buggy)
    code, out, _ = check(capsys, buggy)
    assert code == 1
    first, second = (cell.metadata["nbgrader"]["grade_id"] for cell in (wrong, crashing))
    assert f"{first}: ✗ failed: " in out and "-1" in out  # the test's message shows the value
    assert f"{second}: ✗ error in your code: KeyError: 'oops'" in out


def test_a_file_that_is_not_a_notebook_is_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ this is not json")
    code, out, err = check(capsys, broken)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "not a readable notebook" in err

    not_a_notebook = tmp_path / "list.ipynb"
    not_a_notebook.write_text("[1, 2, 3]")
    code, _, err = check(capsys, not_a_notebook)
    assert code == 2 and "not a Jupyter notebook" in err


def test_a_missing_file_is_a_clear_error(tmp_path, capsys):
    code, out, err = check(capsys, tmp_path / "nowhere.ipynb")
    assert code == 2 and out == ""
    assert err.strip() == f"minilb check: error: {tmp_path / 'nowhere.ipynb'}: no such notebook"


@pytest.mark.parametrize(
    "test_error, status",
    [
        (None, "passed"),
        (CellError("AssertionError", "expected 3"), "failed"),
        (CellError("NotImplementedError", ""), "not implemented"),
        (CellError("ZeroDivisionError", "division by zero"), "error"),
    ],
)
def test_the_verdict_follows_what_the_test_cell_raised(test_error, status):
    result = judge("f", {0: None, 1: test_error}, solution=0, test=1)
    assert result.status == status


def test_a_written_function_is_never_called_not_implemented():
    # Its test hit a stub elsewhere, or an earlier lesson's exercise that is not done yet.
    stub_elsewhere = judge("f", {0: None, 1: CellError("NotImplementedError", "")}, 0, 1, True)
    assert stub_elsewhere.status == "error" and "still a stub" in stub_elsewhere.detail
    message = "exercise not done yet: processing_time (lesson 01_cost_matrix): finish it in ..."
    waiting = judge("f", {0: None, 1: CellError("ExerciseNotDone", message)}, 0, 1, True)
    assert (waiting.status, waiting.detail) == ("waiting", message)


def test_a_broken_exercise_cell_is_blamed_not_its_test():
    runs = {0: CellError("SyntaxError", "invalid syntax"), 1: CellError("NameError", "f")}
    result = judge("f", runs, solution=0, test=1)
    assert result.status == "error" and "SyntaxError" in result.detail


def small_notebook(path: Path, extra: list[tuple[str, list[str]]]) -> Path:
    """A one-exercise notebook (passing) with markdown between the cells, then ``extra``:
    (source, tags) code cells."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    solution = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    exercise = nbformat.v4.new_code_cell(solution)
    exercise.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "f"}
    test = nbformat.v4.new_code_cell("assert f() == 1, 'f() should be 1'\nprint('passed')")
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "test_f", "points": 1}
    notebook.cells = [nbformat.v4.new_markdown_cell("# title"), exercise,
                      nbformat.v4.new_markdown_cell("text"), test]  # fmt: skip
    for source, tags in extra:
        notebook.cells.append(nbformat.v4.new_markdown_cell("more text"))
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def test_a_clean_small_notebook_passes(tmp_path, capsys):
    code, out, _ = check(capsys, small_notebook(tmp_path / "ok.ipynb", [("y = 2", [])]))
    assert code == 0, out
    assert "f: ✓ passed" in out and "1 of 1 exercises pass" in out


def test_any_cell_that_raises_fails_the_check_named_as_jupyter_numbers_it(tmp_path, capsys):
    # Code cells: [1] the exercise, [2] its test, [3] fine, [4] raises. Markdown cells
    # between them do not count: Jupyter shows [4] beside the failing cell after Run All.
    extra = [("y = 2", []), ("undefined_name + 1", [])]
    code, out, _ = check(capsys, small_notebook(tmp_path / "broken.ipynb", extra))
    assert code == 1, "a notebook whose cell raised must never exit 0"
    assert "f: ✓ passed" in out  # the exercise itself is fine...
    assert "cell [4] (undefined_name + 1) raised NameError" in out  # ...but cell [4] is not
    assert "does not run cleanly" in out


def test_a_check_cell_runs_even_when_it_is_a_demo_and_its_failure_counts(tmp_path, capsys):
    extra = [
        ("raise RuntimeError('a demo: never run by minilb check')", ["demo"]),
        ("assert f() == 2, 'the live relay answered [wrong]'", ["demo", "check"]),
        ("assert True", ["check"]),
    ]
    code, out, _ = check(capsys, small_notebook(tmp_path / "checks.ipynb", extra))
    assert code == 1
    assert "RuntimeError" not in out, "a cell tagged only demo must be skipped"
    # Rich markup must not eat brackets in the student's message.
    assert "cell [4] (assert f() == 2, 'the live relay answered [wrong]') failed: " in out
    assert "1 demo cell skipped" in out


def test_a_passing_check_cell_and_a_skipped_failing_demo_still_pass(tmp_path, capsys):
    extra = [("raise RuntimeError('demo')", ["demo"]), ("assert f() == 1", ["check", "demo"])]
    code, out, _ = check(capsys, small_notebook(tmp_path / "fine.ipynb", extra))
    assert code == 0, out


def test_check_cells_are_not_graded_code(tmp_path):
    from minilb.notebook_cells import code_cells

    path = small_notebook(tmp_path / "n.ipynb", [("CHECKED = 1", ["check"]), ("GIVEN = 1", [])])
    sources = code_cells(path)
    assert any("GIVEN" in source for source in sources)
    assert not any("CHECKED" in source for source in sources)


def test_autograder_cells_are_neither_run_nor_reported(tmp_path, capsys):
    path = small_notebook(tmp_path / "graded.ipynb", [])
    notebook = nbformat.read(path, as_version=4)
    autograder = nbformat.v4.new_code_cell("raise RuntimeError('the hidden tests run at hand-in')")
    autograder.metadata["nbgrader"] = {"grade": True, "grade_id": "grade_f", "points": 5}
    notebook.cells.append(autograder)
    nbformat.write(notebook, path)
    code, out, _ = check(capsys, path)
    assert code == 0, out
    assert "grade_f" not in out and "RuntimeError" not in out


def test_a_kernel_that_will_not_start_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import contextlib

    from nbclient import NotebookClient

    @contextlib.contextmanager
    def never_starts(self, **kwargs):
        raise RuntimeError("Kernel didn't respond in 60 seconds")
        yield

    monkeypatch.setattr(NotebookClient, "setup_kernel", never_starts)
    code, out, err = check(capsys, small_notebook(tmp_path / "n.ipynb", []))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "could not start a Python kernel" in err, err
