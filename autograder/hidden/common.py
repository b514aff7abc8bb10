"""What every lesson's hidden tests share: groups of cases, judging answers, scoring.

An exercise is graded on a few *groups* of cases ("other fleets", "invalid input"...), each worth
some points. A group earns its points when every case in it is right, half of them when every
answer is acceptable but some only partly (a tie broken the wrong way), and nothing otherwise:
one wrong answer is a wrong rule, however many cases it happens to get right. A group of invalid
inputs earns only when the function returns an answer (not an exception) for some valid input,
so a function that raises ``ValueError`` for everything gains nothing.

Contracts the lessons state are graded as groups of their own, so that breaking one costs those
points and no others:

- *audit* groups have no cases: they look at every answer to a valid case of the exercise, for
  example "returns exactly the type the API says" (``returns_group``) or "never changes its
  arguments" (``unchanged_group``). They earn only once some whole group of valid cases earns
  points, so that a few lucky answers of the right type earn nothing.
- When ``grade_exercise`` is given the function's argument names, every call goes through the
  contracts harness (``contracts_harness.py``, run inside the sandbox), which reports the
  arguments the call mutated, at every clock and fleet the hidden cases use; and a group may
  give each case ``shapes`` (tuples, ``Request`` named tuples) that JSON cannot carry.
- A group may have its own time ``budget`` per call (speed is graded): a call over it fails
  the group as too slow, and the rest of that group is skipped, instead of ending the whole
  exercise as an endless loop does. The budget is CPU time of the sandbox, measured from the
  grader's side (``cpu_seconds_of_last_call``), so that the points do not depend on the
  machine's load; wall time only bounds it as a generous safety net (``WALL_SAFETY`` times the
  budget), for code that sleeps or waits instead of computing.

An error of the right class is half right when its message says nothing, or does not name the
bad argument where the lesson asks for that (``judge_message``): the grader never reads the
message, it asks the sandbox two questions about it (``autograder.contract``).

Numbers are judged only when the grader can compare them: ``is_number`` (an int or a finite
float, never a bool, NaN or an infinity) is the one test every judge uses before ``<``, ``>``
or ``==``, because NaN fails every comparison and so would pass "never above the optimum" and
"at least the simple bound" at once. An answer holding NaN or an infinity anywhere does not
count as answering a valid input either (``judgeable``).

Feedback describes the kind of case that failed and the mistake, never the hidden inputs or the
expected values, and names a student's exception only as ``autograder.contract`` allows (a
known built-in or kit name, else "an exception of its own class"): no text the student's code
chose reaches it.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.contract import OWN_CLASS, ExerciseResult, Student, StudentCallError

# One answer from the student: the returned plain data, or how the call failed.
Answer = Any
Args = tuple[Any, ...]

# Read as text and sent with each call: it runs in the sandbox, never in the grader.
HARNESS = (Path(__file__).with_name("contracts_harness.py")).read_text()


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
class Response:
    """One case as the student answered it, kept for diagnosing the mistake afterwards."""

    group: "Group"
    args: Args
    answer: Answer
    outcome: Outcome
    mutated: tuple[str, ...] = ()  # names of the arguments the call changed


Audit = Callable[[list[Response]], list[str]]


def _no_judge(args: Args, answer: Answer) -> Outcome:  # audit groups call nothing
    return RIGHT


@dataclass(frozen=True)
class Group:
    """A kind of case worth ``points``; ``label`` is what the student is told about it.

    ``shapes``, when given, holds one tuple of shape words per case (see the harness): how to
    build each argument in the sandbox. ``audit`` makes a group without cases that judges all
    the other answers. ``budget`` is this group's time limit per call, and ``too_slow`` what a
    call over it is told.
    """

    label: str
    points: float
    cases: Sequence[Args] = ()
    judge: Callable[[Args, Answer], Outcome] = _no_judge
    invalid_inputs: bool = False
    shapes: Sequence[Sequence[str]] = ()
    audit: Audit | None = None
    budget: float | None = None
    too_slow: str = ""


Diagnosis = Callable[[list[Response]], list[str]]
WALL_SAFETY = 10.0  # a budget group's wall-clock limit per call, in budgets of CPU time

STOPPING_FAILURES = {
    "timeout": "a call did not return within {timeout:g} s (an endless loop, or far too slow); "
    "the rest of this exercise was not tested",
    "crashed": "a call crashed the process (exit, kill signal or out of memory); "
    "the rest of this exercise was not tested",
    "missing": "the function disappeared while grading (was the name rebound?); "
    "the rest of this exercise was not tested",
}
SHAPE_WORDS = {
    "tuple": "{name} as a tuple",
    "tuples": "{name} holding plain tuples",
    "named": "{name} holding Request named tuples",
    "named-tuple": "{name} as a tuple of Request named tuples",
    "request-named": "{name} as a Request named tuple",
}


def grade_exercise(
    lesson: str,
    name: str,
    student: Student,
    groups: Sequence[Group],
    diagnose: Diagnosis | None = None,
    timeout: float = 5.0,
    arguments: Sequence[str] = (),
) -> ExerciseResult:
    """Call ``name`` on every case of every group and score the answers.

    With ``arguments`` (the function's parameter names), every call runs in the contracts
    harness, so mutated arguments and ``shapes`` are seen.
    """
    max_score = float(sum(group.points for group in groups))
    if not student.has(name):
        feedback = [f"`{name}` is not defined in your notebook: check the function's name."]
        return ExerciseResult(lesson, name, 0.0, max_score, feedback)
    responses: list[Response] = []
    stopped = ""
    for group in groups:
        for number, args in enumerate(group.cases):
            shapes = tuple(group.shapes[number]) if group.shapes else ()
            budget = timeout if group.budget is None else max(timeout,
                                                              WALL_SAFETY * group.budget)
            try:
                answer, mutated = _call(student, name, args, shapes, budget, arguments)
                _check_budget(student, group)
            except StudentCallError as error:
                if error.kind == "timeout" and group.too_slow:
                    responses.append(Response(group, args, error, wrong(group.too_slow)))
                    break  # the group is lost; more slow calls would only eat the budget
                if error.kind in STOPPING_FAILURES:
                    stopped = STOPPING_FAILURES[error.kind].format(timeout=budget)
                    break
                answer, mutated = error, ()
            outcome = group.judge(args, answer)
            if outcome.mistake and _shaped(shapes, arguments):
                mistake = f"{outcome.mistake}, with {_shaped(shapes, arguments)}"
                outcome = Outcome(outcome.credit, mistake)
            responses.append(Response(group, args, answer, outcome, mutated))
        if stopped:
            break
    return _score(lesson, name, groups, responses, stopped, diagnose)


def _check_budget(student: Student, group: Group) -> None:
    """A call that used more CPU time than its group's budget is too slow (a timeout)."""
    used = getattr(student, "cpu_seconds_of_last_call", None)
    if group.budget is not None and used is not None and used > group.budget:
        raise StudentCallError("timeout", message=f"used {used:.2f} s of CPU time")


def _call(
    student: Student,
    name: str,
    args: Args,
    shapes: tuple[str, ...],
    timeout: float,
    arguments: Sequence[str],
) -> tuple[Answer, tuple[str, ...]]:
    """The answer to one call, and the names of the arguments it mutated."""
    if not arguments:
        return student.call(name, *args, timeout=timeout), ()
    try:
        reply = student.call(name, list(shapes), *args, timeout=timeout, harness=HARNESS)
    except StudentCallError as error:  # the harness's own first argument (shapes) goes
        error.message_mentions = tuple(i - 1 for i in error.message_mentions if i > 0)
        raise
    if (
        not isinstance(reply, dict)
        or set(reply) != {"result", "mutated"}
        or not isinstance(reply["mutated"], list)
        or not all(type(i) is int and 0 <= i < len(arguments) for i in reply["mutated"])
    ):
        raise StudentCallError("crashed", message="the call's answer was garbled")
    return reply["result"], tuple(arguments[i] for i in reply["mutated"])


def _shaped(shapes: Sequence[str], arguments: Sequence[str]) -> str:
    """The shapes of a case's arguments in words ("" when all came as plain lists)."""
    words = [
        SHAPE_WORDS[shape].format(name=name)
        for shape, name in zip(shapes, arguments, strict=False)
        if shape in SHAPE_WORDS
    ]
    return " and ".join(words)


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
    valid = [r for r in responses if not r.group.invalid_inputs]
    for group_number, group in enumerate(groups):
        outcomes = [r.outcome for r in responses if r.group is group]
        complete = len(outcomes) == len(group.cases)
        credits[group_number] = min((o.credit for o in outcomes), default=1.0) if complete else 0
        worst_first = sorted(outcomes, key=lambda o: o.credit)
        mistakes[group_number] = list(dict.fromkeys(o.mistake for o in worst_first if o.mistake))
        if group.audit is not None:
            found = group.audit(valid)
            credits[group_number] = 0.0 if found or stopped else 1.0
            mistakes[group_number] = found
    answers_valid_inputs = any(not _raised(r.answer) and judgeable(r.answer) for r in valid)
    answers_right = any(  # a whole group, not one lucky answer
        credits[number] > 0
        for number, group in enumerate(groups)
        if group.cases and group.audit is None and not group.invalid_inputs
    )
    full_elsewhere = all(
        credits[number] == 1.0
        for number, group in enumerate(groups)
        if not group.too_slow and group.audit is None and not group.invalid_inputs
    )
    feedback, score = [], 0.0
    for group_number, group in enumerate(groups):
        credit = credits[group_number]
        if group.invalid_inputs and not answers_valid_inputs and credit > 0:
            credit = 0.0
            mistakes[group_number] = ["earns points only once valid inputs get an answer"]
        if group.audit is not None and not answers_right and credit > 0:
            credit = 0.0
            mistakes[group_number] = ["earns points only once a group of valid inputs is right"]
        if group.too_slow and full_elsewhere and group.too_slow in mistakes[group_number]:
            mistakes[group_number] = ["correct but " + group.too_slow]
        score += credit * group.points
        if credit < 1.0 and mistakes[group_number]:
            lost = (1.0 - credit) * group.points
            feedback.append(f"{group.label} (-{lost:g}): " + "; ".join(mistakes[group_number][:2]))
    if responses and all(_not_implemented(r.answer) for r in responses):
        feedback = ["not implemented yet (it raises NotImplementedError)"]
    if stopped:
        feedback.append(stopped)
    if diagnose is not None and any(
        r.outcome.credit < 1.0 and not _raised(r.answer) for r in valid
    ):
        feedback.extend(diagnose(responses))
    max_score = float(sum(group.points for group in groups))
    return ExerciseResult(lesson, name, round(score, 3), max_score, feedback)


# --- contract groups --------------------------------------------------------------------------


def unchanged_group(points: float, label: str = "leaves its arguments unchanged") -> Group:
    """An audit: no call on a valid case may change the caller's lists (the lessons say so)."""

    def audit(responses: list[Response]) -> list[str]:
        names = dict.fromkeys(name for r in responses for name in r.mutated)
        return [f"mutated the caller's {name}" + ("" if name == "request" else " list")
                for name in names]  # fmt: skip

    return Group(label, points, audit=audit)


def returns_group(points: float, label: str, check: Callable[[Answer], str]) -> Group:
    """An audit: every answer judged right (or partly) must have exactly the API's types;
    ``check`` names what is wrong with one answer ("" when nothing)."""

    def audit(responses: list[Response]) -> list[str]:
        found = (check(r.answer) for r in responses if r.outcome.credit > 0)
        return list(dict.fromkeys(mistake for mistake in found if mistake))

    return Group(label, points, audit=audit)


def type_word(value: Any) -> str:
    """``int``, ``float``, ``bool``, ``list``...: how feedback names a value's type (only the
    plain types a reply can carry; never the name of a class the student chose)."""
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict",
             bytes: "bytes", type(None): "NoneType"}  # fmt: skip
    return names.get(type(value), "object")


