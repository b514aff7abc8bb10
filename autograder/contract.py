"""The interface between the grading machinery and the hidden tests.

The machinery (sandbox, runner, gradebook) gives each hidden test a ``Student``: a handle on the
functions one submitted notebook defines, running in a sandboxed child process. The hidden tests
(``autograder.rubric`` and ``autograder.hidden``) return an ``ExerciseResult`` per exercise.
Arguments and return values cross the pipe as JSON: tuples arrive as lists, and anything that is
not plain data (an object whose ``==`` is always true, say) is refused by the child.

Data conventions (hidden tests <-> child; the child implements them):

- ``bytes`` cross the pipe as ``{"__bytes__": "<text>"}``, the bytes decoded as latin-1 (one
  character per byte); the child turns such an argument into ``bytes`` before calling
  (``parse_request`` takes bytes), and bytes it returns travel the same way.
- Named tuples (``Request``) and tuples come back as lists: ``["M", 5]``.
- When the student's code raises, the child reports the class name and its bases' names. The
  grader keeps only names from a fixed list (``KNOWN_EXCEPTIONS``: the built-in exceptions, a
  few the course's modules raise, and the kit's own) and never the exception's message: see
  "What the grader believes" below.

What the grader believes about an exception (everything the child says is the student's word:
student code shares its process and can forge any reply):

- It believes a *known* name only as "the student's code raised something it may call X". That
  grants nothing a real ``raise X`` would not, so a forger gains nothing by it. A reported name
  is known when it is on the list and the reported bases hold that class's real bases, roots
  aside (a student class merely *called* ``KeyError``, deriving from ``Exception``, is not one).
- Any other class is "an exception of its own class" (``OWN_CLASS``); its known bases still
  count, so a student's ``class BadLength(ValueError)`` is a ValueError wherever the contract
  asks for one, whatever its (possibly hostile) name.
- Messages, reprs and unknown names are dropped where the reply is read: no student text can
  reach feedback, results.json or grades.csv (the student's arguments, which an exception can
  carry, are hidden inputs).
- Of a message the child answers two questions the grader asks, as booleans: whether it says
  anything (``message_nonempty``), and which of the call's text arguments it contains
  (``message_mentions``, their indices; the arguments are the grader's own inputs). A forged
  answer gains only what a real message saying so would; ``None`` means "not reported", and
  then no point rests on the message.
"""

import builtins
import json
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from minilb.exercises import LESSONS as LESSONS  # the exercise API, defined once
from minilb.exercises import ExerciseNotDone
from minilb.protocol import ProtocolError

CallFailure = Literal["raised", "timeout", "crashed", "missing", "not-plain-data"]

OWN_CLASS = "an exception of its own class"  # how feedback names any exception not known


class HarnessFailure(Exception):
    """Named like the lesson-4 harnesses' own (``lesson04_harness_tools.HarnessFailure``)."""


ROOTS = frozenset({"BaseException", "Exception", "object"})  # every exception's bases


def _hierarchy(classes: Iterable[type]) -> dict[str, frozenset[str]]:
    return {cls.__name__: frozenset(base.__name__ for base in cls.__mro__[1:]) - ROOTS
            for cls in classes}  # fmt: skip


# name -> the names of its bases below the roots: every exception name feedback may show.
KNOWN_EXCEPTIONS = _hierarchy(
    [value for value in vars(builtins).values()
     if isinstance(value, type) and issubclass(value, BaseException)]
    + [socket.gaierror, socket.herror, json.JSONDecodeError]  # the course's modules raise them
    + [ProtocolError, ExerciseNotDone, HarnessFailure]
)  # fmt: skip


def known_bases(names: object) -> tuple[str, ...]:
    """The known exception names among ``names`` (a child's report), in order, at most 20."""
    if not isinstance(names, list | tuple):
        return ()
    known = [name for name in names[:40] if isinstance(name, str) and name in KNOWN_EXCEPTIONS]
    return tuple(dict.fromkeys(known))[:20]


