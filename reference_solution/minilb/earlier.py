"""Earlier lessons' exercises, for the lessons and commands that build on them.

Lesson 2 needs lesson 1's ``processing_time``, lesson 3 needs lesson 2's greedy schedule, the
live demo needs ``choose_server``... A student never copies them into ``minilb/*.py``: each one
is taken, in this order, from

1. the ``minilb`` package, when its body is written there (your instructor's ``minilb release
   --after LESSON`` hands out the package with the lessons so far solved; the grader runs each
   lesson this way too, so a mistake is charged in its own lesson only);
2. your own notebook of that lesson, in the same folder (``01_cost_matrix.ipynb``...);

and when neither has it, a stand-in that raises ``ExerciseNotDone`` naming the exercise and the
notebook to finish, the moment something calls it. A lesson's first cell says in one line which
one it got::

    (processing_time,) = from_earlier_lessons("processing_time")
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minilb.exercises import MODULE_OF, is_stub, not_done, notebook_of


@dataclass(frozen=True)
class Found:
    """An exercise function and where it came from, in words for the student."""

    function: Callable
    source: str

    @property
    def done(self) -> bool:
        return not is_stub(self.function)


def find_exercise(name: str, folder: Path | str = ".") -> Found:
    """``name`` from the package if written there, else from the student's notebook in
    ``folder``, else a stand-in that says which notebook to finish."""
    from minilb.policies import notebook_namespace  # it runs notebooks, which import this module

    package_function = getattr(importlib.import_module(MODULE_OF[name]), name)
    if not is_stub(package_function):
        return Found(package_function, "the minilb package")
    notebook = Path(folder) / notebook_of(name)
    if not notebook.is_file():
        return Found(not_done(name, f"write it in {notebook.name} (not found here)"), "nowhere")
    try:
        function = notebook_namespace(str(notebook)).get(name)
    except ValueError as error:  # a cell of that notebook fails: say which, do not hide it
        return Found(not_done(name, f"{notebook.name} does not run: {error}"), "nowhere")
    if not callable(function) or is_stub(function):
        return Found(not_done(name, f"finish it in {notebook.name}"), "nowhere")
    return Found(function, f"your {notebook.name}")


def from_earlier_lessons(*names: str) -> tuple[Callable, ...]:
    """The functions ``names`` (see the module's docstring), one line printed for each."""
    found = [find_exercise(name) for name in names]
    for name, each in zip(names, found, strict=True):
        if each.done:
            print(f"{name}: from {each.source}")
        else:
            print(each.function.not_done)  # type: ignore[attr-defined]
    return tuple(each.function for each in found)
