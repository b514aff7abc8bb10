"""Same code, same points: a busy machine changes no grade and no word of feedback.

The lessons whose grading waits on something (lesson 3's speed budget, lesson 4's clients,
servers and reaping) are graded three times while six CPU-bound processes compete for the two
cores: the instructor's solved notebook, with and without its demo cells, gets full marks every
time, with the same feedback each time.
"""

import nbformat
import pytest
from cpu_load import cpu_burners
from notebook_fixtures import solved_notebook

from autograder.grade import grade_class
from autograder.rubric import RUBRIC
from minilb.notebook_cells import is_demo

LESSONS = ["03_optimal_makespan", "04_sockets_and_forking"]
ROUNDS, BURNERS = 3, 6


def write_class(root):
    """The instructor's solved notebook twice: as handed in, and without its demo cells."""
    for lesson in LESSONS:
        solved_notebook(lesson, root / "student" / f"{lesson}.ipynb")
        notebook = nbformat.read(solved_notebook(lesson, root / "reference" / f"{lesson}.ipynb"),
                                 as_version=4)
        notebook.cells = [cell for cell in notebook.cells if not is_demo(cell)]
        nbformat.write(notebook, root / "reference" / f"{lesson}.ipynb")


@pytest.mark.slow
def test_a_loaded_machine_changes_no_points_and_no_feedback(tmp_path):
    write_class(tmp_path / "class")
    full = {lesson: float(sum(exercise.points for exercise in RUBRIC[lesson]))
            for lesson in LESSONS}
    feedback = []
    with cpu_burners(BURNERS):
        for number in range(ROUNDS):
            out = tmp_path / f"round{number}"  # a fresh --out: nothing comes from a cache
            run = grade_class(tmp_path / "class", out, workers=2)
            scores = {(grade.student, grade.lesson): grade.score for grade in run.grades}
            assert scores == {(student, lesson): full[lesson] for student in
                              ("reference", "student") for lesson in LESSONS}, f"round {number}"
            feedback.append({path.name: path.read_text()
                             for path in sorted((out / "feedback").iterdir())})
    assert feedback[0] == feedback[1] == feedback[2]
