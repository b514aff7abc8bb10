"""One grading truth: nbgrader, ``minilb grade`` and Gradescope give the same points per exercise.

The same submissions of every lesson (the reference, a notebook with one plausible bug per
lesson, the untouched handout) are graded three ways:

(a) ``nbgrader autograde`` in a temporary course (``submitted/<student>/<lesson>/``), scores
    read from its gradebook: each exercise's autograder cell asks ``autograder.nbgrader_bridge``;
(b) ``autograder.grade.grade_class`` (``minilb grade``) on that same folder;
(c) the Gradescope package's ``run_autograder``, one lesson per package, in a temporary
    ``AUTOGRADER_ROOT``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from cpu_load import cpu_burners
from notebook_fixtures import blank_notebook, mistaken_notebook, solved_notebook
from test_gradescope import run_autograder, unpacked_autograder
from test_gradescope_image import (  # noqa: F401  (pytest fixtures, used by name)
    PYTHON310,
    _run_autograder_in_container,
    _unpack,
    gradescope_root,
    venv310,
)
from test_mistakes import MISTAKES

from autograder import gradescope
from autograder.grade import grade_class
from autograder.late import read_policy
from autograder.rubric import RUBRIC
from minilb.notebook_cells import is_student_code

KIT = Path(__file__).resolve().parents[1]
LESSONS = ["01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan", "04_sockets_and_forking"]
MISTAKE = {mistake[0]: mistake[2:5] for mistake in MISTAKES}  # id -> (old, new, the loser)
# One plausible bug per lesson: (old text, new text, the exercise that must lose points).
BUGS = {
    "01_cost_matrix": MISTAKE["wrong-factor"],
    "02_greedy_balancing": MISTAKE["ties-to-highest-index"],
    "03_optimal_makespan": ("return float(_relaxed_optimum(batch))",  # only the longest request
                            "return float(max(batch.fastest, default=0))", "lower_bound"),
    "04_sockets_and_forking": ("exit_codes[pid] = os.waitstatus_to_exitcode(status)",
                               "exit_codes[pid] = status", "reap_children"),  # raw wait status
}
ENDLESS_DEMO = 'print("the demo started", flush=True)\nwhile True:\n    pass'

Scores = dict[tuple[str, str], dict[str, float]]  # (student, lesson) -> exercise -> points


def write_submissions(course: Path) -> None:
    """Three students, nbgrader's layout; the buggy lesson 2 also has an endless demo cell."""
    for lesson in LESSONS:
        def path(student: str, lesson: str = lesson) -> Path:
            return course / "submitted" / student / lesson / f"{lesson}.ipynb"

        solved_notebook(lesson, path("reference"))
        blank_notebook(lesson, path("handout"))
        old, new, _ = BUGS[lesson]
        buggy = mistaken_notebook(lesson, path("bugs"), old, new)
        if lesson == "02_greedy_balancing":
            notebook = nbformat.read(buggy, as_version=4)
            demo = nbformat.v4.new_code_cell(ENDLESS_DEMO)
            demo.metadata["tags"] = ["demo"]
            notebook.cells.append(demo)
            nbformat.write(notebook, buggy)


def nbgrader(course: Path, *args: str) -> None:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course / ".jupyter"), "PATH": path}
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stdout}{run.stderr}"


def nbgrader_scores(course: Path) -> Scores:
    from nbgrader.api import Gradebook

    every_lesson = "0[1-4]_*"  # one nbgrader run for all (nbgrader expands it): start-up is slow
    nbgrader(course, "generate_assignment", every_lesson)
    nbgrader(course, "autograde", every_lesson)
    scores: Scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for lesson in LESSONS:
            for submission in gradebook.assignment_submissions(lesson):
                scores[submission.student.id, lesson] = {
                    grade.name.removeprefix("grade_"): round(grade.score, 4)
                    for notebook in submission.notebooks
                    for grade in notebook.grades
                    if grade.max_score  # the 0-point visible tests
                }
    return scores


def minilb_grade_scores(course: Path, out: Path) -> Scores:
    run = grade_class(course, out, workers=2)
    return {(grade.student, grade.lesson): {exercise["name"]: exercise["score"]
                                            for exercise in grade.exercises}
            for grade in run.grades}


