"""The exercise API: which functions each lesson asks the student to write, defined once.

The lessons, the handout, ``minilb check``, the commands that need an exercise (``schedule``,
``demo``...) and the autograder all read this table. ``require_done`` lets a command say plainly
which exercise it still needs, instead of showing a traceback from a stub.
"""

import ast
import inspect
import textwrap
from collections.abc import Callable

LESSONS: dict[str, tuple[str, ...]] = {
    "01_cost_matrix": ("processing_time", "cost_matrix"),
    "02_greedy_balancing": ("makespan", "choose_server", "greedy_assign", "finish_times"),
    "03_optimal_makespan": ("lower_bound", "optimal_makespan"),
    "04_sockets_and_forking": (
        "parse_request", "recv_exactly", "spawn_relay_child", "reap_children", "serve_forking",
    ),
}  # fmt: skip

LESSON_OF: dict[str, str] = {name: lesson for lesson, names in LESSONS.items() for name in names}

# Where the package keeps each lesson's exercises (lesson 4's parse_request is in protocol).
MODULE_OF: dict[str, str] = {
    **dict.fromkeys(LESSONS["01_cost_matrix"], "minilb.costs"),
    **dict.fromkeys(LESSONS["02_greedy_balancing"], "minilb.scheduling"),
    **dict.fromkeys(LESSONS["03_optimal_makespan"], "minilb.optimal"),
    **dict.fromkeys(LESSONS["04_sockets_and_forking"], "minilb.network"),
    "parse_request": "minilb.protocol",
}


def notebook_of(function: str) -> str:
    """The handout notebook in which the student writes ``function``."""
    return f"{LESSON_OF[function]}.ipynb"


class ExerciseNotDone(ValueError):
    """A command needs an exercise the student has not written yet (the CLI prints it as a
    one-line error, like every other bad input)."""

    def __init__(self, function: str, hint: str = "") -> None:
        lesson = LESSON_OF.get(function, "?")
        message = f"exercise not done yet: {function} (lesson {lesson})"
        super().__init__(f"{message}: {hint}" if hint else message)
        self.function = function
        self.hint = hint


def not_done(function: str, hint: str) -> Callable:
    """A stand-in for an exercise that is not written anywhere yet: calling it raises
    ``ExerciseNotDone`` with ``hint`` (which notebook to finish), and ``is_stub`` sees a stub."""
    error = ExerciseNotDone(function, hint)

    def stand_in(*args: object, **kwargs: object) -> object:
        raise ExerciseNotDone(function, hint)

    stand_in.__name__ = stand_in.__qualname__ = function
    stand_in.not_done = error  # type: ignore[attr-defined]
    return stand_in


def is_stub(function: Callable) -> bool:
    """Whether ``function``'s body is still the handout's ``raise NotImplementedError()``
    (or ``function`` is a ``not_done`` stand-in)."""
    if getattr(function, "not_done", None) is not None:
        return True
    try:
        source = textwrap.dedent(inspect.getsource(function))
        return _is_stub_body(ast.parse(source).body[0])
    except (OSError, TypeError, SyntaxError, IndexError):
        return False  # no source to read (a builtin, a lambda in a REPL): assume it is written


def defines_stub(source: str, name: str) -> bool:
    """Whether the code ``source`` (a notebook cell) defines ``name`` with a stub body."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(getattr(node, "name", None) == name and _is_stub_body(node) for node in tree.body)


def _is_stub_body(node: ast.stmt) -> bool:
    statements = [each for each in getattr(node, "body", []) if not _is_docstring(each)]
    return any(_raises_not_implemented(statement) for statement in statements[:1])


def require_done(*functions: Callable) -> None:
    """Raise ``ExerciseNotDone`` naming the first of ``functions`` that is still a stub."""
    for function in functions:
        if is_stub(function):
            raise getattr(function, "not_done", None) or ExerciseNotDone(function.__name__)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _raises_not_implemented(node: ast.stmt) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
