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


def test_a_broken_exercise_cell_is_blamed_not_its_test():
    runs = {0: CellError("SyntaxError", "invalid syntax"), 1: CellError("NameError", "f")}
    result = judge("f", runs, solution=0, test=1)
    assert result.status == "error" and "SyntaxError" in result.detail
