"""docs/INSTRUCTOR.md shows the rubric the grader really uses."""

from autograder.instructor_doc import PAGE, rubric_section, updated_page
from autograder.rubric import RUBRIC


def test_the_instructor_page_carries_the_current_rubric():
    page = PAGE.read_text(encoding="utf-8")
    assert updated_page(page) == page, "run `python -m autograder.instructor_doc`"


def test_the_rubric_table_lists_every_exercise_with_its_points():
    section = rubric_section()
    for lesson, exercises in RUBRIC.items():
        for exercise in exercises:
            assert f"| `{lesson}` | `{exercise.name}` | {exercise.points:g} |" in section
