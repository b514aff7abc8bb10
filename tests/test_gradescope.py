"""The Gradescope package: one lesson per zip, reproducible bytes, run_autograder in a simulated
/autograder, hidden-case detail shown only after the due date, refusal without a sandbox."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from notebook_fixtures import mistaken_notebook, solved_notebook

from autograder import gradescope, sandbox
from autograder.contract import LESSONS
from autograder.grade import Submission, grade_submission
from autograder.reports import gradescope_results
from minilb.cli import main

LESSON = "01_cost_matrix"
MISTAKE = ("length * FACTORS[kind][request_type]", "length")


def unpacked_autograder(tmp_path: Path, lesson: str = LESSON,
                        late_policy: Path | None = None) -> Path:
    package = tmp_path / "autograder.zip"
    policy = ["--late-policy", str(late_policy)] if late_policy else []
    assert main(["gradescope-package", "--lesson", lesson, *policy, str(package)]) == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(package) as archive:
        assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(archive.namelist())
        assert "kit/autograder/rubric.py" in archive.namelist()
        archive.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path) -> dict:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([str(root / "source" / "run_autograder")], env=env, check=True, timeout=120,
                   capture_output=True)
    return json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_grades_only_its_lesson(tmp_path):
    root = unpacked_autograder(tmp_path)
    solved_notebook(LESSON, root / "submission" / f"{LESSON}.ipynb")
    solved_notebook("02_greedy_balancing", root / "submission" / "02_greedy_balancing.ipynb")
    (root / "submission" / "notes.txt").write_text("not a notebook")
    results = run_autograder(root)
    assert results["score"] == 10
    assert {test["name"].split(":")[0] for test in results["tests"]} == {LESSON}
    assert sum(test.get("max_score", 0) for test in results["tests"]) == 10
    assert "02_greedy_balancing.ipynb" in results["output"]
    assert f"only {LESSON}.ipynb" in results["output"]


def test_a_missing_notebook_scores_zero_and_names_the_expected_file(tmp_path):
    root = unpacked_autograder(tmp_path, "03_optimal_makespan")
    solved_notebook(LESSON, root / "submission" / f"{LESSON}.ipynb")
    results = run_autograder(root)
    assert results["score"] == 0
    assert "03_optimal_makespan.ipynb" in results["output"]
    assert f"Not graded here (this assignment grades only 03_optimal_makespan.ipynb): " \
           f"{LESSON}.ipynb" in results["output"]


def test_hidden_case_detail_is_shown_after_the_due_date(tmp_path):
    path = mistaken_notebook(LESSON, tmp_path / f"{LESSON}.ipynb", *MISTAKE)
    results = gradescope_results(grade_submission(Submission("s", LESSON, path)))
    visible = [test for test in results["tests"] if test["visibility"] == "visible"]
    later = [test for test in results["tests"] if test["visibility"] == "after_due_date"]
    assert [test["name"] for test in visible] == [f"{LESSON}: {name}" for name in LESSONS[LESSON]]
    assert sum(test["score"] for test in visible) == results["score"] < 10
    assert later and all("(-" in test["output"] and "score" not in test for test in later)
    assert not any("(-" in test["output"] for test in visible)
    assert any("shown after the due date" in test["output"] for test in visible)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_zips_are_reproducible_with_fixed_modes_and_times(tmp_path):
    first, second = tmp_path / "a" / "lesson.zip", tmp_path / "b" / "lesson.zip"
    gradescope.build_package(first, LESSON)
    gradescope.build_package(second, LESSON)
    assert sha256(first) == sha256(second)
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    for info in infos:
        assert info.date_time == gradescope.ZIP_TIME
        executable = info.filename in ("setup.sh", "run_autograder")
        assert info.external_attr >> 16 == 0o100000 | (0o755 if executable else 0o644)
    gradescope.build_package(second, "02_greedy_balancing")
    assert sha256(first) != sha256(second)  # the lesson is part of the package


def test_package_needs_a_lesson_and_a_zip_name(tmp_path, capsys):
    assert main(["gradescope-package", str(tmp_path / "out.zip")]) == 2
    assert "--lesson" in capsys.readouterr().err and not (tmp_path / "out.zip").exists()
    assert main(["gradescope-package", "--lesson", LESSON, str(tmp_path / "out.tar")]) == 2
    assert ".zip" in capsys.readouterr().err
    assert main(["gradescope-package", "--lesson", "05_nope", str(tmp_path / "x.zip")]) == 2
    assert "unknown lesson" in capsys.readouterr().err
    assert main(["gradescope-package", "--lesson", "all", str(tmp_path / "course.zip")]) == 0
    assert sorted(path.name for path in tmp_path.glob("course-*.zip")) == [
        f"course-{lesson}.zip" for lesson in LESSONS]


def test_run_autograder_refuses_without_a_sandbox(tmp_path, monkeypatch):
    # No bubblewrap, no jail, and this kit is readable by other users: no uid sandbox either.
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    monkeypatch.setattr(sandbox, "jail_works", lambda: False)
    solved_notebook(LESSON, tmp_path / "submission" / f"{LESSON}.ipynb")
    assert gradescope.main([str(tmp_path), "--lesson", LESSON]) == 1
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and "tell your instructor" in results["output"]
    assert results["extra_data"] == {"sandbox": "none"}
    with pytest.raises(sandbox.SandboxRefused, match="nothing is graded"):
        gradescope.grade_gradescope_submission(tmp_path, LESSON)
    monkeypatch.setattr(sandbox, "jail_works", lambda: True)  # the best that runs, by itself
    assert gradescope.main([str(tmp_path), "--lesson", LESSON]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 10 and results["extra_data"]["sandbox"] == "jail"


def run_autograder_anyway(root: Path, path_prefix: Path | None = None) -> tuple[int, dict]:
    """run_autograder's exit code and the results.json it left, whatever happened."""
    prefix = f"{path_prefix}:" if path_prefix else ""
    env = {**os.environ, "AUTOGRADER_ROOT": str(root),
           "PATH": f"{prefix}{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run([str(root / "source" / "run_autograder")], env=env, timeout=120,
                          capture_output=True)
    return done.returncode, json.loads((root / "results" / "results.json").read_text())


