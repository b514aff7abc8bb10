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


class ExerciseNotDone(ValueError):
    """A command needs an exercise the student has not written yet (the CLI prints it as a
    one-line error, like every other bad input)."""

    def __init__(self, function: str) -> None:
        lesson = LESSON_OF.get(function, "?")
        super().__init__(f"exercise not done yet: {function} (lesson {lesson})")
        self.function = function


def is_stub(function: Callable) -> bool:
    """Whether ``function``'s body is still the handout's ``raise NotImplementedError()``."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        return False  # no source to read (a builtin, a lambda in a REPL): assume it is written
    statements = [node for node in body if not _is_docstring(node)]
    return any(_raises_not_implemented(node) for node in statements[:1])


def require_done(*functions: Callable) -> None:
    """Raise ``ExerciseNotDone`` naming the first of ``functions`` that is still a stub."""
    for function in functions:
        if is_stub(function):
            raise ExerciseNotDone(function.__name__)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _raises_not_implemented(node: ast.stmt) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
