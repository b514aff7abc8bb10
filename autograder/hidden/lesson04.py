"""Hidden tests of lesson 4 (sockets and forking): 16 points.

``parse_request`` (3): the 27 valid messages give a ``Request`` of the right type and an ``int``
length (1; a plain tuple, half); invalid messages raise ``ProtocolError`` (a plain
``ValueError``, or one without a message, half) for: a wrong size, empty included
(0.5); an unknown type, every first byte but ``V``, ``P`` and ``M`` (0.5); a length that is
not a digit 1-9, every second byte but ``'1'..'9'`` (0.5); a ``str`` instead of bytes (0.25);
the other bytes-like types, ``bytearray`` and ``memoryview``, are accepted and give a
``(type, int)`` tuple (0.25).

``recv_exactly`` (3): a message arriving one byte at a time (0.75); more bytes coming than
asked for, waiting before the call or arriving after its first byte, the rest left unread (0.5);
a peer that closes early: ``ConnectionError`` with a message (0.5); a silent or slowly dripping
peer: ``TimeoutError`` once the whole read's deadline passes, not before, without burning CPU
time while it waits (0.75); an invalid size (not positive, or not an int: a bool, a float, text)
or timeout: ``ValueError`` (0.25); the caller's socket left as it was given, blocking or
non-blocking (the grader's), whether the call returns or raises ``ConnectionError`` or
``TimeoutError``: its ``O_NONBLOCK`` read in the sandbox's ``/proc/PID/fdinfo``, once the call
has read from it (bytes the grader's peer sent are no longer waiting) (0.25).

``spawn_relay_child`` (3): the server's reply reaches the client, whose connection then ends
although the parent still holds it, and ``on_reply`` sees it (1); the child leaves with
``os._exit(0)`` (0.5); any ``OSError``: a server that hangs up, stays silent or resets the
connection, or an ``on_reply`` that refuses the reply with ``ConnectionError``: exit code 3
within the timeout, the client not answered (0.75); an ``on_reply`` that raises an error other
than ``OSError``: exit code 1, the client not answered (0.25); the parent gets the pid, closes
its copy of the backend socket, keeps the client (0.5).

``reap_children`` (3): finished children's exit codes, a signal's as ``-N`` (1); all of them
collected in one call, no zombie left (0.75); with a child still running it returns at once,
without it (0.75); with no children at all, ``{}`` (0.5). The first two are judged on the
better of two runs, one with no other child (waitpid ends the loop by raising
``ChildProcessError``) and one beside a running child (it ends it by returning pid 0): each
ending has its own group, so a mistake in one costs that group only.

``serve_forking`` (4): 50 clients at once, every reply reaching its own client through its own
backend connection (1.25); bad requests answered with an ``ERR`` line, a silent client dropped
after the timeout (0.5); a server that refuses the connection: its clients get an ``ERR`` line
and the clients after them are served (0.5); children reaped each time round and none left
behind, their exit codes returned (0.75); the parent decides (``route``) before forking, keeps
no copy of a client's or backend socket, and serves clients concurrently (0.75); the count of
connections: 0 returns ``{}`` without accepting anyone, a negative count raises ``ValueError``,
``None`` serves on until the harness shuts the listener down (0.25).

No point rests on what the student's process says about itself (``autograder/TRUST.md``).
Every exercise but the plain ``parse_request`` calls is a scenario the grader plays from its
own side (``lesson04_harness_peers.py``, ``lesson04_harness_serving.py``): it makes the
sockets and passes them into the sandbox, plays the peers itself, reads the sandbox's
children, exit codes and descriptors in its own /proc and times calls on its own clock; in the
sandbox, ``lesson04_harness_call.py`` only calls the student's function and returns its result,
which is checked like any answer. A scenario runs once however many groups judge it
(``InHarness``); one that hit a wall-clock safety net runs once more, alone, before a point is
taken, and the feedback says so. While one exercise runs, the other exercises it calls are the
reference's, so each is graded on its own. A scenario the grader cannot set up (a sandbox
limit) fails the grader, not the student. ``bytearray and memoryview messages`` earns only once
the 27 valid messages do (its answer is shaped in the sandbox).
"""

import ast
import functools
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autograder.contract import (
    Exercise,
    ExerciseResult,
    Student,
    StudentCallError,
    known_exception_names,
)
from autograder.hidden import lesson04_harness_peers as peers
from autograder.hidden import lesson04_harness_serving as serving
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
    is_number,
    is_value_error,
    partly,
    raised_words,
    wrong,
)
from minilb.costs import REQUEST_TYPES
from minilb.protocol import WIRE_LENGTHS

LESSON = "04_sockets_and_forking"
HERE = Path(__file__).resolve().parent
TOOLS_MODULE = "autograder.hidden.lesson04_harness_tools"
CHILD_RETURNED, HUNG = 77, "hung"  # as the harness tools report them
CALL_SECONDS = 9.0  # one scenario, at most

CHILD_RETURNED_NOTE = ("the child returned instead of leaving with os._exit (it would run the "
                       "parent's code a second time)")  # fmt: skip


