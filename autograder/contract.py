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
- When the student's code raises, ``StudentCallError.exc_type`` is the class name and
  ``exc_bases`` the names of its bases in MRO order (``("ValueError", "Exception", ...)``), so
  a hidden test can accept a subclass of ``ValueError`` that the student defined.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from minilb.exercises import LESSONS as LESSONS  # the exercise API, defined once

CallFailure = Literal["raised", "timeout", "crashed", "missing", "not-plain-data"]


class StudentCallError(Exception):
    """A call into the student's code did not return plain data.

    ``kind`` says how it failed; for ``raised``, ``exc_type`` is the exception's class name
    (``"ValueError"``, ``"NotImplementedError"``...) and ``message`` its text.
    """

    def __init__(
        self,
        kind: CallFailure,
        exc_type: str = "",
        message: str = "",
        exc_bases: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{kind}: {exc_type}: {message}")
        self.kind = kind
        self.exc_type = exc_type
        self.message = message
        self.exc_bases = tuple(exc_bases)  # base class names of exc_type, MRO order


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
