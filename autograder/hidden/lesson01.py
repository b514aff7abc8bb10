"""Hidden tests of lesson 1 (the cost model): ``processing_time`` 5 points, ``cost_matrix`` 5.

processing_time: every kind, type and wire length (3), lengths above 9 (0.5), invalid kinds,
types and lengths raise ValueError (1.5).
cost_matrix: the default fleet, called with and without the argument (2), five other fleets
up to ten servers (2), invalid fleets raise ValueError (1).
"""

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden.common import (
    OTHER_FLEETS,
    RIGHT,
    Answer,
    Args,
    Group,
    Outcome,
    Response,
    call_failure,
    expect_value_error,
    grade_exercise,
    is_number,
    matching,
    same_number,
    wrong,
)
from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES, SERVER_KINDS, cost_matrix
from minilb.costs import processing_time as reference_processing_time

LESSON = "01_cost_matrix"


def _judge_time(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if same_number(answer, reference_processing_time(*args)):
        return RIGHT
    return wrong("wrong processing time")


def _other_kind(kind: str) -> str:
    return next(k for k in SERVER_KINDS if k != kind)


# Rules a student may have written instead; the grader names the one their answers follow.
TIME_MISTAKES = [
    (lambda k, t, n: n, "your times are the raw length: multiply it by the server's factor"),
    (lambda k, t, n: FACTORS[k][t], "your times ignore the length: it is length x factor"),
    (lambda k, t, n: n + FACTORS[k][t], "you add the factor to the length instead of multiplying"),
    (
        lambda k, t, n: n * FACTORS[_other_kind(k)][t],
        "you use the factors of the other server kind (VP and M swapped)",
    ),
]


KIND_LABEL = {"VP": "a VP server", "M": "an M server"}


def _diagnose_time(responses: list[Response]) -> list[str]:
    for rule, message in TIME_MISTAKES:
        if matching(responses, rule):
            return [message]
    wrong_factors = sorted(
        {
            f"{KIND_LABEL[r.args[0]]} serving {r.args[1]}"
            for r in responses
            if not r.group.invalid_inputs and r.outcome.credit < 1.0 and is_number(r.answer)
        }
    )
    if wrong_factors:
        return ["check the factor for: " + ", ".join(wrong_factors)]
    return []



def grade_processing_time(student: Student) -> ExerciseResult:
    combos = [(k, t) for k in SERVER_KINDS for t in REQUEST_TYPES]
    groups = [
        Group("every server kind, request type and length 1-9", 3,
              [(k, t, n) for k, t in combos for n in range(1, 10)], _judge_time),
        Group("lengths above 9 (offline batches)", 0.5,
              [(k, t, n) for k, t in combos for n in (10, 17, 250)], _judge_time),
        Group("invalid input", 1.5, [
            ("X", "V", 2), ("vp", "V", 2), ("", "M", 1), ("VP", "Q", 3), ("M", "v", 3),
            ("VP", "", 1), ("VP", "V", 0), ("M", "P", -4),
        ], expect_value_error("an unknown kind or type, or a length below 1,"),
            invalid_inputs=True),
    ]  # fmt: skip
    return grade_exercise(LESSON, "processing_time", student, groups, _diagnose_time)


def _judge_matrix(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    expected = cost_matrix(*args)
    if not isinstance(answer, dict):
        return wrong("should return a dict with one entry per request type")
    if set(answer) != set(REQUEST_TYPES):
        return wrong("the keys must be the request types V, P and M (one row per request type)")
    fleet_size = len(expected["V"])
    if any(not isinstance(row, list) or len(row) != fleet_size for row in answer.values()):
        return wrong("each row needs one factor per server of the fleet, in fleet order")
    if answer != expected:
        return wrong("some factors are wrong or in the wrong server order")
    return RIGHT


MATRIX_MISTAKES = [
    (
        lambda fleet=DEFAULT_FLEET: {t: [FACTORS[k][t] for k in SERVER_KINDS]
                                     for t in REQUEST_TYPES},  # fmt: skip
        "you give one factor per server kind; give one per server of the fleet (kinds repeat)",
    ),
    (
        lambda fleet=DEFAULT_FLEET: cost_matrix(DEFAULT_FLEET),
        "your matrix ignores the fleet argument: it always describes the default fleet",
    ),
]


def _diagnose_matrix(responses: list[Response]) -> list[str]:
    return [message for rule, message in MATRIX_MISTAKES if matching(responses, rule)][:1]


def grade_cost_matrix(student: Student) -> ExerciseResult:
    groups = [
        Group("the default fleet", 2, [(), (list(DEFAULT_FLEET),)], _judge_matrix),
        Group("other fleets (one server, only Music servers, ten servers, mixed orders)", 2,
              [(fleet,) for fleet in OTHER_FLEETS], _judge_matrix),
        Group("invalid fleets", 1, [(["VP", "X"],), ([],), (["vp", "M"],), (["M", ""],)],
              expect_value_error("a fleet with an unknown kind, or no server,"),
              invalid_inputs=True),
    ]  # fmt: skip
    return grade_exercise(LESSON, "cost_matrix", student, groups, _diagnose_matrix)


EXERCISES = [
    Exercise(LESSON, "processing_time", 5, grade_processing_time),
    Exercise(LESSON, "cost_matrix", 5, grade_cost_matrix),
]
