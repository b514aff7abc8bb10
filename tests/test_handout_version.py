"""A notebook from another version of the handout is graded on what it has, and its feedback,
results.json and grades.csv (column ``handout``) say which version it came from."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from notebook_fixtures import solved_notebook

from autograder.grade import handout_of, handout_version
from autograder.rubric import RUBRIC
from minilb.cli import main

LESSON = "01_cost_matrix"
KIT = Path(__file__).resolve().parents[1]


def handed_in(path: Path, stamp: object = None, drop_autograder_cells: bool = False) -> None:
    notebook = nbformat.read(solved_notebook(LESSON, path), as_version=4)
    if stamp is None:
        notebook.metadata.pop("minilb", None)
    else:
        notebook.metadata["minilb"] = {"handout": stamp}
    if drop_autograder_cells:
        notebook.cells = [cell for cell in notebook.cells if not str(
            cell.metadata.get("nbgrader", {}).get("grade_id", "")).startswith("grade_")]
    nbformat.write(notebook, path)


def test_every_lesson_and_the_handout_carry_the_current_version():
    for lesson in RUBRIC:
        for path in (KIT / "lessons" / lesson / f"{lesson}.ipynb", KIT / "starter" /
                     f"{lesson}.ipynb"):
            assert handout_of(path.read_bytes()) == handout_version(lesson), path
    assert len({handout_version(lesson) for lesson in RUBRIC}) == len(RUBRIC)


def test_student_text_in_the_stamp_is_checked():
    def stamp_of(value: object) -> str:
        return handout_of(json.dumps({"metadata": {"minilb": {"handout": value}}}).encode())

    assert stamp_of("0123456789abcdef99") == "0123456789ab"
    assert stamp_of("=HYPERLINK(\"x\")") == stamp_of("ab\ncd") == stamp_of(7) == ""
    assert handout_of(b"[]") == handout_of(b"{\"metadata\": 1}") == ""


def test_an_older_notebook_is_named_not_zeroed(tmp_path):
    current = handout_version(LESSON)
    submissions = tmp_path / "class"
    handed_in(submissions / "now" / f"{LESSON}.ipynb", current)
    handed_in(submissions / "old" / f"{LESSON}.ipynb", None, drop_autograder_cells=True)
    handed_in(submissions / "other" / f"{LESSON}.ipynb", "0123456789abcdef99")
    handed_in(submissions / "forged" / f"{LESSON}.ipynb", "=cmd|' /C calc'!A0")
    out = tmp_path / "out"
    assert main(["grade", str(submissions), "--out", str(out)]) == 0
    with (out / "grades.csv").open() as table:
        rows = {row["student"]: row for row in csv.DictReader(table)}
        assert list(rows["now"])[:6] == ["student", "lesson", "score", "max_score", "percent",
                                         "status"]
        assert list(rows["now"])[-1] == "handout"
    assert {student: (row["score"], row["status"], row["handout"])
            for student, row in rows.items()} == {
        "now": ("10", "graded", current), "old": ("10", "graded", ""),
        "other": ("10", "graded", "0123456789ab"), "forged": ("10", "graded", "")}
    other_version = "comes from another version of the handout"
    for student, version in (("old", "no version stamp"), ("other", "version 0123456789ab"),
                             ("forged", "no version stamp")):
        note = (f"This notebook {other_version} ({version}, the course's is {current}): "
                "graded on the exercises it defines.")
        assert f"> {note}" in (out / "feedback" / f"{student}.md").read_text()
        results = json.loads((out / "results" / student / LESSON / "results.json").read_text())
        assert note in results["output"]
    assert other_version not in (out / "feedback" / "now.md").read_text()
    assert "cmd" not in (out / "grades.csv").read_text()


def test_gradescope_names_an_older_notebook_too(tmp_path):
    from test_gradescope import run_autograder, unpacked_autograder

    root = unpacked_autograder(tmp_path)
    handed_in(root / "submission" / f"{LESSON}.ipynb", "00ff", drop_autograder_cells=True)
    results = run_autograder(root)
    assert results["score"] == 10
    assert (f"another version of the handout (version 00ff, the course's is "
            f"{handout_version(LESSON)})") in results["output"]


@pytest.mark.slow
def test_nbgrader_names_an_older_notebook_too(tmp_path):
    from nbgrader.api import Gradebook
    from test_three_paths import nbgrader

    course = tmp_path / "course"
    shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
        "gradebook.db"))
    handed_in(course / "submitted" / "old" / LESSON / f"{LESSON}.ipynb", None,
              drop_autograder_cells=True)
    nbgrader(course, "generate_assignment", LESSON)
    nbgrader(course, "autograde", LESSON)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert gradebook.find_submission(LESSON, "old").score == 10
    graded = nbformat.read(course / "autograded" / "old" / LESSON / f"{LESSON}.ipynb", 4)
    printed = "".join(output.get("text", "") for cell in graded.cells
                      for output in cell.get("outputs", []))
    assert (f"another version of the handout (no version stamp, the course's is "
            f"{handout_version(LESSON)})") in printed
