"""nbgrader's graded notebook shows what the student's cells showed inside the sandbox (its
kernel never runs them): stdout, stderr, the last expression's value, the error, figures; while
feedback, results.json and grades.csv never carry it. Whatever the sandbox sends is checked."""

import base64
import json
import logging
import shutil
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import solved_notebook
from test_three_paths import KIT, nbgrader

from autograder import child
from autograder.cell_outputs import PNG_SIGNATURE, checked_all
from autograder.contract import StudentCallError
from autograder.grade import Submission, grade_submission
from autograder.nbgrader_bridge import outputs_file
from autograder.nbgrader_preprocessors import RestoreStudentOutputs
from autograder.sandbox import SandboxedStudent
from minilb.cli import main
from minilb.notebook_cells import is_student_code

LESSON = "01_cost_matrix"
GREETING = "printed in the sandbox: 3 servers"
FORGED = "an output saved in the file, never run"
WARNING = "written to stderr in the sandbox"
# Cells a TA reads the outputs of; lesson 1's first cell imports pyplot as plt.
SHOWING_CELLS = (
    f"import sys\nprint({WARNING!r}, file=sys.stderr)",
    "6 * 7",
    "def not_a_fleet(text):\n    raise ValueError(f'not a fleet: {text}')\n\nnot_a_fleet('xyz')",
    "fig, ax = plt.subplots()\nax.plot([1, 2, 3]);",
)
# A student cell that rewrites what the child sends for the two cells before it: huge, wrong
# types. Those two cells then show nothing, the others are untouched, the grade is the same.
HOSTILE_CELL = """import sys
frame = sys._getframe()
while "outputs" not in frame.f_locals:
    frame = frame.f_back
sent = frame.f_locals["outputs"]
sent[-2] = {"stdout": 5, "stderr": [], "result": {}, "error": "no", "figures": ["A" * 3_000_000]}
sent[-1] = "x" * 3_000_000
print("the forger's own output")"""


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
    assert grade.cell_outputs[-2]["stdout"] == GREETING + "\n"
    assert grade.cell_outputs[-1]["stdout"] == "x" * child.CELL_OUTPUT_BYTES


def test_the_sandbox_sends_each_kind_of_output(tmp_path):
    notebook = printing_notebook(tmp_path / f"{LESSON}.ipynb", *SHOWING_CELLS, "x = 1;", "None")
    grade = grade_submission(Submission("ann", LESSON, notebook))
    assert grade.status == "graded" and grade.score == grade.max_score
    stderr, value, error, figure, silenced, nothing = grade.cell_outputs[-6:]
    assert stderr["stderr"] == WARNING + "\n" and stderr["stdout"] == ""
    assert value["result"] == "42" and silenced["result"] is None and nothing["result"] is None
    assert error["error"]["ename"] == "ValueError"
    assert error["error"]["evalue"] == "not a fleet: xyz"
    assert error["error"]["traceback"][-3:] == [
        f"Cell {len(grade.cell_outputs) - 3}, line 2, in not_a_fleet:",
        "    raise ValueError(f'not a fleet: {text}')", "ValueError: not a fleet: xyz"]
    assert error["result"] is None and figure["result"] is None
    assert len(figure["figures"]) == 1
    assert base64.b64decode(figure["figures"][0]).startswith(PNG_SIGNATURE)
    assert all(output["figures"] == [] for output in grade.cell_outputs[:-3])  # closed after


def test_a_repr_that_raises_shows_a_note_and_bounds_hold(tmp_path):
    raising = "class Odd:\n    def __repr__(self):\n        raise RuntimeError('no')\n\nOdd()"
    notebook = printing_notebook(tmp_path / f"{LESSON}.ipynb", raising, "'y' * 100_000",
                                 "raise KeyError('k' * 100_000)")
    outputs = grade_submission(Submission("ann", LESSON, notebook)).cell_outputs
    assert outputs[-3]["result"] == "(the value's repr raised an exception)"
    assert len(outputs[-2]["result"]) == child.CELL_OUTPUT_BYTES
    assert len(outputs[-1]["error"]["evalue"]) == child.CELL_OUTPUT_BYTES


def payload(stdout: str = "", **changes: object) -> dict:
    return {"stdout": stdout, "stderr": "", "result": None, "error": None, "figures": [],
            **changes}


