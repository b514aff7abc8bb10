"""Class grading: layouts, the real rubric end to end, outputs, idempotence and resuming."""

import contextlib
import csv
import json
import os
import signal
from pathlib import Path

import pytest
from notebook_fixtures import blank_notebook, solved_notebook

from autograder.contract import LESSONS
from autograder.grade import Submission, discover, grade_class, grade_submission
from autograder.pool import run_in_pools
from minilb.cli import main

ALL_LESSONS = list(LESSONS)


@pytest.mark.parametrize("lesson", ALL_LESSONS)
def test_solved_lesson_scores_full_marks_and_blank_handout_zero(tmp_path, lesson):
    solved = grade_submission(Submission("s", lesson, solved_notebook(lesson, tmp_path / "s" /
                                                                      f"{lesson}.ipynb")))
    assert solved.status == "graded" and solved.score == solved.max_score > 0, solved
    blank = grade_submission(Submission("b", lesson, blank_notebook(lesson, tmp_path / "b" /
                                                                    f"{lesson}.ipynb")))
    assert blank.score == 0 and blank.max_score == solved.max_score


def test_nbgrader_layout_is_detected(tmp_path):
    solved_notebook("01_cost_matrix", tmp_path / "submitted" / "ann" / "01_cost_matrix" /
                    "01_cost_matrix.ipynb")
    (tmp_path / "submitted" / "ben").mkdir(parents=True)
    assert discover(tmp_path) == [
        Submission("ann", "01_cost_matrix",
                   tmp_path / "submitted/ann/01_cost_matrix/01_cost_matrix.ipynb"),
        Submission("ben", "01_cost_matrix", None)]


def make_class(root: Path) -> Path:
    solved_notebook("01_cost_matrix", root / "ann" / "01_cost_matrix.ipynb")
    solved_notebook("02_greedy_balancing", root / "ann" / "02_greedy_balancing.ipynb")
    blank_notebook("01_cost_matrix", root / "ben" / "01_cost_matrix.ipynb")
    (root / "ben" / "02_greedy_balancing.ipynb").write_text("{truncated")
    (root / "cat").mkdir(parents=True)  # handed in nothing
    return root


def output_files(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*"))
            if path.is_file() and ".cache" not in path.parts}


def test_class_outputs_are_complete_idempotent_and_resumable(tmp_path):
    submissions, out = make_class(tmp_path / "class"), tmp_path / "out"
    first = grade_class(submissions, out, workers=2)
    assert (first.graded, first.reused) == (6, 0)
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert list(rows[0])[:4] == ["student", "lesson", "score", "max_score"]
    table = {(row["student"], row["lesson"]): (row["score"], row["status"]) for row in rows}
    assert table == {
        ("ann", "01_cost_matrix"): ("10", "graded"), ("ann", "02_greedy_balancing"): ("10",
                                                                                      "graded"),
        ("ben", "01_cost_matrix"): ("0", "graded"),
        ("ben", "02_greedy_balancing"): ("0", "error"),
        ("cat", "01_cost_matrix"): ("0", "missing"), ("cat", "02_greedy_balancing"): ("0",
                                                                                      "missing")}
    ben = (out / "feedback" / "ben.md").read_text()
    assert "not valid JSON" in ben and "## 01_cost_matrix: 0 / 10" in ben
    assert "No notebook was handed in" in (out / "feedback" / "cat.md").read_text()
    results = json.loads((out / "results/ann/02_greedy_balancing/results.json").read_text())
    assert results["score"] == 10 and {"name", "score", "max_score", "output",
                                       "visibility"} <= set(results["tests"][0])
    snapshot = output_files(out)

    again = grade_class(submissions, out, workers=2)
    assert (again.graded, again.reused) == (0, 6) and output_files(out) == snapshot

    (out / ".cache" / "ann" / "01_cost_matrix.json").unlink()  # as if interrupted there
    (out / "grades.csv").unlink()
    resumed = grade_class(submissions, out, workers=1)
    assert (resumed.graded, resumed.reused) == (1, 5) and output_files(out) == snapshot


def test_command_line(tmp_path, capsys):
    submissions = make_class(tmp_path / "class")
    assert main(["grade", str(submissions), "--out", str(tmp_path / "out"), "--workers",
                 "1"]) == 0
    assert "graded 6 notebooks" in capsys.readouterr().out
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["grade", str(submissions), "--out", str(tmp_path / "o"), "--workers",
                 "0"]) == 2


