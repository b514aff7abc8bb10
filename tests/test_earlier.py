"""Earlier lessons' exercises reach later lessons from the package or the student's notebook."""

from pathlib import Path

import nbformat
import pytest

import minilb.costs
import minilb.scheduling
from minilb.earlier import find_exercise, from_earlier_lessons
from minilb.exercises import ExerciseNotDone, is_stub, require_done
from minilb.policies import load_policy_from

WRITTEN = "def processing_time(kind, request_type, length):\n    return 7 * length\n"
STUB = (
    'def processing_time(kind, request_type, length):\n    """Doc."""\n'
    "    raise NotImplementedError()\n"
)


def stubbed_processing_time(kind: str, request_type: str, length: int) -> int:
    raise NotImplementedError()


@pytest.fixture
def handout_package(monkeypatch):
    """The package as handed out: lesson 1's and 2's exercises are stubs."""
    monkeypatch.setattr(minilb.costs, "processing_time", stubbed_processing_time)

    def choose_server(finish_times, request, fleet=("VP", "VP", "M"), now=0.0):
        raise NotImplementedError()

    monkeypatch.setattr(minilb.scheduling, "choose_server", choose_server)


def notebook(folder: Path, name: str, *sources: str) -> Path:
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = folder / f"{name}.ipynb"
    nbformat.write(book, path)
    return path


def test_a_written_package_function_comes_first(tmp_path):
    notebook(tmp_path, "01_cost_matrix", WRITTEN)
    found = find_exercise("processing_time", tmp_path)
    assert found.done and found.source == "the minilb package"
    assert found.function is minilb.costs.processing_time


def test_else_the_students_own_notebook_in_the_same_folder(tmp_path, handout_package):
    notebook(tmp_path, "01_cost_matrix", "print('noise')", WRITTEN)
    found = find_exercise("processing_time", tmp_path)
    assert found.done and found.source == "your 01_cost_matrix.ipynb"
    assert found.function("VP", "V", 2) == 14


@pytest.mark.parametrize(
    "cells, hint",
    [
        (None, "write it in 01_cost_matrix.ipynb (not found here)"),
        ([STUB], "finish it in 01_cost_matrix.ipynb"),
        (["x = 1 / 0"], "01_cost_matrix.ipynb does not run: "),
    ],
    ids=["no notebook", "a stub", "a failing cell"],
)
def test_else_a_stand_in_that_names_the_notebook_to_finish(tmp_path, handout_package, cells, hint):
    if cells is not None:
        notebook(tmp_path, "01_cost_matrix", *cells)
    found = find_exercise("processing_time", tmp_path)
    assert not found.done and is_stub(found.function)
    with pytest.raises(ExerciseNotDone, match="^exercise not done yet: processing_time") as caught:
        found.function("VP", "V", 2)
    assert hint in str(caught.value)
    with pytest.raises(ExerciseNotDone) as required:
        require_done(found.function)
    assert hint in str(required.value)  # require_done keeps the hint


def test_a_later_notebook_takes_the_earlier_one_beside_it(tmp_path, handout_package, monkeypatch):
    notebook(tmp_path, "01_cost_matrix", WRITTEN)
    take = (
        "from minilb.earlier import from_earlier_lessons\n"
        "(processing_time,) = from_earlier_lessons('processing_time')\n"
    )
    choose = "def choose_server(finish_times, request, fleet=None, now=0.0):\n    return 0\n"
    path = notebook(tmp_path, "02_greedy_balancing", take, choose)
    monkeypatch.chdir("/")  # the notebook runs in its own folder, wherever the command is run
    policy, source = load_policy_from(str(path))
    assert source == f"choose_server from your {path}"
    assert policy.__globals__["processing_time"]("VP", "V", 1) == 7


def test_one_line_per_exercise_says_where_it_came_from(tmp_path, handout_package, monkeypatch,
                                                       capsys):  # fmt: skip
    notebook(tmp_path, "01_cost_matrix", WRITTEN)
    monkeypatch.chdir(tmp_path)
    processing_time, choose_server = from_earlier_lessons("processing_time", "choose_server")
    assert capsys.readouterr().out.splitlines() == [
        "processing_time: from your 01_cost_matrix.ipynb",
        "exercise not done yet: choose_server (lesson 02_greedy_balancing): write it in "
        "02_greedy_balancing.ipynb (not found here)",
    ]
    assert processing_time("M", "M", 1) == 7 and is_stub(choose_server)


def test_the_greedy_policy_names_what_to_finish(tmp_path, handout_package, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExerciseNotDone, match="02_greedy_balancing.ipynb .*--policy round-robin"):
        load_policy_from("greedy")