def test_outputs_not_in_the_childs_shape_are_dropped():
    assert checked_all([payload("a"), payload("b")], 2) == [payload("a"), payload("b")]
    assert checked_all([payload("a")], 2) == []
    assert checked_all("ab", 2) == []
    hostile = [3, "text", None, payload(5), payload(stdout="y" * 10_000), payload(extra=1),
               payload(figures=["A" * (child.FIGURE_BYTES + 4)]), payload(figures=["not png!"]),
               payload(figures=[base64.b64encode(b"GIF89a").decode()] * 2),
               payload(figures=[""] * (child.FIGURES_PER_CELL + 1)),
               payload(error={"ename": "E", "evalue": "v"}),
               payload(error={"ename": "E", "evalue": "v", "traceback": ["l"] * 1000}),
               payload(result=["a list"]), {"dropped": "forged"}]
    kept = checked_all(hostile, len(hostile))
    assert all(set(entry) == {"dropped"} for entry in kept)
    assert all(entry["dropped"] and "forged" not in entry["dropped"] for entry in kept)
    assert checked_all([payload("\ud800")], 1) == [payload("?")]  # nbformat could not save it


def test_outputs_past_the_bounds_of_all_cells_are_dropped():
    many = checked_all([payload("y" * child.CELL_OUTPUT_BYTES)] * 40, 40)
    kept = [entry for entry in many if "stdout" in entry]
    assert len(kept) == child.ALL_OUTPUT_BYTES // child.CELL_OUTPUT_BYTES
    assert all("dropped" in entry for entry in many[len(kept):])


def test_minilb_grade_never_prints_the_outputs(tmp_path):
    printing_notebook(tmp_path / "class" / "ann" / f"{LESSON}.ipynb")
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 0
    written = [path.read_text() for path in (tmp_path / "out").rglob("*")
               if path.is_file()]  # the cache too
    assert written and not any(GREETING in text for text in written)


def texts(cell: dict) -> dict:
    """A graded cell's outputs, by kind: the text of each (an image's first bytes)."""
    shown: dict = {}
    for output in cell.outputs:
        if output.output_type == "stream":
            shown[output.name] = shown.get(output.name, "") + output.text
        elif output.output_type == "execute_result":
            shown["result"] = (output.execution_count, output.data["text/plain"])
        elif output.output_type == "error":
            shown["error"] = (output.ename, output.evalue, output.traceback[-1])
        else:
            shown.setdefault("figures", []).append(
                base64.b64decode(output.data["image/png"])[:8])
    return shown


@pytest.mark.slow
def test_nbgraders_graded_notebook_shows_the_sandboxs_outputs(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
        "gradebook.db"))
    submitted = printing_notebook(course / "submitted" / "ann" / LESSON / f"{LESSON}.ipynb",
                                  *SHOWING_CELLS)
    forger = printing_notebook(course / "submitted" / "bob" / LESSON / f"{LESSON}.ipynb",
                               "6 * 7", HOSTILE_CELL)
    handed_in = nbformat.read(submitted, as_version=4)
    for cell in handed_in.cells:  # outputs saved in the file are not what the sandbox saw
        if is_student_code(cell):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=FORGED)]
    nbformat.write(handed_in, submitted)
    nbgrader(course, "generate_assignment", LESSON)
    nbgrader(course, "autograde", LESSON)
    graded = course / "autograded" / "ann" / LESSON / f"{LESSON}.ipynb"
    nbformat.validate(nbformat.read(graded, as_version=4))
    cells = student_cells(graded)
    assert len(cells) == len(student_cells(submitted))
    last = len(cells)
    assert [texts(cell) for cell in cells[-5:]] == [
        {"stdout": GREETING + "\n"}, {"stderr": WARNING + "\n"}, {"result": (last - 2, "42")},
        {"error": ("ValueError", "not a fleet: xyz", "ValueError: not a fleet: xyz")},
        {"figures": [PNG_SIGNATURE]}]
    assert [cell.execution_count for cell in cells] == list(range(1, last + 1))
    expected = grade_submission(Submission("ann", LESSON, submitted)).cell_outputs
    assert [texts(cell).get("stdout", "") for cell in cells] == [
        output["stdout"] for output in expected]
    assert FORGED not in json.dumps([cell.outputs for cell in cells])
    leftovers = [path.name for path in graded.parent.iterdir() if "cell_outputs" in path.name]
    assert leftovers == []
    others = json.dumps([cell.get("outputs", []) for cell in
                         nbformat.read(graded, as_version=4).cells if not is_student_code(cell)])
    assert GREETING not in others and FORGED not in others

    forged = course / "autograded" / "bob" / LESSON / f"{LESSON}.ipynb"
    nbformat.validate(nbformat.read(forged, as_version=4))
    assert [texts(cell) for cell in student_cells(forged)[-3:]] == [
        {}, {}, {"stdout": "the forger's own output\n"}]
    scores = {}
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("ann", "bob"):
            scores[student] = gradebook.find_submission(LESSON, student).score
    full = grade_submission(Submission("bob", LESSON, forger))
    assert full.score == full.max_score and scores == {"ann": full.score, "bob": full.score}