def test_one_lesson_only(tmp_path, capsys):
    submissions, out = make_class(tmp_path / "class"), tmp_path / "out"
    assert main(["grade", str(submissions), "--out", str(out), "--lesson",
                 "02_greedy_balancing"]) == 0
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [(row["student"], row["lesson"], row["score"], row["status"]) for row in rows] == [
        ("ann", "02_greedy_balancing", "10", "graded"),
        ("ben", "02_greedy_balancing", "0", "error"),
        ("cat", "02_greedy_balancing", "0", "missing")]
    assert "expected 02_greedy_balancing.ipynb" in (out / "feedback" / "cat.md").read_text()
    assert "01_cost_matrix" not in (out / "feedback" / "ann.md").read_text()
    assert discover(submissions, "03_optimal_makespan") == [
        Submission(student, "03_optimal_makespan", None) for student in ("ann", "ben", "cat")]
    assert main(["grade", str(submissions), "--out", str(out), "--lesson", "07_x"]) == 2
    assert "unknown lesson" in capsys.readouterr().err


def test_every_documented_layout_is_recognised(tmp_path):
    flat, course = tmp_path / "flat", tmp_path / "course"
    solved_notebook("01_cost_matrix", flat / "ann" / "01_cost_matrix.ipynb")
    (flat / "ben").mkdir()
    nbgrader = course / "submitted" / "ann" / "01_cost_matrix"
    solved_notebook("01_cost_matrix", nbgrader / "01_cost_matrix.ipynb")
    (nbgrader / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    (course / "submitted" / "ben").mkdir()
    layouts = {flat: flat / "ann" / "01_cost_matrix.ipynb",
               course: nbgrader / "01_cost_matrix.ipynb",  # the course root
               course / "submitted": nbgrader / "01_cost_matrix.ipynb"}  # the folder itself
    for root, notebook in layouts.items():
        found = discover(root)
        assert [(item.student, item.lesson, item.path) for item in found] == [
            ("ann", "01_cost_matrix", notebook), ("ben", "01_cost_matrix", None)], root
        assert (found[0].submitted_at is None) == (root == flat)


def test_a_folder_without_any_notebook_is_refused(tmp_path, capsys):
    empty = tmp_path / "wrong"
    (empty / "ann" / "notes").mkdir(parents=True)
    (empty / "ann" / "homework.ipynb").write_text("{}")  # no lesson's notebook
    assert main(["grade", str(empty), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "no notebook of any lesson found" in error and "submitted/" in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    solved_notebook("01_cost_matrix", empty / "ann" / "01_cost_matrix.ipynb")  # control
    assert [item.path is not None for item in discover(empty)] == [True]


def _dies_on_three(number: int) -> int:
    if number == 3:
        os._exit(1)  # as a worker killed from outside: the pool breaks
    return number * 10


def test_a_worker_that_dies_costs_only_its_own_job():
    jobs = [(number, (number,)) for number in range(6)]
    finished = dict(run_in_pools(_dies_on_three, jobs, 2, lambda item, error: "failed"))
    assert finished == {0: 0, 1: 10, 2: 20, 3: "failed", 4: 40, 5: 50}


def test_a_class_run_stopped_early_leaves_ctrl_c_as_it_found_it():
    # The pool ignores SIGINT and SIGTERM while it stops its workers; left ignored, every
    # program the caller starts afterwards would ignore Ctrl-C too (it did, in the demo tests).
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    jobs = [(number, (number,)) for number in range(6)]
    with contextlib.closing(run_in_pools(_dies_on_three, jobs, 2, lambda i, e: "failed")) as run:
        next(run)  # the caller stops reading: GeneratorExit stops the pool
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert before[0] is signal.default_int_handler  # control: the handler we expect to keep


class _Broken:
    """A sandbox that fails as the grader's own code might (the error a class of its own)."""

    def __init__(self, *args: object) -> None:
        raise type("SandboxCrash", (Exception,), {})("a detail of the grader")


def test_a_failure_of_the_grader_is_that_notebook_s_error_and_retried(tmp_path, monkeypatch):
    solved_notebook("01_cost_matrix", tmp_path / "class" / "ann" / "01_cost_matrix.ipynb")
    (tmp_path / "class" / "ben").mkdir()
    monkeypatch.setattr("autograder.grade.SandboxedStudent", _Broken)
    first = grade_class(tmp_path / "class", tmp_path / "out", workers=1)
    ann = first.grades[0]
    assert (ann.student, ann.status, ann.score, ann.retry) == ("ann", "error", 0, True)
    assert ann.notes == ["The grader failed on this notebook (an internal error); it will be "
                         "retried on the next run."]
    assert "a detail" not in (tmp_path / "out" / "feedback" / "ann.md").read_text()
    monkeypatch.undo()  # the grader works again: only the failed notebook is graded again
    again = grade_class(tmp_path / "class", tmp_path / "out", workers=1)
    assert (again.graded, again.reused) == (1, 1) and again.grades[0].score == 10
