"""Runs inside the sandbox around one call of a student's function (standard library only).

The hidden tests send this file's source as a call's ``harness`` (see ``autograder.contract``);
the file is never mounted in the sandbox, so a student cannot read it. Arguments cross the pipe
as JSON, so two things the grader needs can only be seen in the child:

- the argument types a lesson allows but JSON cannot carry: ``shapes`` (one word per argument,
  see ``SHAPES``) turns lists back into tuples or ``Request`` named tuples before the call;
- whether the function changed its arguments: they are deep-copied before the call and
  compared after it, exact types included, so the grader learns which ones were mutated.

``run(function, shapes, *args)`` answers ``{"result": ..., "mutated": [argument positions]}``;
an exception from the student's function passes through unchanged.
"""

import copy
from collections import namedtuple
from collections.abc import Callable, Sequence

try:  # the lesson's own Request, as students import it
    from minilb.costs import Request
except ImportError:  # pragma: no cover - the sandbox always has the lesson's package
    Request = namedtuple("Request", "type length")


SHAPES = {
    "same": lambda value: value,  # exactly as it crossed the pipe: lists
    "tuple": tuple,  # finish times, a fleet or a single request as a tuple
    "tuples": lambda value: [tuple(item) for item in value],  # requests as plain tuples
    "named": lambda value: [Request(*item) for item in value],  # requests as Request
    "named-tuple": lambda value: tuple(Request(*item) for item in value),
    "request-named": lambda value: Request(*value),  # one request as a Request
}


def same(before: object, after: object) -> bool:
    """Equal values of exactly the same types, compared without calling a student's ``==``."""
    if type(before) is not type(after):
        return False
    if isinstance(before, (list, tuple)):
        return len(before) == len(after) and all(map(same, before, after))
    return before == after


def run(function: Callable, shapes: Sequence[str], *args: object) -> dict:
    padded = [*shapes, *["same"] * (len(args) - len(shapes))]
    shaped = [SHAPES[shape](arg) for shape, arg in zip(padded, args, strict=True)]
    before = copy.deepcopy(shaped)
    result = function(*shaped)
    mutated = [index for index, arg in enumerate(shaped) if not same(before[index], arg)]
    return {"result": result, "mutated": mutated}