def gradescope_scores(course: Path, tmp_path: Path) -> Scores:
    scores: Scores = {}
    for lesson in LESSONS:
        root = unpacked_autograder(tmp_path / lesson, lesson)
        for notebook in sorted(course.glob(f"submitted/*/{lesson}/{lesson}.ipynb")):
            shutil.rmtree(root / "submission")
            (root / "submission").mkdir()
            shutil.copy(notebook, root / "submission")
            tests = run_autograder(root)["tests"]
            student = notebook.parent.parent.name
            scores[student, lesson] = {test["name"].split(": ")[1]: test["score"]
                                       for test in tests if "score" in test}
    return scores


@pytest.mark.slow
def test_nbgrader_minilb_grade_and_gradescope_give_the_same_points(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
        "gradebook.db"))
    write_submissions(course)

    through_nbgrader = nbgrader_scores(course)
    through_minilb = minilb_grade_scores(course, tmp_path / "grades")
    through_gradescope = gradescope_scores(course, tmp_path / "gradescope")

    assert through_nbgrader == through_minilb, "nbgrader and minilb grade disagree"
    assert through_gradescope == through_minilb, "Gradescope and minilb grade disagree"

    # And the points mean something: full marks, a bug costs its own exercise, a blank 0.
    students = {student for student, _ in through_minilb}
    assert students == {"reference", "bugs", "handout"}
    for lesson in LESSONS:
        full = {exercise.name: float(exercise.points) for exercise in RUBRIC[lesson]}
        assert through_minilb["reference", lesson] == full
        assert set(through_minilb["handout", lesson].values()) == {0.0}
        loser = BUGS[lesson][2]
        assert through_minilb["bugs", lesson][loser] < full[loser], (lesson, loser)

    # nbgrader never ran the endless demo cell (nor any student cell): it would still be
    # running, and a skipped cell has no output.
    autograded = course / "autograded" / "bugs" / "02_greedy_balancing"
    cells = nbformat.read(autograded / "02_greedy_balancing.ipynb", as_version=4).cells
    assert cells[-1].source == ENDLESS_DEMO and not cells[-1].outputs
    # (The student's cells show what they printed in the sandbox: RestoreStudentOutputs.)
    ran = [cell for cell in cells if cell.cell_type == "code" and cell.outputs
           and not is_student_code(cell)]
    assert {cell.metadata.nbgrader["grade_id"] for cell in ran} == {
        f"grade_{exercise.name}" for exercise in RUBRIC["02_greedy_balancing"]}


DUE, HANDED_IN_LATE = "2026-12-01 17:00:00 UTC", "2026-12-03 09:00:00 UTC"  # 2 started days
POLICY = f'penalty_per_day = 10\nmax_days = 7\ndue = "{DUE}"\n'


def without_cells(notebook_path: Path, drop: Callable[[str], bool]) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells
                      if not drop(str(cell.metadata.get("nbgrader", {}).get("grade_id", "")))]
    nbformat.write(notebook, notebook_path)


def write_awkward_submissions(course: Path, lessons: list[str]) -> None:
    """What students really hand in: a deleted autograder cell, a notebook from an older handout
    (no autograder cells at all), one handed in late."""
    for lesson in lessons:
        def path(student: str, lesson: str = lesson) -> Path:
            return course / "submitted" / student / lesson / f"{lesson}.ipynb"

        first_cell = f"grade_{RUBRIC[lesson][0].name}"
        solved_notebook(lesson, path("reference"))
        without_cells(solved_notebook(lesson, path("deleted")),
                      lambda grade_id, first_cell=first_cell: grade_id == first_cell)
        without_cells(solved_notebook(lesson, path("older")), lambda i: i.startswith("grade_"))
        solved_notebook(lesson, path("late")).with_name("timestamp.txt").write_text(
            HANDED_IN_LATE)


def nbgrader_final_scores(course: Path, lessons: list[str]) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    for step in ("generate_assignment", "autograde"):
        nbgrader(course, step, "0[12]_*")  # nbgrader takes one name, and expands it
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {(submission.student.id, lesson): round(sum(
                    notebook.score - (notebook.late_submission_penalty or 0)
                    for notebook in submission.notebooks), 4)
                for lesson in lessons for submission in gradebook.assignment_submissions(lesson)}


