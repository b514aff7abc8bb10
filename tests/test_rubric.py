"""The rubric: full marks for the reference, zero for the stubs, clear notes for every failure."""

import re

import pytest

from autograder.contract import LESSONS, Exercise, ExerciseResult
from autograder.mutation import InProcessStudent, mutable_functions
from autograder.rubric import RUBRIC, grade_lesson

STUBS = {
    name: f"def {name}(*args, **kwargs):\n    raise NotImplementedError()\n"
    for names in LESSONS.values()
    for name in names
}


def test_the_rubric_grades_exactly_the_contracts_exercises_for_its_points():
    assert {lesson: tuple(e.name for e in exercises) for lesson, exercises in RUBRIC.items()} == (
        LESSONS
    )
    points = {lesson: sum(e.points for e in exercises) for lesson, exercises in RUBRIC.items()}
    assert points == {"01_cost_matrix": 10, "02_greedy_balancing": 10,
                      "03_optimal_makespan": 10, "04_sockets_and_forking": 16}  # fmt: skip


# Lesson 4 is graded from outside a sandboxed process (autograder/TRUST.md), so it cannot run
# in-process: tests/test_lesson04_grading.py grades the reference and the blank handout there.
IN_PROCESS = [lesson for lesson in LESSONS if lesson != "04_sockets_and_forking"]


@pytest.mark.parametrize("lesson", IN_PROCESS)
def test_the_reference_scores_full_marks_without_feedback(lesson):
    results = grade_lesson(lesson, InProcessStudent())
    points = {exercise.name: exercise.points for exercise in RUBRIC[lesson]}
    for result in results:
        assert result.max_score == points[result.exercise]
        assert result.passed and result.feedback == [], result


@pytest.mark.parametrize("lesson", IN_PROCESS)
def test_the_blank_handout_scores_zero_and_is_told_so(lesson):
    for result in grade_lesson(lesson, InProcessStudent(STUBS)):
        assert result.score == 0
        assert result.feedback == ["not implemented yet (it raises NotImplementedError)"]


def test_a_missing_function_scores_zero_with_a_note():
    student = InProcessStudent()
    del student.namespace["makespan"]
    makespan = grade_lesson("02_greedy_balancing", student)[0]
    assert makespan.score == 0 and "not defined" in makespan.feedback[0]


def test_raising_value_error_for_everything_gains_nothing():
    always_raise = {name: f"def {name}(*a):\n    raise ValueError('no')\n" for name in STUBS}
    for lesson in LESSONS:
        assert sum(r.score for r in grade_lesson(lesson, InProcessStudent(always_raise))) == 0


def test_a_hanging_function_costs_only_its_own_exercise():
    source = mutable_functions()["choose_server"][1]
    loop = "    ### BEGIN SOLUTION\n    while True:\n        pass\n"
    hanging = source.replace("    ### BEGIN SOLUTION\n", loop)
    student = InProcessStudent({"choose_server": hanging}, max_timeout=0.2)
    results = {r.exercise: r for r in grade_lesson("02_greedy_balancing", student)}
    assert results["choose_server"].score == 0
    assert "did not return" in " ".join(results["choose_server"].feedback)
    assert results["makespan"].passed and results["finish_times"].passed


def test_answers_that_are_not_plain_data_score_nothing():
    weird = {"makespan": "def makespan(times):\n    return object()\n"}
    result = grade_lesson("02_greedy_balancing", InProcessStudent(weird))[0]
    assert result.score == 0 and "not plain data" in " ".join(result.feedback)


def test_a_broken_hidden_test_becomes_an_error_result(monkeypatch):
    def broken(student):
        raise KeyError("bug in a hidden test")

    exercise = RUBRIC["01_cost_matrix"][0]
    broken_exercise = Exercise(exercise.lesson, exercise.name, 5, broken)
    monkeypatch.setitem(RUBRIC, "01_cost_matrix", [broken_exercise])
    (result,) = grade_lesson("01_cost_matrix", InProcessStudent())
    assert result == ExerciseResult("01_cost_matrix", exercise.name, 0.0, 5, result.feedback)
    assert "grader failed" in result.feedback[0] and "KeyError" in result.feedback[0]


def test_an_unknown_lesson_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown lesson '05_nope'"):
        grade_lesson("05_nope", InProcessStudent())


def test_grading_is_deterministic():
    student = InProcessStudent({"choose_server": mutable_functions()["choose_server"][1].replace(
        "key < best_key", "key <= best_key")})  # fmt: skip
    first = grade_lesson("02_greedy_balancing", student)
    assert first == grade_lesson("02_greedy_balancing", student)


@pytest.mark.parametrize("function", [name for names in LESSONS.values() for name in names])
def test_feedback_never_shows_hidden_inputs_or_expected_values(function):
    """Return a wrong value of the right shape; the notes may name kinds of cases, no data."""
    wrong = {
        "processing_time": "99", "cost_matrix": "{'V': [9], 'P': [9], 'M': [9]}",
        "makespan": "99.0", "choose_server": "0", "greedy_assign": "[0] * len(args[0])",
        "finish_times": "[9.0] * 3", "lower_bound": "999.0",
        "optimal_makespan": "(1, [0] * len(args[0]))", "parse_request": "('V', 9)",
        "recv_exactly": "b'??'", "spawn_relay_child": "0", "reap_children": "{0: 0}",
        "serve_forking": "{}",
    }[function]  # fmt: skip
    student = InProcessStudent({function: f"def {function}(*args):\n    return {wrong}\n"})
    lesson = next(lesson for lesson, names in LESSONS.items() if function in names)
    result = next(r for r in grade_lesson(lesson, student) if r.exercise == function)
    assert result.score < result.max_score
    text = " ".join(result.feedback)
    # Points lost look like "(-1.5)"; beyond those, no lists, tuples, bytes or quoted values.
    assert not re.search(r"[\[\]{}]|b'|\('|\d+\.\d+(?!\))", re.sub(r"\(-[\d.]+\)", "", text)), text