def test_hostile_notebooks_score_zero_with_the_reason(tmp_path):
    root = unpacked_autograder(tmp_path)
    notebook = root / "submission" / f"{LESSON}.ipynb"
    solved = solved_notebook(LESSON, tmp_path / "solved.ipynb")
    cases = {"symbolic link": lambda: notebook.symlink_to(solved),
             "FIFO": lambda: os.mkfifo(notebook),
             "nested too deeply": lambda: notebook.write_bytes(b"[" * 100_000 + b"]" * 100_000),
             "metadata is not": lambda: notebook.write_text(json.dumps(
                 {"cells": [{"cell_type": "code", "metadata": "x", "source": ""}]}))}
    for reason, make in cases.items():
        make()
        code, results = run_autograder_anyway(root)
        assert (code, results["score"]) == (0, 0) and reason in results["output"], reason
        notebook.unlink()
    notebook.symlink_to(root / "submission" / "inside")  # a link within the upload: refused too
    solved_notebook(LESSON, root / "submission" / "inside")
    assert run_autograder_anyway(root)[1]["score"] == 0
    notebook.unlink()
    (root / "submission" / "inside").rename(notebook)  # positive control: the same bytes score
    (root / "submission" / "x\n# 10 points.ipynb").write_text("{}")  # a name with a newline
    results = run_autograder_anyway(root)[1]
    assert results["score"] == 10 and "x\\n# 10 points.ipynb" in results["output"]


def test_results_are_written_when_the_grader_itself_fails(tmp_path, monkeypatch):
    root = unpacked_autograder(tmp_path)
    solved_notebook(LESSON, root / "submission" / f"{LESSON}.ipynb")
    late = root / "source" / "kit" / "autograder" / "late.py"
    late.write_text("raise ModuleNotFoundError(\"No module named 'tomllib'\")\n")  # as on 3.10
    code, results = run_autograder_anyway(root)
    assert code == 1 and results["score"] == 0 and "ModuleNotFoundError" in results["output"]
    assert "please tell your instructor" in results["output"]

    no_python = tmp_path / "bin"  # no interpreter that runs: the script writes the result
    no_python.mkdir()
    (no_python / "python3").write_text("#!/bin/sh\nexit 127\n")
    (no_python / "python3").chmod(0o755)
    code, results = run_autograder_anyway(root, no_python)
    assert code == 127 and results["score"] == 0 and "failed before" in results["output"]

    def crash(grade: object) -> dict:
        raise RuntimeError("a bug in the grader")

    monkeypatch.setattr("autograder.reports.gradescope_results", crash)
    solved_notebook(LESSON, tmp_path / "submission" / f"{LESSON}.ipynb")
    assert gradescope.main([str(tmp_path), "--lesson", LESSON, "--unsafe-no-sandbox"]) == 1
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and "RuntimeError" in results["output"]
    assert "a bug" not in results["output"]  # the grader's own text stays in its log