def gradescope_final_scores(course: Path, tmp_path: Path, lessons: list[str]
                            ) -> dict[tuple[str, str], float]:
    scores = {}
    for lesson in lessons:
        root = unpacked_autograder(tmp_path / lesson, lesson, course / "late_policy.toml")
        for notebook in sorted(course.glob(f"submitted/*/{lesson}/{lesson}.ipynb")):
            shutil.rmtree(root / "submission")
            (root / "submission").mkdir()
            shutil.copy(notebook, root / "submission")
            stamp = notebook.with_name("timestamp.txt")
            created = stamp.read_text().replace(" UTC", "+00:00") if stamp.exists() else \
                "2026-11-30T12:00:00+00:00"  # on time
            (root / "submission_metadata.json").write_text(json.dumps({"created_at": created}))
            scores[notebook.parent.parent.name, lesson] = run_autograder(root)["score"]
    return scores


@pytest.mark.slow
@pytest.mark.timeout(1200)  # beside six burners on a machine already busy: a generous net
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "beside-six-cpu-burners"])
def test_a_deleted_cell_an_older_notebook_and_late_work_score_alike_on_every_path(tmp_path, busy):
    lessons = ["01_cost_matrix", "02_greedy_balancing"]
    course = awkward_course(tmp_path, lessons)
    with cpu_burners(6 if busy else 0):
        through_nbgrader = nbgrader_final_scores(course, lessons)
        run = grade_class(course, tmp_path / "grades", workers=2,
                          late=read_policy(course / "late_policy.toml"))
        through_minilb = {(grade.student, grade.lesson): grade.final_score
                          for grade in run.grades}
        through_gradescope = gradescope_final_scores(course, tmp_path / "gradescope", lessons)
    expected = awkward_expected(lessons)
    assert through_minilb == expected
    assert through_nbgrader == expected, "nbgrader disagrees with minilb grade"
    assert through_gradescope == expected, "Gradescope disagrees with minilb grade"


def awkward_course(tmp_path: Path, lessons: list[str]) -> Path:
    course = tmp_path / "course"
    shutil.copytree(KIT / "lessons", course, ignore=shutil.ignore_patterns(
        "__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded",
        "gradebook.db", "0[34]_*"))
    (course / "late_policy.toml").write_text(POLICY)
    write_awkward_submissions(course, lessons)
    return course


def awkward_expected(lessons: list[str]) -> dict[tuple[str, str], float]:
    full = {lesson: float(sum(exercise.points for exercise in RUBRIC[lesson]))
            for lesson in lessons}
    return {(student, lesson): full[lesson] * (0.8 if student == "late" else 1.0)
            for student in ("reference", "deleted", "older", "late") for lesson in lessons}


@pytest.mark.slow
@pytest.mark.skipif(not PYTHON310 or os.getuid() != 0 or not shutil.which("capsh"),
                    reason="needs root, capsh and a Python 3.10 (pyenv)")
def test_gradescope_on_python310_without_cap_sys_admin_gives_the_same_points(tmp_path, request):
    """Gradescope's own image (Python 3.10, no CAP_SYS_ADMIN, no user namespaces, the uid
    sandbox) gives the awkward submissions of lesson 1 the points ``minilb grade`` gives."""
    venv = request.getfixturevalue("venv310")  # imported above from test_gradescope_image
    lesson = "01_cost_matrix"
    course = awkward_course(tmp_path, [lesson])
    expected = awkward_expected([lesson])
    root = Path(tempfile.mkdtemp(prefix="minilb-gradescope-"))
    try:
        root.chmod(0o755)
        gradescope.build_package(root / "autograder.zip", lesson,
                                 late_policy=course / "late_policy.toml")
        _unpack(root / "autograder.zip", root / "source")
        for notebook in sorted(course.glob(f"submitted/*/{lesson}/{lesson}.ipynb")):
            shutil.rmtree(root / "submission", ignore_errors=True)
            shutil.rmtree(root / "results", ignore_errors=True)
            (root / "submission").mkdir()
            shutil.copy(notebook, root / "submission")
            os.chmod(root / "submission", 0o755)
            stamp = notebook.with_name("timestamp.txt")
            created = stamp.read_text().replace(" UTC", "+00:00") if stamp.exists() else \
                "2026-11-30T12:00:00+00:00"
            (root / "submission_metadata.json").write_text(json.dumps({"created_at": created}))
            done = _run_autograder_in_container(root, venv)
            results = json.loads((root / "results" / "results.json").read_text())
            student = notebook.parent.parent.name
            assert results["extra_data"]["sandbox"] == "uid", done.stderr[-1000:]
            assert results["score"] == expected[student, lesson], (student, results)
    finally:
        shutil.rmtree(root)