def believed_name(name: object, bases: Sequence[str]) -> str:
    """``name`` when it is known and ``bases`` (known names) hold its real bases, else
    ``OWN_CLASS``: the only words feedback uses for the class of a student's exception."""
    if isinstance(name, str) and name in KNOWN_EXCEPTIONS and KNOWN_EXCEPTIONS[name] <= set(bases):
        return name
    return OWN_CLASS


def known_exception_names(names: object) -> list[str]:
    """A harness's report of an exception (its class's name, then its bases') in words the
    grader may show: the class as ``believed_name`` gives it, then only known base names."""
    if not isinstance(names, list | tuple) or not names:
        return []
    bases = known_bases(list(names[1:]))
    return [believed_name(names[0], bases), *bases]


def cell_error_notes(reports: object) -> list[str]:
    """The child's reports of code cells that raised, in the grader's words (at most 20)."""
    notes = []
    for report in reports[:20] if isinstance(reports, list) else ():
        if not isinstance(report, dict) or type(report.get("cell")) is not int:
            continue
        bases = known_bases(report.get("exc_bases"))
        notes.append(f"code cell {report['cell']} raised "
                     f"{believed_name(report.get('exc_type'), bases)}")  # fmt: skip
    return notes


class StudentCallError(Exception):
    """A call into the student's code did not return plain data.

    ``kind`` says how it failed; for ``raised``, ``exc_type`` is the exception's class name
    when the grader knows it (``"ValueError"``, ``"NotImplementedError"``...), else
    ``OWN_CLASS``, and ``exc_bases`` the known names of its bases. Both are filtered here, so
    no path can carry a student-chosen name. ``message`` is the grader's own text (why a call
    timed out, say); ``from_reply`` never fills it from the child.
    """

    def __init__(
        self,
        kind: CallFailure,
        exc_type: str = "",
        message: str = "",
        exc_bases: tuple[str, ...] = (),
        message_nonempty: bool | None = None,
        message_mentions: tuple[int, ...] = (),
    ) -> None:
        self.kind = kind
        self.message_nonempty = message_nonempty  # None: not reported (see the module's doc)
        self.message_mentions = message_mentions  # indices of the call's arguments it names
        self.exc_bases = known_bases(list(exc_bases))  # known base names, MRO order
        named = exc_type or kind == "raised"  # a raised exception always gets words
        self.exc_type = believed_name(exc_type, self.exc_bases) if named else ""
        self.message = message
        super().__init__(f"{kind}: {self.exc_type}: {message}")

    @classmethod
    def from_reply(cls, kind: CallFailure, reply: dict) -> "StudentCallError":
        """The failure a child reported, keeping only what the grader may believe: known
        exception names and the booleans about the message, never the message (see above)."""
        bases, nonempty = reply.get("exc_bases"), reply.get("message_nonempty")
        mentions = reply.get("message_mentions")
        return cls(kind, str(reply.get("exc_type", ""))[:100] if kind == "raised" else "",
                   exc_bases=tuple(bases) if isinstance(bases, list) else (),
                   message_nonempty=nonempty if type(nonempty) is bool else None,
                   message_mentions=tuple(i for i in mentions[:20] if type(i) is int)
                   if isinstance(mentions, list) else ())  # fmt: skip


class Student(Protocol):
    def has(self, function: str) -> bool:
        """Whether the notebook defines a callable with this name."""

    def call(
        self, function: str, *args: Any, timeout: float = 5.0, harness: str | None = None
    ) -> Any:
        """Call the student's function with plain-data arguments; plain data comes back.

        With ``harness`` (Python source defining ``run(function, *args)``), the child runs
        ``run(student_function, *args)`` instead: for exercises that take sockets, which cannot
        cross the pipe. The harness builds them inside the sandbox and returns plain data.
        """


@dataclass
class ExerciseResult:
    lesson: str
    exercise: str
    score: float
    max_score: float
    feedback: list[str] = field(default_factory=list)  # names mistakes, never hidden data

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass(frozen=True)
class Exercise:
    lesson: str
    name: str
    points: float
    grade: Callable[[Student], ExerciseResult]
