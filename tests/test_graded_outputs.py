"""nbgrader's graded notebook shows what the student's cells printed inside the sandbox (its
kernel never runs them), while feedback, results.json and grades.csv never carry it."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import solved_notebook
from test_three_paths import KIT, nbgrader

from autograder import child
from autograder.contract import StudentCallError
from autograder.grade import Submission, grade_submission
from autograder.sandbox import SandboxedStudent, cell_outputs_of
from minilb.cli import main
from minilb.notebook_cells import is_student_code

LESSON = "01_cost_matrix"
GREETING = "printed in the sandbox: 3 servers"
FORGED = "an output saved in the file, never run"


def printing_notebook(path: Path, *extra: str) -> Path:
    """The solved lesson 1 with a student cell that prints (and ``extra`` cells) at the end."""
    notebook = nbformat.read(solved_notebook(LESSON, path), as_version=4)
    for source in (f"print({GREETING!r})", *extra):
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(notebook, path)
    return path


def student_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if is_student_code(cell)]


def test_the_grade_keeps_each_cells_output_bounded(tmp_path):
    notebook = printing_notebook(tmp_path / f"{LESSON}.ipynb", "print('x' * 100_000)")
    grade = grade_submission(Submission("ann", LESSON, notebook))
    assert grade.status == "graded" and grade.score == grade.max_score
    assert len(grade.cell_outputs) == len(student_cells(notebook))
    assert grade.cell_outputs[-2] == GREETING + "\n"
    assert grade.cell_outputs[-1] == "x" * child.CELL_OUTPUT_BYTES


def test_outputs_that_are_not_one_text_per_cell_are_dropped():
    assert cell_outputs_of(["a", "b"], 2) == ["a", "b"]
    assert cell_outputs_of(["a"], 2) == []
    assert cell_outputs_of(["a", 3], 2) == []
    assert cell_outputs_of("ab", 2) == []
    many = cell_outputs_of(["y" * 10_000] * 40, 40)
    assert sum(map(len, many)) == child.ALL_OUTPUT_BYTES
    assert max(map(len, many)) == child.CELL_OUTPUT_BYTES


def test_minilb_grade_never_prints_the_outputs(tmp_path):
    printing_notebook(tmp_path / "class" / "ann" / f"{LESSON}.ipynb")
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 0
    written = [path.read_text() for path in (tmp_path / "out").rglob("*")
               if path.is_file()]  # the cache too
    assert written and not any(GREETING in text for text in written)


@pytest.mark.slow
def test_nbgraders_graded_notebook_shows_the_sandboxs_outputs(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
        "gradebook.db"))
    submitted = printing_notebook(course / "submitted" / "ann" / LESSON / f"{LESSON}.ipynb")
    handed_in = nbformat.read(submitted, as_version=4)
    for cell in handed_in.cells:  # outputs saved in the file are not what the sandbox saw
        if is_student_code(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=FORGED)]
    nbformat.write(handed_in, submitted)
    nbgrader(course, "generate_assignment", LESSON)
    nbgrader(course, "autograde", LESSON)
    graded = course / "autograded" / "ann" / LESSON / f"{LESSON}.ipynb"
    cells = student_cells(graded)
    assert len(cells) == len(student_cells(submitted))
    assert [output.text for output in cells[-1].outputs] == [GREETING + "\n"]
    expected = grade_submission(Submission("ann", LESSON, submitted)).cell_outputs
    assert ["".join(output.text for output in cell.outputs) for cell in cells] == expected
    assert FORGED not in json.dumps([cell.outputs for cell in cells])
    leftovers = [path.name for path in graded.parent.iterdir() if "cell_outputs" in path.name]
    assert leftovers == []
    others = json.dumps([cell.get("outputs", []) for cell in
                         nbformat.read(graded, as_version=4).cells if not is_student_code(cell)])
    assert GREETING not in others and FORGED not in others


def test_only_the_first_start_is_kept(tmp_path):
    """After a hidden call crashed the child, the restarted child's prints are not kept: a
    restart may follow hidden calls, so its output might carry hidden inputs."""
    cells = ["import os, time\nprint('started at', time.monotonic_ns())",
             "def crash(value):\n    os._exit(3)"]
    with SandboxedStudent(cells, LESSON) as student:
        first = list(student.cell_outputs)
        assert first[0].startswith("started at") and first[1] == ""
        with pytest.raises(StudentCallError):
            student.call("crash", 1)
        with pytest.raises(StudentCallError):
            student.call("crash", 2)  # runs in a restarted child
        assert student._restarts >= 1  # positive control: the cells did run again
        assert student.cell_outputs == first
