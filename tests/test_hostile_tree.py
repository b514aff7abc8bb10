"""A hostile submissions tree is each hostile student's problem only (issue 14 items 1 and 6).

One class of lesson 1 holds a correct student, a blank handout and one notebook of every kind
that once stopped the class or gained points: wrong JSON types, deep nesting, bad text, too
large, a FIFO, a device, a folder, symbolic links to the instructor's solution and to another
student, a student folder that is a link, and student names that are spreadsheet formulas or
hold newlines. ``minilb grade`` must finish, write a row for every student, give the correct one
full marks and no hostile one more than the blank handout, cache every result, and write
nothing outside ``--out``. Each kind has a positive control: the same input shown to be what it
claims (the naive reader crashes on it, the link leads to a solved notebook, the raw name is a
formula), so the test would fail on the old behaviour. The nbgrader bridge is checked on the
same kinds of notebook.
"""

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from notebook_fixtures import blank_notebook, solved_notebook

from autograder import nbgrader_bridge
from autograder.grade import Submission, discover, grade_submission
from autograder.reports import file_name, shown_name
from minilb.cli import main
from minilb.notebook_cells import MAX_NOTEBOOK_BYTES, NotebookError, code_cells

LESSON = "01_cost_matrix"
NOTEBOOK = f"{LESSON}.ipynb"
FORMULA = '=HYPERLINK("evil.example","click")'  # a folder name holds no slash
NEWLINE_NAME = "eve\n# Feedback for ann\r\x1b[31m"


def solved_json(tmp_path: Path) -> dict:
    return json.loads(solved_notebook(LESSON, tmp_path / "solved.ipynb").read_text())


def first_code_cell(notebook: dict) -> dict:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


def with_cell(tmp_path: Path, change: str) -> bytes:
    """The solved notebook with its first code cell (cell 3) broken in one way."""
    notebook = solved_json(tmp_path)
    cell = first_code_cell(notebook)
    if change == "metadata is a string":
        cell["metadata"] = "demo"
    elif change == "tags is a number":
        cell["metadata"]["tags"] = 3
    elif change == "nbgrader is a list":
        cell["metadata"]["nbgrader"] = ["grade"]
    elif change == "grade flag is text":
        cell["metadata"]["nbgrader"] = {"grade": "yes", "solution": False}
    elif change == "source holds a number":
        cell["source"] = ["x = 1\n", 2]
    elif change == "source is a lone surrogate":
        cell["source"] = "\ud800"
    return json.dumps(notebook).encode()


BROKEN_CELLS = ["metadata is a string", "tags is a number", "nbgrader is a list",
                "grade flag is text", "source holds a number", "source is a lone surrogate"]
DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_UTF8 = b'{"cells": [], "x": "\xff\xfe"}'