@functools.cache
def harness(name: str) -> str:
    """The source sent to the sandbox for ``lesson04_harness_<name>.py``: the shared tools,
    then the harness without its import of them (the sandbox cannot import the grader)."""
    source = (HERE / f"lesson04_harness_{name}.py").read_text()
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module == TOOLS_MODULE:
            end = node.end_lineno or node.lineno
            lines[node.lineno - 1 : end] = [""] * (end - node.lineno + 1)
    return (HERE / "lesson04_harness_tools.py").read_text() + "\n" + "".join(lines)


EITHER_ENDING = "either ending"  # a reap scenario played alone and beside a running child


def _reap(student: Student, source: str, exits: list[int], running: bool | str) -> dict:
    """``peers.reap``; with ``EITHER_ENDING`` twice, both answers kept: with no other child
    (the student's loop ends when waitpid raises ChildProcessError) and beside a running one
    (it ends when waitpid returns pid 0)."""
    if running != EITHER_ENDING:
        return peers.reap(student, source, exits, running)
    endings = [peers.reap(student, source, exits, one_running) for one_running in (False, True)]
    return {"endings": endings, "safety_net": any(seen.get("safety_net") for seen in endings)}


SCENARIOS: dict[str, Callable[..., dict]] = {
    "recv": peers.recv, "relay": peers.relay, "reap": _reap, "serve": serving.serve,
}  # fmt: skip
RERUN_NOTE = "seen again when that scenario was run a second time, alone"


def _bytes_args(args: tuple) -> list:
    return [arg["__bytes__"].encode("latin-1") if isinstance(arg, dict) and "__bytes__" in arg
            else arg for arg in args]  # fmt: skip


class InHarness:
    """A ``Student`` whose calls are lesson-4 scenarios that the grader plays from its own side
    (``lesson04_harness_peers``); each runs once however many groups judge what it saw, and
    once more, alone, when it hit a wall-clock safety net."""

    def __init__(self, student: Student, name: str) -> None:
        self.student, self.name, self.source = student, name, harness("call")
        self.seen: dict[str, Any] = {}

    def has(self, function: str) -> bool:
        return self.student.has(function)

    def _play(self, function: str, args: tuple) -> Any:
        if self.name == "bytes":
            return self.student.call(function, "bytes-like", *_bytes_args(args),
                                     timeout=CALL_SECONDS, harness=self.source)  # fmt: skip
        return SCENARIOS[self.name](self.student, self.source, *_bytes_args(args))

    def call(
        self, function: str, *args: Any, timeout: float = 5.0, harness: str | None = None
    ) -> Any:
        key = repr((function, args))
        if key not in self.seen:
            try:
                seen = self._play(function, args)
                if isinstance(seen, dict) and seen.get("safety_net"):
                    seen = {**self._play(function, args), "rerun": True}
                self.seen[key] = seen
            except StudentCallError as error:
                self.seen[key] = error
            except OSError as error:  # the grader's own sockets: not the student's doing
                raise RuntimeError(f"the {function} scenario failed: {error}") from None
        answer = self.seen[key]
        if isinstance(answer, StudentCallError):
            if answer.exc_type == "HarnessFailure":  # not the student's doing: says grade_lesson
                raise RuntimeError(f"the {function} harness failed: {answer.message}")
            raise answer
        return answer


def _names(seen: dict) -> list[str]:
    """The names of the exception a harness reported (its class first), [] if none."""
    return known_exception_names(seen.get("raised"))  # never a name the student chose


def _failure(answer: Answer) -> str:
    """Why a harness answer cannot be judged ("" when it can): the call failed or was garbled."""
    if isinstance(answer, StudentCallError):
        return call_failure(answer)
    return "" if isinstance(answer, dict) else "the call's answer was garbled"


TAMPERED = ("the children the grader asked the sandbox for were not there to reap (was os.fork, "
            "os._exit or os.kill replaced?)")  # fmt: skip


def judged(judge: Callable[[Args, dict], Outcome]) -> Callable[[Args, Answer], Outcome]:
    """``judge`` sees only scenarios the grader saw through; any other answer is wrong."""

    def check(args: Args, answer: Answer) -> Outcome:
        failure = _failure(answer)
        if failure:
            return wrong(failure)
        if answer.get("tampered"):
            return wrong(TAMPERED)
        outcome = judge(args, answer)
        if outcome.mistake and answer.get("rerun"):
            return Outcome(outcome.credit, f"{outcome.mistake} ({RERUN_NOTE})")
        return outcome

    return check


def wire(data: bytes) -> dict[str, str]:
    """How bytes cross the pipe to the student's process (see ``autograder.contract``)."""
    return {"__bytes__": data.decode("latin-1")}


# --- parse_request ------------------------------------------------------------------------------

VALID_MESSAGES, BYTES_LIKE = "the 27 valid messages", "bytearray and memoryview messages"


# Sent with each valid message's call: JSON carries a Request and a plain tuple alike, so the
# sandbox says which it was (a class named Request with the fields type and length: the API's).
RETURNED_TYPE_HARNESS = """
def run(function, *args):
    result = function(*args)
    kind = type(result)
    named = kind.__name__ == "Request" and getattr(kind, "_fields", None) == ("type", "length")
    return {"result": result, "request": named is True}
"""


