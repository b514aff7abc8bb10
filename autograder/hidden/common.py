"""What every lesson's hidden tests share: groups of cases, judging answers, scoring.

An exercise is graded on a few *groups* of cases ("other fleets", "invalid input"...), each worth
some points. A group earns its points when every case in it is right, half of them when every
answer is acceptable but some only partly (a tie broken the wrong way), and nothing otherwise:
one wrong answer is a wrong rule, however many cases it happens to get right. A group of invalid
inputs earns only when the function returns an answer (not an exception) for some valid input,
so a function that raises ``ValueError`` for everything gains nothing.

Feedback describes the kind of case that failed and the mistake, never the hidden inputs or the
expected values.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autograder.contract import ExerciseResult, Student, StudentCallError

# One answer from the student: the returned plain data, or how the call failed.
Answer = Any
Args = tuple[Any, ...]


@dataclass(frozen=True)
class Outcome:
    """The grader's judgement of one answer: credit 1 (right), 0.5 (partly) or 0 (wrong)."""

    credit: float
    mistake: str = ""


RIGHT = Outcome(1.0)


def wrong(mistake: str) -> Outcome:
    return Outcome(0.0, mistake)


def partly(mistake: str) -> Outcome:
    return Outcome(0.5, mistake)


@dataclass(frozen=True)
class Group:
    """A kind of case worth ``points``; ``label`` is what the student is told about it."""

    label: str
    points: float
    cases: Sequence[Args]
    judge: Callable[[Args, Answer], Outcome]
    invalid_inputs: bool = False


@dataclass(frozen=True)
class Response:
    """One case as the student answered it, kept for diagnosing the mistake afterwards."""

    group: Group
    args: Args
    answer: Answer
    outcome: Outcome


Diagnosis = Callable[[list[Response]], list[str]]

STOPPING_FAILURES = {
    "timeout": "a call did not return within {timeout:g} s (an endless loop, or far too slow); "
    "the rest of this exercise was not tested",
    "crashed": "a call crashed the process (exit, kill signal or out of memory); "
    "the rest of this exercise was not tested",
    "missing": "the function disappeared while grading (was the name rebound?); "
    "the rest of this exercise was not tested",
}


def grade_exercise(
    lesson: str,
    name: str,
    student: Student,
    groups: Sequence[Group],
    diagnose: Diagnosis | None = None,
    timeout: float = 5.0,
) -> ExerciseResult:
    """Call ``name`` on every case of every group and score the answers."""
    max_score = float(sum(group.points for group in groups))
    if not student.has(name):
        feedback = [f"`{name}` is not defined in your notebook: check the function's name."]
        return ExerciseResult(lesson, name, 0.0, max_score, feedback)
    responses: list[Response] = []
    stopped = ""
    for group in groups:
        for args in group.cases:
            try:
                answer = student.call(name, *args, timeout=timeout)
            except StudentCallError as error:
                if error.kind in STOPPING_FAILURES:
                    stopped = STOPPING_FAILURES[error.kind].format(timeout=timeout)
                    break
                answer = error
            responses.append(Response(group, args, answer, group.judge(args, answer)))
        if stopped:
            break
    return _score(lesson, name, groups, responses, stopped, diagnose)