def naive_code_cells(data: bytes) -> list:
    """How the grader read a notebook before: it assumed every shape (the positive control)."""
    cells = json.loads(data)["cells"]
    return [str(cell.get("source")) for cell in cells
            if "demo" not in list((cell.get("metadata") or {}).get("tags") or [])
            and not ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade")]


def hostile_class(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The class folder and, per hostile student, the word its reason must hold."""
    root = tmp_path / "class"
    solved_notebook(LESSON, root / "ann" / NOTEBOOK)
    blank_notebook(LESSON, root / "blank" / NOTEBOOK)
    expected = {}

    def put(student: str, data: bytes, reason: str) -> Path:
        path = root / student / NOTEBOOK
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        expected[student] = reason
        return path

    for number, change in enumerate(BROKEN_CELLS):
        put(f"cell{number}", with_cell(tmp_path, change), "cell 3")
    put("deep", DEEP, "nested too deeply")
    put("notutf8", NOT_UTF8, "not valid JSON")
    huge = put("huge", b"", "larger than")
    os.truncate(huge, MAX_NOTEBOOK_BYTES + 1)  # sparse: no disk, a real size
    for student, make, reason in [
            ("fifo", os.mkfifo, "FIFO"),
            ("device", lambda path: os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3)),
             "device"),
            ("folder", os.mkdir, "folder"),
            ("linkout", lambda path: path.symlink_to(tmp_path / "solved.ipynb"), "symbolic link"),
            ("linkin", lambda path: path.symlink_to(root / "ann" / NOTEBOOK), "symbolic link"),
            ("hardlink", lambda path: os.link(tmp_path / "solved.ipynb", path), "hard link")]:
        (root / student).mkdir()
        make(root / student / NOTEBOOK)
        expected[student] = reason
    (root / "zfolderlink").symlink_to(root / "ann")  # a whole student folder that is a link
    expected["zfolderlink"] = "folder is a symbolic link"
    for name in (FORMULA, NEWLINE_NAME, "-2+3", "@SUM(A1)", "\tx", "n" * 200, "not\udcffutf8"):
        blank_notebook(LESSON, root / name / NOTEBOOK)
    return root, expected


def test_the_hostile_inputs_are_what_they_claim(tmp_path):
    """Positive controls: the old, trusting reader fails on each input, each link leads to
    full marks, and each raw name is a formula or holds a control character."""
    for change in BROKEN_CELLS[:5]:
        data = with_cell(tmp_path, change)
        try:
            naive = naive_code_cells(data)
        except (AttributeError, TypeError):
            continue
        assert change in ("grade flag is text", "source holds a number"), change
        assert naive  # read on as if nothing were wrong
    with pytest.raises(RecursionError):
        json.loads(DEEP)
    root, _ = hostile_class(tmp_path)
    assert (root / "linkout" / NOTEBOOK).read_bytes() == (tmp_path / "solved.ipynb").read_bytes()
    assert (root / "zfolderlink" / NOTEBOOK).is_file()  # following it finds ann's notebook
    assert (root / "hardlink" / NOTEBOOK).stat().st_ino == (tmp_path / "solved.ipynb").stat().st_ino
    raw = io.StringIO()
    csv.writer(raw).writerow([FORMULA])
    cell = next(csv.reader(io.StringIO(raw.getvalue())))[0]  # what a spreadsheet gets
    assert cell.startswith("=") and not NEWLINE_NAME.isprintable()


def test_a_hostile_class_is_graded_and_written_for_everyone(tmp_path, capsys):
    root, expected = hostile_class(tmp_path)
    out = tmp_path / "out"
    students = len(os.listdir(root))
    assert main(["grade", str(root), "--out", str(out), "--workers", "2"]) == 0
    assert f"({students} run, 0 from the cache)" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "grades.csv").open(encoding="utf-8")))
    by_name = {row["student"]: row for row in rows}
    assert len(rows) == len(by_name) == students  # one row each, none merged
    assert (by_name["ann"]["score"], by_name["ann"]["status"]) == ("10", "graded")
    assert (by_name["blank"]["score"], by_name["blank"]["status"]) == ("0", "graded")
    for student, reason in expected.items():
        assert (by_name[student]["score"], by_name[student]["status"]) == ("0", "error"), student
        feedback = (out / "feedback" / f"{file_name(student)}.md").read_text()
        assert reason in feedback and "0 points" in feedback, (student, feedback)
        results = json.loads((out / "results" / file_name(student) / LESSON /
                              "results.json").read_text())
        assert results["score"] == 0 and reason in results["output"]

    for row in rows:  # names: never a formula, never a control character
        assert not row["student"].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row["student"].isprintable()
    assert f"'{FORMULA}" in by_name and "'-2+3" in by_name and "'@SUM(A1)" in by_name
    assert "'\\tx" in by_name and shown_name(NEWLINE_NAME) in by_name and "not\\xffutf8" in by_name
    heading = (out / "feedback" / f"{file_name(NEWLINE_NAME)}.md").read_text().splitlines()
    assert heading[0].startswith("# Feedback for eve\\\\n\\# Feedback")  # one line, escaped
    assert sum(line.startswith("# ") for line in heading) == 1

    written = {path.resolve() for path in out.rglob("*")}
    assert all(path.is_relative_to(out.resolve()) for path in written)
    assert sorted(os.listdir(tmp_path)) == ["class", "out", "solved.ipynb"]
    assert all(len(path.name.encode()) < 255 for path in written)

    assert main(["grade", str(root), "--out", str(out), "--workers", "2"]) == 0
    assert f"(0 run, {students} from the cache)" in capsys.readouterr().out  # errors are cached too


@pytest.mark.parametrize("change", BROKEN_CELLS)
def test_code_cells_refuse_every_wrong_shape_with_a_reason(tmp_path, change):
    path = tmp_path / NOTEBOOK
    path.write_bytes(with_cell(tmp_path, change))
    with pytest.raises(NotebookError, match="cell 3"):
        code_cells(path)


def test_a_fifo_never_hangs_and_a_policy_loader_says_why(tmp_path, capsys):
    fifo = tmp_path / NOTEBOOK
    os.mkfifo(fifo)
    with pytest.raises(NotebookError, match="FIFO"):
        code_cells(fifo)
    grade = grade_submission(Submission("s", LESSON, fifo))
    assert (grade.score, grade.status) == (0, "error") and "FIFO" in grade.notes[0]
    deep = tmp_path / "deep.ipynb"
    deep.write_bytes(DEEP)
    from minilb.policies import notebook_namespace

    with pytest.raises(ValueError, match="nested too deeply"):
        notebook_namespace(str(deep))


def test_the_nbgrader_bridge_scores_hostile_notebooks_zero_with_the_reason(tmp_path, capsys):
    """nbgrader copies submitted/ into autograded/ following links: the bridge looks back."""
    course = tmp_path / "course"
    graded = course / "autograded" / "mal" / LESSON / NOTEBOOK
    solved_notebook(LESSON, graded)  # what nbgrader's copy of the link holds
    submitted = course / "submitted" / "mal" / LESSON / NOTEBOOK
    submitted.parent.mkdir(parents=True)
    submitted.symlink_to(tmp_path / "solved.ipynb")
    solved_notebook(LESSON, tmp_path / "solved.ipynb")
    assert nbgrader_bridge.exercise_score(LESSON, "processing_time", graded) == 0
    assert "symbolic link" in capsys.readouterr().out
    submitted.unlink()  # positive control: the same copy from a real file scores
    solved_notebook(LESSON, submitted)
    nbgrader_bridge._graded.clear()
    assert nbgrader_bridge.exercise_score(LESSON, "processing_time", graded) > 0

    hostile = {"cell 3": with_cell(tmp_path, BROKEN_CELLS[0]),
               "tags": with_cell(tmp_path, BROKEN_CELLS[1]), "nested too deeply": DEEP,
               "not valid JSON": NOT_UTF8}
    for number, (reason, data) in enumerate(hostile.items()):
        folder = tmp_path / f"n{number}"
        folder.mkdir()
        (folder / NOTEBOOK).write_bytes(data)
        found = nbgrader_bridge.find_notebook(LESSON, folder)
        assert nbgrader_bridge.exercise_score(LESSON, "processing_time", found) == 0
        assert reason in capsys.readouterr().out
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / NOTEBOOK)
    found = nbgrader_bridge.find_notebook(LESSON, tmp_path / "fifo")
    assert nbgrader_bridge.exercise_score(LESSON, "processing_time", found) == 0
    assert "FIFO" in capsys.readouterr().out


def test_in_nbgrader_s_layout_links_and_fifos_are_refused_too(tmp_path):
    submitted = tmp_path / "course" / "submitted"
    solved_notebook(LESSON, submitted / "ann" / LESSON / NOTEBOOK)
    os.mkfifo(submitted / "ann" / LESSON / "timestamp.txt")  # read, it would hang the run
    (submitted / "bob").mkdir()
    (submitted / "bob" / LESSON).symlink_to(submitted / "ann" / LESSON)
    assert (submitted / "bob" / LESSON / NOTEBOOK).is_file()  # control: it leads to ann's work
    ann, bob = discover(tmp_path / "course")
    assert (ann.path, ann.submitted_at) == (submitted / "ann" / LESSON / NOTEBOOK, None)
    grade = grade_submission(bob)
    assert (grade.score, grade.status) == (0, "error") and "symbolic link" in grade.notes[0]
