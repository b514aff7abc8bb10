"""Every judge rejects numbers it cannot compare: NaN, infinities, and bools for ints.

NaN fails every ``<``, ``>`` and ``==``, so before ``common.is_number`` a ``lower_bound``
returning ``float("nan")`` was "never above the optimum" and "at least the simple bound" at once
and scored 4/4. Here each exercise of lessons 1-3 (whose answers are numbers) is answered by the
reference with its numbers replaced (lesson 4 is graded only through a real sandbox):
whatever it gets right on invalid input, it must score no more than a blank notebook. Positive
controls: the same stand-in without the poison scores full marks (so the poison is what loses),
and the grader's old number test lets the issue's NaN ``lower_bound`` score 4/4 again. Lesson
4's judges that read numbers from a harness's report (exit codes, how long a call took) are
tested on those reports directly, each beside a report they accept.
"""

import math
from typing import Any

import pytest
from notebook_fixtures import mistaken_notebook

from autograder.contract import LESSONS, StudentCallError
from autograder.grade import Submission, grade_submission
from autograder.hidden import common, lesson03, lesson04
from autograder.mutation import InProcessStudent
from autograder.rubric import RUBRIC

NUMBER_EXERCISES = [(lesson, name) for lesson in list(LESSONS)[:3] for name in LESSONS[lesson]]
# Lesson 4 is graded only through a real sandbox (its grader watches the process from outside),
# so its number judges are tested below on the reports themselves, not with this stand-in.
POISONS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def poisoned(value: Any, poison: Any, budget: list[int]) -> Any:
    """``value`` with its numbers (not bools) replaced by ``poison``, while ``budget[0]`` > 0."""
    if type(value) in (int, float) and budget[0] > 0:
        budget[0] -= 1
        return poison
    if isinstance(value, list):
        return [poisoned(item, poison, budget) for item in value]
    if isinstance(value, dict):
        return {key: poisoned(item, poison, budget) for key, item in value.items()}
    return value


class PoisonedStudent:
    """The reference notebook, except that every answer it returns has ``poison`` for its
    numbers (``first_only``: for the first number only), or is the poison when it holds none.
    Invalid inputs still raise ValueError, so the invalid-input groups would pay if a poisoned
    answer counted as an answer."""

    def __init__(self, poison: Any = None, first_only: bool = False) -> None:
        self.reference, self.poison, self.first_only = InProcessStudent(), poison, first_only

    def has(self, function: str) -> bool:
        return self.reference.has(function)

    def call(self, function: str, *args: Any, timeout: float = 5.0,
             harness: str | None = None) -> Any:
        answer = self.reference.call(function, *args, timeout=timeout, harness=harness)
        if self.poison is None:
            return answer
        if isinstance(answer, dict) and set(answer) == {"result", "mutated"}:  # contracts harness
            return {**answer, "result": self.spoil(answer["result"])}
        return self.spoil(answer)

    def spoil(self, answer: Any) -> Any:
        """The answer poisoned; one holding no number (``[]``) is replaced by the poison."""
        budget = [1 if self.first_only else 10**9]
        spoiled = poisoned(answer, self.poison, budget)
        return self.poison if budget[0] == (1 if self.first_only else 10**9) else spoiled


class BlankStudent:
    """The handout: every function raises NotImplementedError."""

    def has(self, function: str) -> bool:
        return True

    def call(self, function: str, *args: Any, **options: Any) -> Any:
        raise StudentCallError("raised", "NotImplementedError", exc_bases=("RuntimeError",))


def score(lesson: str, name: str, student: Any) -> tuple[float, float]:
    exercise = next(e for e in RUBRIC[lesson] if e.name == name)
    result = exercise.grade(student)
    return result.score, result.max_score


@pytest.fixture(scope="module")
def blank_scores() -> dict[tuple[str, str], float]:
    return {(lesson, name): score(lesson, name, BlankStudent())[0]
            for lesson, name in NUMBER_EXERCISES}  # fmt: skip


@pytest.mark.parametrize(("lesson", "name"), NUMBER_EXERCISES, ids=[n for _, n in NUMBER_EXERCISES])
def test_the_unpoisoned_stand_in_scores_full_marks(lesson, name):
    """Positive control: what the poisoned stand-ins lose, they lose to the poison."""
    got, most = score(lesson, name, PoisonedStudent())
    assert got == most > 0