class ReportsRequest:
    """A ``Student`` whose ``parse_request`` answers come as ``{"result": ..., "request":
    bool}`` from ``RETURNED_TYPE_HARNESS``."""

    def __init__(self, student: Student) -> None:
        self.student = student

    def has(self, function: str) -> bool:
        return self.student.has(function)

    def call(self, function: str, *args: Any, timeout: float = 5.0, harness: str | None = None
             ) -> Any:  # fmt: skip
        return self.student.call(function, *args, timeout=timeout, harness=RETURNED_TYPE_HARNESS)


def _judge_valid(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if not isinstance(answer, dict) or set(answer) != {"result", "request"}:
        return wrong("the call's answer was garbled")
    outcome = _judge_valid_pair(args, answer["result"])
    if outcome == RIGHT and answer["request"] is not True:
        return partly("returns a plain tuple: return a Request (from minilb.costs), "
                      "Request(type, length)")  # fmt: skip
    return outcome


def _judge_valid_pair(args: Args, answer: Answer) -> Outcome:
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


def _judge_bytes_like(args: Args, answer: Answer) -> Outcome:
    shape, data = args[0], args[1]["__bytes__"]
    if is_value_error(answer, also=("ProtocolError",)):
        return wrong(f"rejected a {shape}: accept any bytes-like data (bytes, bytearray, "
                     "memoryview)")  # fmt: skip
    if isinstance(answer, StudentCallError) and answer.exc_type in ("AttributeError", "TypeError"):
        return wrong(f"failed on a {shape} ({answer.exc_type}): index the bytes, as for bytes")
    failure = _failure(answer)
    if failure:
        return wrong(failure)
    if answer.get("type") != data[0] or answer.get("length") != int(data[1]):
        if answer.get("length_kind") != "int":
            return wrong(f"from a {shape}, the length must be an int")
        return wrong(f"wrong Request from a {shape}")
    if answer.get("tuple") is not True:
        return wrong("should return a Request, a (type, length) tuple")
    return RIGHT


def _rejects(what: str) -> Callable[[Args, Answer], Outcome]:
    """ProtocolError, as the API says (``serve_forking`` catches it); a plain ValueError is
    half right: ``autograder.contract`` believes the name only with ValueError among its bases."""
    error = "ProtocolError (a ValueError)"
    judge = expect_value_error(what, error, also=("ProtocolError",))

    def check(args: Args, answer: Answer) -> Outcome:
        outcome = judge(args, answer)
        if outcome.credit > 0 and "ProtocolError" not in {answer.exc_type, *answer.exc_bases}:
            return partly(f"{what} should raise {error}, not {raised_words(answer)}")
        return outcome

    return check


def grade_parse_request(student: Student) -> ExerciseResult:
    valid = [(wire(f"{t}{n}".encode()),) for t in REQUEST_TYPES for n in WIRE_LENGTHS]
    sizes = [b"", b"V", b"M12", b"P3\n", b"V1V1", b"M5 "]
    # Every first byte but V, P and M, and every second byte but the digits 1-9 (issue 17).
    types = [b"v1", b"m5", b"p9", b"13", b" V", b"\x00\x01"] + [
        bytes([first, ord("5")]) for first in range(256) if first not in b"VPM"]
    lengths = [b"PA", b"M-", b"Pv"] + [
        bytes([ord(REQUEST_TYPES[second % 3]), second]) for second in range(256)
        if second not in b"123456789"]  # fmt: skip
    bytes_like = [(shape, wire(data)) for shape in ("bytearray", "memoryview")
                  for data in (b"M5", b"V1", b"P9")]  # fmt: skip
    groups = [
        Group(VALID_MESSAGES, 1, valid, _judge_valid),
        Group("messages of the wrong size (empty too)", 0.5, [(wire(d),) for d in sizes],
              _rejects("a message that is not exactly 2 bytes"), invalid_inputs=True),
        Group("unknown request types (lowercase too)", 0.5, [(wire(d),) for d in types],
              _rejects("a type other than V, P or M (lowercase included)"),
              invalid_inputs=True),
        Group("lengths that are not a digit 1-9", 0.5, [(wire(d),) for d in lengths],
              _rejects("a length other than the digits 1-9"), invalid_inputs=True),
        Group("text instead of bytes", 0.25, [("M5",), ("V12",)],
              _rejects("data that is not bytes (the str 'M5')"), invalid_inputs=True),
    ]  # fmt: skip
    plain = grade_exercise(LESSON, "parse_request", ReportsRequest(student), groups)
    if not student.has("parse_request"):
        return plain
    shaped = grade_exercise(
        LESSON,
        "parse_request",
        InHarness(student, "bytes"),
        [Group(BYTES_LIKE, 0.25, bytes_like, _judge_bytes_like)],
    )
    if plain.feedback == ["not implemented yet (it raises NotImplementedError)"]:
        shaped.feedback = []
    elif shaped.score and any(line.startswith(VALID_MESSAGES) for line in plain.feedback):
        shaped.score = 0.0  # shaped in the sandbox: it earns once plain answers earned
        shaped.feedback = [f"{BYTES_LIKE} (-0.25): earns points only once the 27 valid "
                           "messages are right"]  # fmt: skip
    return ExerciseResult(
        LESSON,
        "parse_request",
        plain.score + shaped.score,
        plain.max_score + shaped.max_score,
        plain.feedback + shaped.feedback,
    )


# --- recv_exactly -------------------------------------------------------------------------------


def _judge_pieces(args: Args, seen: dict) -> Outcome:
    data = args[1]["__bytes__"]
    got = seen.get("returned")
    if got == data:
        return RIGHT
    if isinstance(got, str) and data.startswith(got):
        return wrong("recv was called once instead of looping until all bytes arrived")
    names = _names(seen)
    if "TimeoutError" in names:
        return wrong("timed out although every byte arrived in time")
    if names:
        return wrong(f"raised {names[0]} on a message arriving in pieces")
    if seen.get("never_returned"):
        return wrong("never returned, although every byte arrived")
    return wrong("returned other bytes than the peer sent")


def _judge_burst(args: Args, seen: dict) -> Outcome:
    data, size = args[1]["__bytes__"], args[2]
    got = seen.get("returned")
    if got == data[:size] and seen.get("unread") == data[size:]:
        return RIGHT
    if got == data[:size] or (isinstance(got, str) and len(got) > size):
        return wrong("read more than size bytes: the bytes after the message were lost (ask recv "
                     "only for the bytes still missing)")  # fmt: skip
    return wrong("did not return exactly the first size bytes")


def _judge_closed(args: Args, seen: dict) -> Outcome:
    names = _names(seen)
    if "ConnectionError" in names and seen.get("message_nonempty") is False:
        return partly("the ConnectionError says nothing about what was wrong: say after how "
                      "many bytes the peer closed")  # fmt: skip
    if "ConnectionError" in names:
        return RIGHT
    if seen.get("never_returned"):
        return wrong("an endless loop once the peer closed: at the end of the stream recv "
                     "returns empty bytes; raise ConnectionError then")  # fmt: skip
    if isinstance(seen.get("returned"), str):
        return wrong("returned a short read when the peer closed early: raise ConnectionError")
    if "TimeoutError" in names:
        return wrong("a closed connection was taken for a slow peer (TimeoutError): recv returns "
                     "empty bytes when the peer closes; raise ConnectionError then")  # fmt: skip
    what = f"raise {names[0]}" if names else "return that"
    return wrong(f"a peer that closed early should raise ConnectionError, not {what}")


def _judge_silent(args: Args, seen: dict) -> Outcome:
    data, timeout = args[1]["__bytes__"], args[3]
    names, seconds = _names(seen), seen.get("seconds")
    if seen.get("blocked"):
        return wrong("no timeout: a silent peer blocked the call")
    if "TimeoutError" in names and is_number(seconds):
        if seconds < 0.9 * timeout:
            return wrong("gave up before the timeout")
        if seen.get("busy"):
            return wrong("busy-waited on a silent peer, burning CPU time: let recv wait with a "
                         "timeout instead of polling")  # fmt: skip
        return RIGHT
    if seen.get("returned") == data:
        return wrong(
            "the timeout restarts at every recv: a peer that sends a byte now and "
            "then can hold the call for ever (use one deadline for the whole read)"
        )
    if isinstance(seen.get("returned"), str):
        return wrong("returned a short read at the timeout: raise TimeoutError")
    return wrong(f"a silent peer should raise TimeoutError, not {names[0] if names else 'return'}")


def _judge_invalid(args: Args, seen: dict) -> Outcome:
    size = args[2]
    if "ValueError" not in _names(seen):
        if type(size) is not int:
            return wrong("a size that is not an int (a bool, a float or text) should raise "
                         "ValueError")  # fmt: skip
        return wrong("an invalid size or timeout should raise ValueError")
    if seen.get("valid_read") != args[1]["__bytes__"]:
        return wrong("earns points only once valid inputs get an answer")
    return RIGHT


STATE_FIX = ("restore the socket's timeout before returning: save sock.gettimeout() and call "
             "sock.settimeout(old) in a finally")  # fmt: skip


def _judge_socket_state(args: Args, seen: dict) -> Outcome:
    """What the grader read in the sandbox's /proc: the descriptor's O_NONBLOCK after the call."""
    given = args[4] if len(args) > 4 else "blocking"
    after = seen.get("blocking_after")
    if after is None:
        return wrong("the caller's socket was closed: leave it open, the caller reads on from it")
    if not seen.get("took_bytes"):  # a function that never touches the socket leaves it as is
        return wrong("earns points only once it reads the peer's bytes from the socket")
    if after == (given == "blocking"):
        return RIGHT
    came_back = "non-blocking (a timeout left on it)" if given == "blocking" else "blocking"
    return wrong(f"a {given} socket came back {came_back}: {STATE_FIX}")


def grade_recv_exactly(student: Student) -> ExerciseResult:
    message = wire(b"M5P3V9")
    # A return, a ConnectionError and a TimeoutError, on a socket given blocking (the scenarios
    # of the groups below, run once for both) and on one the grader made non-blocking.
    reads = [("drip", wire(b"M5"), 2, 2.0), ("closes", wire(b"V4"), 2, 1.0),
             ("silent", wire(b"P6"), 2, 0.5)]  # fmt: skip
    state = reads + [(*read, "non-blocking") for read in reads]
    groups = [
        Group("a message arriving in pieces", 0.75, [("drip", wire(b"M5"), 2, 2.0),
              ("drip", message, 6, 2.0)], judged(_judge_pieces)),
        Group("more bytes coming than asked for", 0.5, [("burst", message, 2, 2.0),
              ("burst", wire(b"P7\x00"), 1, 2.0), ("pieces", message, 2, 2.0)],
              judged(_judge_burst)),
        Group("a peer that closes early", 0.5, [("closes", wire(b"V4"), 2, 1.0),
              ("closes", wire(b""), 3, 1.0)], judged(_judge_closed)),
        Group("a silent or slowly dripping peer", 0.75, [("silent", wire(b"P6"), 2, 0.5),
              ("slow-drip", wire(b"V1P2M3V4P5"), 10, 1.0)], judged(_judge_silent)),
        Group("an invalid size or timeout", 0.25, [("invalid", wire(b"P4"), size, timeout)
              for size, timeout in ((0, 1.0), (-2, 1.0), (True, 1.0), ("2", 1.0), (2.5, 1.0),
                                    (2, 0), (2, -1.0))],
              judged(_judge_invalid)),
        Group("leaves the socket's timeout and blocking mode as it found them", 0.25, state,
              judged(_judge_socket_state)),
    ]  # fmt: skip
    return grade_exercise(LESSON, "recv_exactly", InHarness(student, "recv"), groups,
                          timeout=CALL_SECONDS)  # fmt: skip


# --- spawn_relay_child --------------------------------------------------------------------------


def _judge_relayed(args: Args, seen: dict) -> Outcome:
    reply = args[1]["__bytes__"]
    if not seen.get("pid"):
        return wrong("did not return the child's pid (did it fork?)")
    if seen.get("reply") != reply:
        if seen.get("code") == CHILD_RETURNED:
            return wrong(CHILD_RETURNED_NOTE)
        return wrong("the client got no reply" if not seen.get("reply") else
                     "the client got something else than the server's reply")  # fmt: skip
    if not seen.get("ended"):
        return wrong("the client never saw the end of the connection: shut the client socket "
                     "down in the child (the parent still holds a copy, so close alone does "
                     "not end it)")  # fmt: skip
    if seen.get("on_reply") != reply:
        return wrong("on_reply was not called with the reply")
    return RIGHT


def _judge_child_exit(args: Args, seen: dict) -> Outcome:
    code, server = seen.get("code"), args[0]
    if code == CHILD_RETURNED:
        return wrong(CHILD_RETURNED_NOTE)
    if not seen.get("pid"):
        return wrong("did not return the child's pid (did it fork?)")
    if server == "answers":
        if code == HUNG:
            return wrong("the child did not end after relaying the reply")
        return RIGHT if code == 0 else wrong("after a relay the child should exit with code 0")
    if code == HUNG:
        return wrong(
            "the child ignored the timeout: a silent server kept it waiting"
            if server == "silent"
            else "the child did not end when the server hung up"
        )
    if server == "hook-refuses" and seen.get("reply"):
        return wrong("the client got the reply although on_reply refused it (ConnectionError)")
    if code != 3 and server == "hook-refuses":
        return wrong("when on_reply refuses the reply (it raises ConnectionError, an OSError) the "
                     "child should exit with code 3 (EXIT_BACKEND_FAILED)")  # fmt: skip
    if code != 3:
        return wrong("when the server fails the child should exit with code 3 "
                     "(EXIT_BACKEND_FAILED)")  # fmt: skip
    return RIGHT


def _judge_other_error(args: Args, seen: dict) -> Outcome:
    code = seen.get("code")
    if code == CHILD_RETURNED:
        return wrong(CHILD_RETURNED_NOTE)
    if not seen.get("pid"):
        return wrong("did not return the child's pid (did it fork?)")
    if seen.get("reply"):
        return wrong("the client got the reply although on_reply raised an error")
    if code == HUNG:
        return wrong("the child did not end when on_reply raised an error")
    if code == 3:
        return wrong("exit code 3 when on_reply raised an error that is not an OSError: only a "
                     "failing server (an OSError) means 3; any other error means 1")  # fmt: skip
    if code != 1:
        return wrong("when anything other than the server fails (an error that is not an "
                     "OSError) the child should exit with code 1")  # fmt: skip
    return RIGHT


def _judge_parent_sockets(args: Args, seen: dict) -> Outcome:
    if not seen.get("pid"):
        return wrong("did not return the child's pid (did it fork?)")
    if seen.get("backend_open"):
        return wrong("the parent kept its copy of the backend socket open (fd leaked)")
    if not seen.get("client_open"):
        return wrong("the parent closed the client socket: its caller still needs it")
    if seen.get("new_sockets"):
        return wrong("the parent kept new sockets open (fd leaked)")
    return RIGHT


def grade_spawn_relay_child(student: Student) -> ExerciseResult:
    answers = ("answers", wire(b"P7"), 2.0)
    failing = [("closes", wire(b""), 2.0), ("silent", wire(b""), 0.5),
               ("resets", wire(b""), 2.0), ("hook-refuses", wire(b"V3"), 2.0)]
    groups = [
        Group("the server's reply relayed to the client", 1, [answers], judged(_judge_relayed)),
        Group("the child leaves with os._exit", 0.5, [answers], judged(_judge_child_exit)),
        Group("a server that fails: exit code 3", 0.75, failing, judged(_judge_child_exit)),
        Group(
            "another error in the child: exit code 1",
            0.25,
            [("hook-fails", wire(b"M4"), 1.0)],
            judged(_judge_other_error),
        ),
        Group("the parent's sockets", 0.5, [answers], judged(_judge_parent_sockets)),
    ]
    return grade_exercise(LESSON, "spawn_relay_child", InHarness(student, "relay"), groups,
                          timeout=CALL_SECONDS)  # fmt: skip


# --- reap_children ------------------------------------------------------------------------------


def _raw_status(code: int) -> int:
    return code << 8 if code >= 0 else -code


def _raised_note(seen: dict) -> str:
    names = _names(seen)
    if "ChildProcessError" in names:
        return ("raised ChildProcessError: waitpid raises it when no children are left; catch "
                "it and return what was collected")  # fmt: skip
    return f"raised {names[0]}" if names else ""


def _judge_codes(args: Args, seen: dict) -> Outcome:
    exits, codes = args[0], seen.get("codes")
    if _raised_note(seen):
        return wrong(_raised_note(seen))
    if seen.get("kind") != "dict" or not isinstance(codes, list) or len(codes) != len(exits):
        return wrong("should return a dict of pid: exit code")
    pairs = [(got, code) for got, code in zip(codes, exits, strict=True) if got is not None]
    if not pairs:
        return wrong("no finished child was collected")
    if not all(is_index(got) for got, _ in pairs):  # not True for 1, nor NaN
        return wrong("exit codes must be ints")
    if all(got == code for got, code in pairs):
        return RIGHT
    if all(got == _raw_status(code) for got, code in pairs if code >= 0):
        return wrong("exit codes not collected (raw wait status?): use os.waitstatus_to_exitcode")
    if all(got == code for got, code in pairs if code >= 0):
        return wrong("a child killed by signal N should have the code -N "
                     "(os.waitstatus_to_exitcode)")  # fmt: skip
    return wrong("wrong exit codes")


def _judge_all_collected(args: Args, seen: dict) -> Outcome:
    if _raised_note(seen):
        return wrong(_raised_note(seen))
    left, codes = seen.get("left"), seen.get("codes") or []
    if is_index(left) and left > 0:
        if sum(code is not None for code in codes) == 1:
            return wrong("only one child collected per call: loop until waitpid reports no "
                         "more finished children")  # fmt: skip
        return wrong("zombies left: finished children it did not collect")
    if None in codes:
        return wrong("children it collected are missing from the result")
    if seen.get("others"):
        return wrong("the result holds pids that are not its children")
    return RIGHT


def _judge_running(args: Args, seen: dict) -> Outcome:
    if seen.get("blocked"):
        return wrong("waitpid blocked while a child was still running (use os.WNOHANG)")
    if _raised_note(seen):
        return wrong(_raised_note(seen))
    if seen.get("running_reported"):
        return wrong("reported a child that was still running (waitpid returns (0, 0) while "
                     "children run: stop there)")  # fmt: skip
    codes = seen.get("codes")
    if isinstance(codes, list) and not all(is_index(code) for code in codes if code is not None):
        return wrong("exit codes must be ints")
    if codes != args[0]:
        return wrong("did not collect every finished child while another was still running")
    return RIGHT


def _judge_no_children(args: Args, seen: dict) -> Outcome:
    if "ChildProcessError" in _names(seen):
        return wrong("raised ChildProcessError when there were no children: catch it and "
                     "return an empty dict")  # fmt: skip
    if _raised_note(seen):
        return wrong(_raised_note(seen))
    if seen.get("kind") != "dict" or seen.get("others"):
        return wrong("with no children it should return an empty dict")
    return RIGHT


def on_either_ending(judge: Callable[[Args, dict], Outcome]) -> Callable[[Args, Answer], Outcome]:
    """For a group about what is collected, not how the loop ends: the better of the two runs
    of ``EITHER_ENDING``. Each ending has a group of its own ("no children at all", "a child
    still running"), so a mistake in one is charged there only, not here too."""
    check = judged(judge)

    def either(args: Args, answer: Answer) -> Outcome:
        if not (isinstance(answer, dict) and isinstance(answer.get("endings"), list)):
            return check(args, answer)
        rerun = {"rerun": True} if answer.get("rerun") else {}
        outcomes = [check(args, {**seen, **rerun}) for seen in answer["endings"]]
        return max(outcomes, key=lambda outcome: outcome.credit)  # the first, if as good

    return either


def grade_reap_children(student: Student) -> ExerciseResult:
    finished = [([0, 3, 1, 42], EITHER_ENDING), ([7, -9], EITHER_ENDING)]
    groups = [
        Group("exit codes of finished children", 1, finished, on_either_ending(_judge_codes)),
        Group(
            "every finished child collected (no zombies)",
            0.75,
            finished,
            on_either_ending(_judge_all_collected),
        ),
        Group("a child still running", 0.75, [([2, 0], True)], judged(_judge_running)),
        Group("no children at all", 0.5, [([], False)], judged(_judge_no_children)),
    ]
    return grade_exercise(LESSON, "reap_children", InHarness(student, "reap"), groups,
                          timeout=CALL_SECONDS)  # fmt: skip


# --- serve_forking ------------------------------------------------------------------------------

BAD = ["X1", "m5", "M0", "V:"]
FAIL = "P8"  # the echo server hangs up on this one: its child exits with 3


def _many_requests() -> list[str]:
    good = [f"{t}{n}" for t in REQUEST_TYPES for n in WIRE_LENGTHS if f"{t}{n}" != FAIL]
    requests = good + good[:17] + [FAIL] * 3 + BAD
    random.Random(4).shuffle(requests)
    return requests  # 50


# (requests, the echo server hangs up on these, hold, timeout): the timeout is also how long
# a child waits for the echo server, so it is generous where the server must answer.
MANY = (_many_requests(), [wire(FAIL.encode())], 0, 3.0)
SILENT = (["V1", "~M5", "P2", "M3"], [], 0, 1.0)
CONCURRENT = (["V2", "M2"], [], 2, 3.0)
ONE_BY_ONE = (["V1", "P2", "M3", "V4", "P5", "M6"], [], 0, 3.0, True)
# (..., one_by_one, connections ("all": one per request), requests routed to a refusing server)
REFUSED = (["V9", "M1", "P9", "M1", "M9"], [], 0, 3.0, True, "all", ["M1"])
NO_CONNECTIONS = (["V1"], [], 0, 1.0, False, 0)
NEGATIVE_CONNECTIONS = (["V1"], [], 0, 1.0, False, -1)
FOR_EVER = (["V9", "P8", "M9"], [], 0, 3.0, False, None)


def _raised_while_serving(seen: dict) -> str:
    """Why serving stopped early ("" if it did not): it never returned, or it raised."""
    if seen.get("stuck"):  # then the harness shut the listener to stop it
        return "did not return after its last connection"
    names = _names(seen)
    if not names:
        return ""
    return f"raised {names[0]} while serving: the server must never die on a client"


def _answers(requests: list[str], seen: dict) -> list[tuple[str, str, bool]]:
    """(request, what its client got, whether its connection ended) for every client."""
    answers = seen.get("answers")
    if not isinstance(answers, list) or len(answers) != len(requests):
        return [(request, "", False) for request in requests]
    return [(request, str(answer[0]), answer[1] is True)
            if isinstance(answer, list) and len(answer) == 2 else (request, "", False)
            for request, answer in zip(requests, answers, strict=True)]  # fmt: skip


def _wrong_replies(requests: list[str], seen: dict) -> str:
    """What went wrong with the replies to valid requests ("" if nothing)."""
    asked = [
        (request, (got, ended))
        for request, got, ended in _answers(requests, seen)
        if request not in BAD and request != FAIL and not request.startswith("~")
    ]
    valid = {request for request, _ in asked}
    if any(answer[0] != request and answer[0] in valid for request, answer in asked):
        return "a reply reached the wrong client"
    if any(answer[0] != request for request, answer in asked):
        return "some clients did not get their reply"
    if not all(answer[1] for _, answer in asked):
        return "some clients never saw the end of their connection"
    return ""


def _judge_replies(args: Args, seen: dict) -> Outcome:
    if seen.get("most_per_connection", 0) > 1:
        return wrong("one backend socket shared by all children: reply reached the wrong client")
    mistake = _raised_while_serving(seen) or _wrong_replies(args[0], seen)
    return wrong(mistake) if mistake else RIGHT


def _judge_bad_and_silent(args: Args, seen: dict) -> Outcome:
    requests = args[0]
    if _raised_while_serving(seen):
        return wrong(_raised_while_serving(seen))
    for request, got, ended in _answers(requests, seen):
        if request in BAD and not (got.startswith("ERR ") and got.endswith("\n")):
            return wrong("bad requests must be answered with an ERR line")
        if request.startswith("~") and not ended:
            return wrong("no timeout on a client's request: a silent client stalled the server")
    mistake = _wrong_replies(requests, seen)
    return wrong(mistake) if mistake else RIGHT


def _judge_children(args: Args, seen: dict) -> Outcome:
    requests = args[0]
    mistakes = []
    if seen.get("zombies"):
        mistakes.append("zombies left: finished children nobody collected")
    if seen.get("unreaped_rounds"):
        mistakes.append("zombies piled up while serving: reap finished children each time round")
    if seen.get("running") or seen.get("hung"):
        mistakes.append("returned while children were still running: wait for every child "
                        "before returning")  # fmt: skip
    returned = seen.get("returned")
    expected = Counter(3 if request == FAIL else 0 for request in requests if request not in BAD)
    if not isinstance(returned, list):
        mistakes.append("should return a dict of pid: exit code")
    elif not all(isinstance(pair, list) and len(pair) == 2 and is_index(pair[1])
                 for pair in returned):  # fmt: skip
        mistakes.append("exit codes must be ints")
    else:
        codes = Counter(pair[1] for pair in returned)
        if codes[_raw_status(3)]:
            mistakes.append("exit codes not collected (raw wait status?)")
        elif codes.total() != expected.total():
            mistakes.append("did not return an exit code for every child it started")
        elif codes != expected:
            mistakes.append("wrong exit codes")
    if not mistakes and _raised_while_serving(seen):
        mistakes.append(_raised_while_serving(seen))
    return wrong("; ".join(mistakes[:2])) if mistakes else RIGHT


def _judge_parent(args: Args, seen: dict) -> Outcome:
    requests, hold = args[0], args[2]
    if hold:
        if seen.get("most_waiting", 0) < hold:
            return wrong("clients were served one at a time: the parent waited for each child "
                         "(waitpid blocked; use os.WNOHANG)")  # fmt: skip
        return RIGHT
    valid = sum(request not in BAD for request in requests)
    if _raised_while_serving(seen):
        return wrong(_raised_while_serving(seen))
    if seen.get("route_calls") == 0 and not _wrong_replies(requests, seen):
        return wrong("the decision was made in the child: the parent's state never changed "
                     "(lost update)")  # fmt: skip
    if seen.get("held_clients"):
        return wrong("the parent kept the client socket open (fd leaked)")
    if seen.get("held_backends"):
        return wrong("the parent kept its backend socket open (fd leaked)")
    if seen.get("route_calls") != valid:
        return wrong("route should be called once per valid request, in the parent")
    return RIGHT


def _judge_refused(args: Args, seen: dict) -> Outcome:
    requests, refused = args[0], args[6]
    if seen.get("stuck"):
        return wrong("did not return after its last connection")
    answers = _answers(requests, seen)
    first = next(number for number, request in enumerate(requests) if request in refused)
    names = _names(seen)
    if names:
        return wrong(f"raised {names[0]} when a server refused the connection: answer that "
                     "client with an ERR line and go on serving")  # fmt: skip
    err = [got.startswith("ERR ") and got.endswith("\n") and ended for _, got, ended in answers]
    served = [err[number] if request in refused else (got == request and ended)
              for number, (request, got, ended) in enumerate(answers)]  # fmt: skip
    if all(served[: first + 1]) and not any(got for _, got, _ in answers[first + 1 :]):
        return wrong("stopped serving after a server refused the connection: answer that "
                     "client with an ERR line, then go on to the next client")  # fmt: skip
    if not all(err[number] for number, request in enumerate(requests) if request in refused):
        return wrong("a client whose server refused the connection must get an ERR line")
    if not all(served):
        return wrong("some clients did not get their reply when a server refused a connection")
    return RIGHT


def _judge_connections(args: Args, seen: dict) -> Outcome:
    connections, names = args[5], _names(seen)
    if connections is None:
        if seen.get("early") and not seen.get("stuck"):
            ended = f"raised {names[0]}" if names else "returned"
            return wrong(f"with connections None it should serve for ever, but it {ended} "
                         "before all its clients were served")  # fmt: skip
        mistake = _wrong_replies(args[0], seen)
        return wrong(f"with connections None: {mistake}") if mistake else RIGHT
    if connections < 0:
        if "ValueError" not in names:
            return wrong("a negative count of connections should raise ValueError")
        return RIGHT
    if names:
        return wrong(f"with connections 0 it should serve nobody and return an empty dict, not "
                     f"raise {names[0]}")  # fmt: skip
    if seen.get("accepts"):
        return wrong("with connections 0 it accepted a client: it should return an empty dict "
                     "at once")  # fmt: skip
    if seen.get("returned") != []:
        return wrong("with connections 0 it should return an empty dict")
    return RIGHT


def grade_serve_forking(student: Student) -> ExerciseResult:
    groups = [
        Group("many clients at once", 1.25, [MANY], judged(_judge_replies)),
        Group("bad and silent requests", 0.5, [MANY, SILENT], judged(_judge_bad_and_silent)),
        Group("a server that refuses the connection", 0.5, [REFUSED], judged(_judge_refused)),
        Group("children: none left behind, exit codes returned", 0.75, [MANY, ONE_BY_ONE],
              judged(_judge_children)),
        Group("the parent's part: decide, close its copies, serve concurrently", 0.75,
              [MANY, ONE_BY_ONE, CONCURRENT], judged(_judge_parent)),
        Group("the count of connections: 0, negative, or None (for ever)", 0.25,
              [NO_CONNECTIONS, NEGATIVE_CONNECTIONS, FOR_EVER], judged(_judge_connections)),
    ]  # fmt: skip
    return grade_exercise(LESSON, "serve_forking", InHarness(student, "serve"), groups,
                          timeout=CALL_SECONDS)  # fmt: skip


EXERCISES = [
    Exercise(LESSON, "parse_request", 3, grade_parse_request),
    Exercise(LESSON, "recv_exactly", 3, grade_recv_exactly),
    Exercise(LESSON, "spawn_relay_child", 3, grade_spawn_relay_child),
    Exercise(LESSON, "reap_children", 3, grade_reap_children),
    Exercise(LESSON, "serve_forking", 4, grade_serve_forking),
]
