"""Hidden tests of lesson 4 (the wire protocol): ``parse_request``, 10 points.

All 27 valid messages give the right type and an ``int`` length (4). Invalid messages raise
``ProtocolError`` or another ``ValueError``: a wrong size, empty included (2); an unknown type,
lowercase included (2); a length that is not a digit 1-9, including the bytes just outside
``'1'..'9'`` that character-code arithmetic lets through (1.5); a ``str`` instead of bytes
(0.5).
"""

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden.common import (
    RIGHT,
    Answer,
    Args,
    Group,
    Outcome,
    call_failure,
    expect_value_error,
    grade_exercise,
    is_index,
    wrong,
)
from minilb.costs import REQUEST_TYPES
from minilb.protocol import WIRE_LENGTHS

LESSON = "04_sockets_and_forking"


def wire(data: bytes) -> dict[str, str]:
    """How bytes cross the pipe to the student's process (see ``autograder.contract``)."""
    return {"__bytes__": data.decode("latin-1")}


def _judge_valid(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    message = args[0]["__bytes__"]
    if not isinstance(answer, list) or len(answer) != 2:
        return wrong("should return a Request: a pair (type, length)")
    request_type, length = answer
    if request_type != message[0]:
        return wrong("wrong request type")
    if length == ord(message[1]):
        return wrong("the length is the digit's character code: convert the digit with int()")
    if isinstance(length, str):
        return wrong("the length must be an int, not the digit character")
    if not is_index(length) or length != int(message[1]):
        return wrong("wrong length")
    return RIGHT


def _rejects(what: str) -> object:
    return expect_value_error(what, "ProtocolError (a ValueError)", also=("ProtocolError",))


def grade_parse_request(student: Student) -> ExerciseResult:
    valid = [(wire(f"{t}{n}".encode()),) for t in REQUEST_TYPES for n in WIRE_LENGTHS]
    sizes = [b"", b"V", b"M12", b"P3\n", b"V1V1", b"M5 "]
    types = [b"v1", b"m5", b"p9", b"X3", b"13", b" V", b"\x00\x01", b"\xd6\x35"]
    lengths = [b"V0", b"PA", b"M-", b"V\xff", b"P ", b"M:", b"V/", b"Pv"]
    groups = [
        Group("the 27 valid messages", 4, valid, _judge_valid),
        Group("messages of the wrong size (empty too)", 2, [(wire(d),) for d in sizes],
              _rejects("a message that is not exactly 2 bytes"), invalid_inputs=True),
        Group("unknown request types (lowercase too)", 2, [(wire(d),) for d in types],
              _rejects("a type other than V, P or M (lowercase included)"),
              invalid_inputs=True),
        Group("lengths that are not a digit 1-9", 1.5, [(wire(d),) for d in lengths],
              _rejects("a length other than the digits 1-9"), invalid_inputs=True),
        Group("text instead of bytes", 0.5, [("M5",), ("V12",)],
              _rejects("data that is not bytes (the str 'M5')"), invalid_inputs=True),
    ]  # fmt: skip
    return grade_exercise(LESSON, "parse_request", student, groups)


EXERCISES = [Exercise(LESSON, "parse_request", 10, grade_parse_request)]