@pytest.mark.parametrize("first_only", [False, True], ids=["every-number", "first-number"])
@pytest.mark.parametrize("poison", list(POISONS))
@pytest.mark.parametrize(("lesson", "name"), NUMBER_EXERCISES, ids=[n for _, n in NUMBER_EXERCISES])
def test_nan_and_infinities_score_no_more_than_a_blank_notebook(
    lesson, name, poison, first_only, blank_scores
):
    got, _ = score(lesson, name, PoisonedStudent(POISONS[poison], first_only))
    assert got <= blank_scores[lesson, name], (name, poison, got)


# Answers holding the ints 0 or 1 somewhere, and where those bools land in a judged case.
BOOL_EXERCISES = [("01_cost_matrix", "processing_time"), ("01_cost_matrix", "cost_matrix"),
                  ("02_greedy_balancing", "choose_server"),
                  ("02_greedy_balancing", "greedy_assign"),
                  ("03_optimal_makespan", "optimal_makespan")]  # fmt: skip


class BoolStudent(PoisonedStudent):
    """The reference with every 0 and 1 it returns given as False and True."""

    def call(self, function: str, *args: Any, timeout: float = 5.0,
             harness: str | None = None) -> Any:
        answer = self.reference.call(function, *args, timeout=timeout, harness=harness)
        return {**answer, "result": as_bools(answer["result"])} if harness else as_bools(answer)


def as_bools(value: Any) -> Any:
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, list):
        return [as_bools(item) for item in value]
    if isinstance(value, dict):
        return {key: as_bools(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("lesson", "name"), BOOL_EXERCISES, ids=[n for _, n in BOOL_EXERCISES])
def test_a_bool_is_not_an_int_to_any_judge(lesson, name):
    result = next(e for e in RUBRIC[lesson] if e.name == name).grade(BoolStudent())
    judged = [line for line in result.feedback if not line.startswith("returns ")]
    assert result.score < result.max_score and judged, result.feedback


def test_the_old_number_test_lets_a_nan_lower_bound_score_full_marks(monkeypatch):
    """Positive control for the NaN test: the hole of issue 14 reappears without the helper."""
    def old_is_number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    monkeypatch.setattr(lesson03, "is_number", old_is_number)
    monkeypatch.setattr(common, "judgeable", lambda answer: True)
    assert score("03_optimal_makespan", "lower_bound", PoisonedStudent(math.nan)) == (4.0, 4.0)


def test_a_nan_lower_bound_scores_nothing_through_the_sandbox(tmp_path):
    """The child sends NaN as JSON allows it (``NaN``): the grader must still refuse it."""
    lesson = "03_optimal_makespan"
    notebook = mistaken_notebook(lesson, tmp_path / "s" / f"{lesson}.ipynb",
                                 "return float(_relaxed_optimum(batch))", "return float('nan')")
    grade = grade_submission(Submission("s", lesson, notebook))
    scores = {exercise["name"]: exercise["score"] for exercise in grade.exercises}
    assert scores == {"lower_bound": 0.0, "optimal_makespan": 6.0}, grade


# --- lesson 4: the numbers its judges read from a harness's report -------------------------------

REAP = ([0, 3, 1, 42], False)
TIMEOUT_NAMES = ["TimeoutError", "OSError", "Exception", "BaseException"]


@pytest.mark.parametrize("odd", [True, math.nan, math.inf, -math.inf, 1.0], ids=repr)
def test_lesson4_exit_codes_must_be_ints(odd):
    good = {"kind": "dict", "codes": [0, 3, 1, 42], "raised": None}
    assert lesson04._judge_codes(REAP, good) == common.RIGHT  # positive control
    assert lesson04._judge_codes(REAP, {**good, "codes": [0, 3, odd, 42]}).credit == 0
    running = {"codes": [2, 0], "raised": None}
    assert lesson04._judge_running(([2, 0], True), running) == common.RIGHT
    assert lesson04._judge_running(([2, 0], True), {**running, "codes": [2, odd]}).credit == 0


@pytest.mark.parametrize("odd", [math.nan, math.inf, -math.inf, True], ids=repr)
def test_lesson4_a_timeout_needs_a_real_duration(odd):
    args = ("silent", {"__bytes__": "P6"}, 2, 0.5)
    seen = {"raised": TIMEOUT_NAMES, "seconds": 0.5, "returned": None}
    assert lesson04._judge_silent(args, seen) == common.RIGHT  # positive control
    assert lesson04._judge_silent(args, {**seen, "seconds": odd}).credit == 0