def test_restoring_checks_what_the_bridge_wrote(tmp_path, caplog):
    """The file beside the notebook holds what the sandbox sent: a malformed entry restores
    nothing on its cell and the log says why; a file that is no list restores nothing."""
    notebook = printing_notebook(tmp_path / f"{LESSON}.ipynb")
    cells = student_cells(notebook)
    figure = base64.b64encode(PNG_SIGNATURE + b"rest").decode()
    entries = [payload("fine"), payload(5), {"dropped": "a reason of the grader's"},
               payload(figures=[figure], result="7")] + [payload()] * (len(cells) - 4)
    restore = RestoreStudentOutputs()
    restore.log = logging.getLogger("restore")
    resources = {"metadata": {"path": str(tmp_path)}, "unique_key": LESSON}
    for written, restored in ((json.dumps(entries), True), ("[" * 100_000, False),
                              ('{"a": 1}', False)):
        outputs_file(notebook).write_text(written)
        book = nbformat.read(notebook, as_version=4)
        for cell in (cell for cell in book.cells if cell.cell_type == "code"):
            cell.outputs = []  # nbgrader's ClearOutput runs before
        with caplog.at_level(logging.WARNING, "restore"):
            book, _ = restore.preprocess(book, resources)
        nbformat.validate(book)
        shown = [texts(cell) for cell in book.cells if is_student_code(cell)]
        assert shown[:4] == ([{"stdout": "fine"}, {}, {}, {"result": (4, "7"), "figures": [
            PNG_SIGNATURE]}] if restored else [{}] * 4) and not any(shown[4:])
    assert "student cell 2: its stdout is not text" in caplog.text
    assert "student cell 3: a reason of the grader's" in caplog.text
    assert not outputs_file(notebook).exists()


def test_only_the_first_start_is_kept(tmp_path):
    """After a hidden call crashed the child, the restarted child's prints are not kept: a
    restart may follow hidden calls, so its output might carry hidden inputs."""
    cells = ["import os, time\nprint('started at', time.monotonic_ns())",
             "def crash(value):\n    os._exit(3)"]
    with SandboxedStudent(cells, LESSON) as student:
        first = list(student.cell_outputs)
        assert first[0]["stdout"].startswith("started at") and first[1]["stdout"] == ""
        with pytest.raises(StudentCallError):
            student.call("crash", 1)
        with pytest.raises(StudentCallError):
            student.call("crash", 2)  # runs in a restarted child
        assert student._restarts >= 1  # positive control: the cells did run again
        assert student.cell_outputs == first


def test_matplotlib_is_loaded_only_when_a_cell_draws():
    """Importing pyplot and ``minilb.plots`` (every lesson's first cell) costs nothing, and a
    hidden call never waits for matplotlib to load: its plots stay no-ops, as they were."""
    cells = ["import sys\nimport matplotlib.pyplot as plt\nfrom minilb.plots import gantt\n"
             "print('numpy' in sys.modules)",
             "def draws(ignored):\n    return type(plt.figure()).__name__"]
    with SandboxedStudent(cells, "02_greedy_balancing") as student:
        assert [output["stdout"] for output in student.cell_outputs] == ["False\n", ""]
        assert student.call("draws", 1) == "Anything"
    with SandboxedStudent([*cells, "draws(1)"], "02_greedy_balancing") as student:
        assert student.cell_outputs[-1]["result"] == "'Figure'"  # a cell draws: loaded
        assert len(student.cell_outputs[-1]["figures"]) == 1
        assert student.call("draws", 1) == "Figure"
