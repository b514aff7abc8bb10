"""The rubric: each lesson's exercises, their points, and how one lesson is graded.

Lessons 1-3 are worth 10 points each and lesson 4 (five exercises) 16; the split per exercise,
the kinds of hidden cases and the partial-credit rules are in the docstring of each
``autograder.hidden.lessonNN`` module, and the
shared scoring rule (a group of cases earns its points when every answer is right, half when
every answer is acceptable but some only partly, e.g. a tie broken the wrong way) in
``autograder.hidden.common``. Scoring is deterministic: the hidden cases come from fixed seeds.
"""

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden import lesson01, lesson02, lesson03, lesson04

RUBRIC: dict[str, list[Exercise]] = {
    "01_cost_matrix": lesson01.EXERCISES,
    "02_greedy_balancing": lesson02.EXERCISES,
    "03_optimal_makespan": lesson03.EXERCISES,
    "04_sockets_and_forking": lesson04.EXERCISES,
}


def grade_lesson(lesson: str, student: Student) -> list[ExerciseResult]:
    """Grade one lesson's exercises, in order; a hidden test that breaks scores an error result."""
    if lesson not in RUBRIC:
        raise ValueError(f"unknown lesson {lesson!r}: expected one of {', '.join(RUBRIC)}")
    results = []
    for exercise in RUBRIC[lesson]:
        try:
            results.append(exercise.grade(student))
        except Exception as error:  # a bug in a hidden test must not sink the whole class
            note = (
                f"the grader failed while testing this exercise ({type(error).__name__}); "
                "this is not your fault: tell your instructor"
            )
            results.append(ExerciseResult(lesson, exercise.name, 0.0, exercise.points, [note]))
    return results