def _score(
    lesson: str,
    name: str,
    groups: Sequence[Group],
    responses: list[Response],
    stopped: str,
    diagnose: Diagnosis | None,
) -> ExerciseResult:
    credits: dict[int, float] = {}
    mistakes: dict[int, list[str]] = {}
    for group_number, group in enumerate(groups):
        outcomes = [r.outcome for r in responses if r.group is group]
        complete = len(outcomes) == len(group.cases)
        credits[group_number] = min((o.credit for o in outcomes), default=1.0) if complete else 0
        worst_first = sorted(outcomes, key=lambda o: o.credit)
        mistakes[group_number] = list(dict.fromkeys(o.mistake for o in worst_first if o.mistake))
    answers_valid_inputs = any(
        not r.group.invalid_inputs and not _raised(r.answer) for r in responses
    )
    feedback, score = [], 0.0
    for group_number, group in enumerate(groups):
        credit = credits[group_number]
        if group.invalid_inputs and not answers_valid_inputs and credit > 0:
            credit = 0.0
            mistakes[group_number] = ["earns points only once valid inputs get an answer"]
        score += credit * group.points
        if credit < 1.0 and mistakes[group_number]:
            lost = (1.0 - credit) * group.points
            feedback.append(f"{group.label} (-{lost:g}): " + "; ".join(mistakes[group_number][:2]))
    if responses and all(_not_implemented(r.answer) for r in responses):
        feedback = ["not implemented yet (it raises NotImplementedError)"]
    if stopped:
        feedback.append(stopped)
    if diagnose is not None and any(
        r.outcome.credit < 1.0 and not r.group.invalid_inputs and not _raised(r.answer)
        for r in responses
    ):
        feedback.extend(diagnose(responses))
    max_score = float(sum(group.points for group in groups))
    return ExerciseResult(lesson, name, round(score, 3), max_score, feedback)


def _raised(answer: Answer) -> bool:
    return isinstance(answer, StudentCallError)


def _not_implemented(answer: Answer) -> bool:
    return isinstance(answer, StudentCallError) and answer.exc_type == "NotImplementedError"


def call_failure(answer: Answer) -> str:
    """Why a failed call is wrong where a value was expected ("" if a value came back)."""
    if not isinstance(answer, StudentCallError):
        return ""
    if answer.kind == "not-plain-data":
        return "returned something that is not plain data (numbers, strings, lists, dicts)"
    if answer.exc_type == "NotImplementedError":
        return "not implemented yet (it raises NotImplementedError)"
    return f"raised {answer.exc_type or answer.kind} on a valid input"


def is_value_error(answer: Answer, also: Sequence[str] = ()) -> bool:
    """Whether the call raised ``ValueError`` (or a subclass, or one of the ``also`` names)."""
    if not isinstance(answer, StudentCallError) or answer.kind != "raised":
        return False
    names = {answer.exc_type, *answer.exc_bases}
    return "ValueError" in names or any(name in names for name in also)


def expect_value_error(
    what: str, error: str = "ValueError", also: Sequence[str] = ()
) -> Callable[[Args, Answer], Outcome]:
    """A judge for invalid inputs: the call must raise ``ValueError`` (or one of ``also``).

    ``what`` names the kind of case and ``error`` the exception the student is told to raise.
    """

    def judge(args: Args, answer: Answer) -> Outcome:
        if is_value_error(answer, also):
            return RIGHT
        if isinstance(answer, StudentCallError) and answer.kind == "raised":
            if answer.exc_type == "NotImplementedError":
                return wrong("not implemented yet (it raises NotImplementedError)")
            return wrong(f"{what} should raise {error}, not {answer.exc_type}")
        return wrong(f"{what} should raise {error} with a clear message, but it returned")

    return judge


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def same_number(got: Any, expected: float) -> bool:
    return is_number(got) and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


def same_numbers(got: Any, expected: Sequence[float]) -> bool:
    return (
        isinstance(got, list)
        and len(got) == len(expected)
        and all(same_number(g, e) for g, e in zip(got, expected, strict=True))
    )


def matching(responses: list[Response], rule: Callable[..., Any]) -> bool:
    """Whether ``rule`` reproduces every answer given to a valid input (the mistake's name)."""
    checked = [r for r in responses if not r.group.invalid_inputs]
    return bool(checked) and all(
        not isinstance(r.answer, StudentCallError) and r.answer == rule(*r.args) for r in checked
    )


# Fleets the hidden tests use besides the default one (lists: that is how they cross the pipe).
TEN_SERVERS = ["VP", "M", "VP", "VP", "M", "M", "VP", "M", "VP", "VP"]
OTHER_FLEETS = [["VP"], ["M"], ["M", "VP"], ["M", "M", "VP", "VP"], TEN_SERVERS]