def type_name(value: Any) -> str:
    """``an int``, ``a float``...: a value's type with its article."""
    word = type_word(value)
    return f"{_article(word)} {word}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in tuple("aeiou") else "a"


def exactly(function: str, wanted: type, what: str) -> Callable[[Answer], str]:
    """A ``returns_group`` check: the answer is exactly of type ``wanted`` (``what`` in words)."""

    def check(answer: Answer) -> str:
        if type(answer) is wanted:
            return ""
        return f"returns {type_name(answer)}; {function} returns {what}"

    return check


def list_of(function: str, wanted: type, what: str) -> Callable[[Answer], str]:
    """A ``returns_group`` check: a list whose items are all exactly of type ``wanted``."""

    def check(answer: Answer) -> str:
        if not isinstance(answer, list):
            return f"returns {type_name(answer)}; {function} returns {what}"
        odd = [item for item in answer if type(item) is not wanted]
        if not odd:
            return ""
        return f"returns a list holding {type_word(odd[0])}s; {function} returns {what}"

    return check


# --- invalid lengths --------------------------------------------------------------------------

# Lengths are positive ints: each of these must raise ValueError, and the feedback names which
# kind of value was let through (the lesson's rule, not hidden data; parentheses keep numbers
# apart from the text).
BAD_LENGTHS: dict[Any, str] = {
    2.0: "accepts a float length (2.0): lengths must be ints",
    True: "accepts the bool True as a length: lengths must be ints",
    "3": "accepts the text '3' as a length: lengths must be ints",
    0: "accepts a length of 0: lengths must be at least 1",
    -1: "accepts a negative length: lengths must be at least 1",
}


