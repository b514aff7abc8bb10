"""Hidden tests of lesson 1 (the cost model): ``processing_time`` 5 points, ``cost_matrix`` 5.

processing_time: every kind, type and wire length (2.5), lengths above 9 (0.5), returns an
``int`` (0.5), unknown kinds and types raise ValueError with a message naming the bad kind or
type (0.75; half without), and so do lengths that are not positive ints: 2.0, True, "3", 0, -1
(0.75). Every ValueError the hidden tests ask for needs a message (half a group without one).
cost_matrix: the default fleet, called with and without the argument (1.5), fleets with several
Music servers (0.5), with several VP servers (0.5), one, five and ten servers (0.5), fleets
given as tuples (0.5), returns a dict of lists of ints with the keys in the order V, P, M (0.5),
leaves the caller's fleet list unchanged (0.5, checked on every call), invalid fleets raise
ValueError (0.5).
"""

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden.common import (
    FIVE_SERVERS,
    ONE_SERVER,
    RIGHT,
    SEVERAL_MUSIC,
    SEVERAL_VP,
    TEN_SERVERS,
    Answer,
    Args,
    Group,
    Outcome,
    Response,
    bad_lengths_group,
    call_failure,
    exactly,
    expect_value_error,
    grade_exercise,
    is_number,
    list_of,
    matching,
    returns_group,
    same_number,
    type_name,
    unchanged_group,
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



def _bad_kind_or_type(args: Args) -> int | None:
    """Which argument the message must name (the lesson: "names the bad kind"); None when it
    is the empty string, which every message contains."""
    bad = 0 if args[0] not in SERVER_KINDS else 1
    return bad if args[bad] else None


def grade_processing_time(student: Student) -> ExerciseResult:
    combos = [(k, t) for k in SERVER_KINDS for t in REQUEST_TYPES]
    groups = [
        Group("every server kind, request type and length 1-9", 2.5,
              [(k, t, n) for k, t in combos for n in range(1, 10)], _judge_time),
        Group("lengths above 9 (offline batches)", 0.5,
              [(k, t, n) for k, t in combos for n in (10, 17, 250)], _judge_time),
        returns_group(0.5, "returns an int",
                      exactly("processing_time", int, "an int (length x factor)")),
        Group("invalid input (unknown kinds and types)", 0.75, [
            ("X", "V", 2), ("vp", "V", 2), ("", "M", 1), ("VP", "Q", 3), ("M", "v", 3),
            ("VP", "", 1),
        ], expect_value_error("an unknown kind or type", names=_bad_kind_or_type),
           invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.75,
                          lambda length: ("M", "P", length), lambda kind, type_, length: length),
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
    if not all(is_number(factor) for row in answer.values() for factor in row):
        return wrong("every factor must be a number (an int), not a bool, NaN or an infinity")
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


def _matrix_types(answer: Answer) -> str:
    wanted = "a dict of lists of ints"
    if not isinstance(answer, dict):
        return f"returns {type_name(answer)}; cost_matrix returns {wanted}"
    if list(answer) != list(REQUEST_TYPES):
        return "returns the request types in another order: the keys go V, P, M"
    rows = (list_of("cost_matrix", int, wanted)(row) for row in answer.values())
    return next((mistake for mistake in rows if mistake), "")


def grade_cost_matrix(student: Student) -> ExerciseResult:
    other = [*ONE_SERVER, *FIVE_SERVERS, TEN_SERVERS]
    groups = [
        Group("the default fleet", 1.5, [(), (list(DEFAULT_FLEET),)], _judge_matrix),
        Group("fleets with several Music servers", 0.5, [(f,) for f in SEVERAL_MUSIC],
              _judge_matrix),
        Group("fleets with several VP servers", 0.5, [(f,) for f in SEVERAL_VP], _judge_matrix),
        Group("one server, five and ten servers", 0.5, [(f,) for f in other], _judge_matrix),
        Group("fleets given as tuples", 0.5, [(list(DEFAULT_FLEET),), (SEVERAL_MUSIC[2],),
              (ONE_SERVER[1],)], _judge_matrix, shapes=[("tuple",)] * 3),
        returns_group(0.5, "returns a dict of lists of ints", _matrix_types),
        unchanged_group(0.5, "leaves the caller's fleet unchanged"),
        Group("invalid fleets", 0.5, [(["VP", "X"],), ([],), (["vp", "M"],), (["M", ""],)],
              expect_value_error("a fleet with an unknown kind, or no server,"),
              invalid_inputs=True),
    ]  # fmt: skip
    return grade_exercise(
        LESSON, "cost_matrix", student, groups, _diagnose_matrix, arguments=("fleet",)
    )


EXERCISES = [
    Exercise(LESSON, "processing_time", 5, grade_processing_time),
    Exercise(LESSON, "cost_matrix", 5, grade_cost_matrix),
]