def bad_lengths_group(label: str, points: float, case: Callable[[Any], Args],
                      length_of: Callable[..., Any]) -> Group:
    """Invalid input: every kind of bad length must raise ValueError. ``case(length)`` builds a
    call around one bad length and ``length_of(*args)`` finds it again for the feedback."""
    lengths = [2.0, True, "3", 0, -1]  # True and 1, 0 and 0.0 would collide as dict keys
    judge = expect_value_error("a length that is not a positive int")

    def check(args: Args, answer: Answer) -> Outcome:
        if isinstance(answer, StudentCallError):
            return judge(args, answer)
        length = length_of(*args)
        key = next(bad for bad in lengths if type(bad) is type(length) and bad == length)
        return wrong(BAD_LENGTHS[key])

    return Group(label, points, [case(length) for length in lengths], check, invalid_inputs=True)


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
    return f"raised {raised_words(answer)} on a valid input"


def raised_words(answer: StudentCallError) -> str:
    """The exception a failed call raised, in words the grader chose: ``ValueError``, or "an
    exception of its own class (a ValueError)" for a student's subclass (never its name)."""
    if answer.exc_type != OWN_CLASS:
        return answer.exc_type or answer.kind
    family = next((b for b in answer.exc_bases if b not in ("Exception", "BaseException")), "")
    return f"{OWN_CLASS} ({_article(family)} {family})" if family else OWN_CLASS


def is_value_error(answer: Answer, also: Sequence[str] = ()) -> bool:
    """Whether the call raised ``ValueError`` (or a subclass, or one of the ``also`` names)."""
    if not isinstance(answer, StudentCallError) or answer.kind != "raised":
        return False
    names = {answer.exc_type, *answer.exc_bases}
    return "ValueError" in names or any(name in names for name in also)


def judge_message(
    what: str, error: str, args: Args, answer: StudentCallError,
    names: Callable[[Args], int | None] | None = None,
) -> Outcome:
    """A raised error of the right class is fully right only with a message that says what was
    wrong: non-empty, and naming the bad argument (``names(args)``: its index, None for none)
    when the lesson asks for that. The grader never reads the message: it asks the child two
    questions about it (``autograder.contract``); when they were not answered, it is RIGHT."""
    if answer.message_nonempty is False:
        return partly(f"{what}: the {error} says nothing about what was wrong (give it a "
                      "message)")  # fmt: skip
    index = names(args) if names is not None else None
    if index is not None and answer.message_nonempty and index not in answer.message_mentions:
        return partly(f"{what}: the {error}'s message does not name the bad value")
    return RIGHT


def expect_value_error(
    what: str, error: str = "ValueError", also: Sequence[str] = (),
    names: Callable[[Args], int | None] | None = None,
) -> Callable[[Args, Answer], Outcome]:
    """A judge for invalid inputs: the call must raise ``ValueError`` (or one of ``also``) with
    a message (``judge_message``; ``names`` finds the argument it must name).

    ``what`` names the kind of case and ``error`` the exception the student is told to raise.
    """

    def judge(args: Args, answer: Answer) -> Outcome:
        if is_value_error(answer, also):
            return judge_message(what, error, args, answer, names)
        if isinstance(answer, StudentCallError) and answer.kind == "raised":
            if answer.exc_type == "NotImplementedError":
                return wrong("not implemented yet (it raises NotImplementedError)")
            return wrong(f"{what} should raise {error}, not {raised_words(answer)}")
        return wrong(f"{what} should raise {error} with a clear message, but it returned a value "
                     "instead of raising")

    return judge


def is_number(value: Any) -> bool:
    """Whether the grader can compare ``value`` as a number: an int or a finite float. Not a
    bool (a flag, where a number is asked for), NaN (every ``<``, ``>`` and ``==`` is false)
    or an infinity (above or below every bound). Every judge asks this before comparing."""
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def is_index(value: Any) -> bool:
    """An int (never a bool): a server index, a length, a count."""
    return type(value) is int


def judgeable(answer: Answer, depth: int = 0) -> bool:
    """Whether ``answer`` holds no NaN and no infinity anywhere (in its lists and dicts too)."""
    if type(answer) is float:
        return math.isfinite(answer)
    if depth > 60:
        return False
    if isinstance(answer, list):
        return all(judgeable(item, depth + 1) for item in answer)
    if isinstance(answer, dict):
        return all(judgeable(item, depth + 1) for item in answer.values())
    return True


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


# Fleets the hidden tests use besides the default one (lists: that is how they cross the pipe),
# grouped by the mistake each family exposes: code that assumes one Music server (or that the
# last server is the Music one), three servers, or at least two of them.
SEVERAL_MUSIC = [["VP", "M", "M"], ["M", "M"], ["M", "VP", "M", "VP"], ["M", "M", "M", "VP", "VP"]]
SEVERAL_VP = [["VP", "VP", "VP", "M"], ["VP", "VP"], ["VP", "M", "VP", "VP", "VP"]]
ONE_SERVER = [["VP"], ["M"]]
FIVE_SERVERS = [["VP", "M", "VP", "M", "VP"], ["M", "VP", "VP", "M", "M"]]
TEN_SERVERS = ["VP", "M", "VP", "VP", "M", "M", "VP", "M", "VP", "VP"]
OTHER_FLEETS = [*ONE_SERVER, ["M", "VP"], ["M", "M", "VP", "VP"], *FIVE_SERVERS, TEN_SERVERS]
