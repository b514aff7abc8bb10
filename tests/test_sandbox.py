"""The sandboxed child: plain data over the pipe, failures told apart, one hang costs one call."""

import inspect
import os
import warnings

import pytest
from notebook_fixtures import reference_source, write_notebook

import minilb.costs
from autograder import sandbox
from autograder.contract import StudentCallError
from autograder.sandbox import Limits, SandboxedStudent
from minilb.notebook_cells import NotebookError, code_cells

FAST = Limits(startup_seconds=5, call_seconds=1, notebook_seconds=30)
TOOLS = """
import os, socket
class ProtocolError(ValueError):
    pass
def echo(value):
    return value
def fail():
    raise ProtocolError("bad request b'X1'")
def hang():
    while True:
        pass
def die():
    os._exit(7)
class AlwaysEqual:
    def __eq__(self, other):
        return True
def liar():
    return AlwaysEqual()
def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=1)
def processing_time(kind, request_type, length):
    return -1
"""


def call_error(student: SandboxedStudent, *call) -> StudentCallError:
    with pytest.raises(StudentCallError) as caught:
        student.call(*call)
    return caught.value


def test_plain_data_crosses_the_pipe_both_ways():
    with SandboxedStudent(TOOLS, "02_greedy_balancing", FAST) as student:
        assert student.has("echo") and not student.has("nothing")
        assert student.call("echo", ("M", 5)) == ["M", 5]
        assert student.call("echo", {"V": [1, 2.5, None, True]}) == {"V": [1, 2.5, None, True]}
        assert student.call("echo", b"M5\xff") == b"M5\xff"


def test_failures_are_told_apart():
    with SandboxedStudent(TOOLS, "01_cost_matrix", FAST) as student:
        raised = call_error(student, "fail")
        assert (raised.kind, raised.exc_type) == ("raised", "ProtocolError")
        assert "ValueError" in raised.exc_bases and raised.message == ""  # never the student's
        assert call_error(student, "nothing").kind == "missing"
        assert call_error(student, "liar").kind == "not-plain-data"
        assert call_error(student, "die").kind == "crashed"
        assert student.call("echo", 3) == 3  # a fresh child took over


def test_a_hanging_function_costs_only_its_own_calls():
    with SandboxedStudent(TOOLS, "01_cost_matrix", FAST) as student:
        assert call_error(student, "hang").kind == "timeout"
        assert student.call("echo", [1]) == [1]
        assert call_error(student, "hang").kind == "timeout"
        assert "not retried" in call_error(student, "hang").message
        assert student.call("echo", [2]) == [2]


def test_earlier_lessons_functions_are_the_reference():
    with SandboxedStudent(TOOLS, "02_greedy_balancing", FAST) as student:
        assert student.call("processing_time", "M", "V", 2) == 6
    with SandboxedStudent(TOOLS, "01_cost_matrix", FAST) as student:
        assert student.call("processing_time", "M", "V", 2) == -1


def test_the_lessons_own_reference_is_not_in_the_sandbox():
    with SandboxedStudent("from minilb.costs import processing_time", "01_cost_matrix",
                          FAST) as student:
        assert call_error(student, "processing_time", "M", "V", 2).exc_type == (
            "NotImplementedError")


def test_no_network_inside_the_sandbox():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with SandboxedStudent(TOOLS, "01_cost_matrix", FAST) as student:
            assert call_error(student, "connect", port).kind == "raised"


def test_a_notebook_that_exits_while_loading():
    with SandboxedStudent(["def f():\n    return 1", "import os\nos._exit(0)"],
                          "01_cost_matrix", FAST) as student:
        assert "ended the process" in student.startup_note
        assert call_error(student, "f").kind == "crashed"


def test_fallback_without_bubblewrap_still_grades(monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    with SandboxedStudent(reference_source("01_cost_matrix"), "01_cost_matrix", FAST) as student:
        assert student.call("processing_time", "M", "V", 2) == 6
        assert call_error(student, "processing_time", "X", "V", 2).exc_type == "ValueError"


def test_bubblewrap_probe_warns_once_when_missing(monkeypatch):
    sandbox.bubblewrap_works.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    try:
        with pytest.warns(RuntimeWarning, match="bubblewrap"):
            assert sandbox.bubblewrap_works() is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert sandbox.bubblewrap_works() is False  # cached: no second warning
    finally:
        sandbox.bubblewrap_works.cache_clear()


def test_code_cells_skip_visible_tests_demos_and_magics(tmp_path):
    path = write_notebook(tmp_path / "n.ipynb", ["%matplotlib inline\nx = 1", "serve()", "y = 2"],
                          tags={1: ["demo"]})
    assert code_cells(path) == ["\nx = 1", "y = 2"]
    assert inspect.getsource(minilb.costs.processing_time)  # the reference stays readable here


@pytest.mark.parametrize("content, reason", [(b"{not json", "not valid JSON"),
                                             (b'{"cells": 3}', "no list of cells")])
def test_unreadable_notebooks_say_why(tmp_path, content, reason):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=reason):
        code_cells(path)
    with pytest.raises(NotebookError, match="could not be read"):
        code_cells(tmp_path / "missing.ipynb")


def test_isolation_is_required_or_refused_with_what_to_do(monkeypatch):
    assert sandbox.require_isolation(allow_unsafe=False) == "bubblewrap"
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    with pytest.raises(sandbox.SandboxRefused, match="install it .* or pass --unsafe-no-sandbox"):
        sandbox.require_isolation(allow_unsafe=False)
    assert sandbox.require_isolation(allow_unsafe=True) == "jail"
    monkeypatch.setattr(sandbox.os, "getuid", lambda: 1000)  # not root: no jail either
    with pytest.raises(sandbox.SandboxRefused, match="needs root"):
        sandbox.require_isolation(allow_unsafe=True)


def test_the_jail_has_no_network_and_its_own_user(monkeypatch):
    import socket

    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    source = TOOLS + "def whoami():\n    return [os.getuid(), os.getcwd(), sorted(os.listdir('/'))]"
    with socket.create_server(("127.0.0.1", 0)) as server:
        with SandboxedStudent(source, "01_cost_matrix", FAST) as student:
            assert call_error(student, "connect", server.getsockname()[1]).kind == "raised"
            uid, cwd, top = student.call("whoami")
    assert uid >= sandbox.jail.UID_BASE and cwd == "/tmp"
    assert "work" not in top and "proc" not in top and "home" not in top


FORK_BOMB = """
import os, time
def fork_many(limit):
    started = 0
    try:
        for _ in range(limit):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            started += 1
    except OSError:
        pass
    return started
"""


def test_a_fork_bomb_meets_the_process_cap_even_when_the_grader_is_root():
    # RLIMIT_NPROC does not bind root, and bubblewrap's user is root outside when we are: the
    # sandbox's cgroup is what holds the cap then (cgroups.py).
    capped = Limits(startup_seconds=5, call_seconds=5, notebook_seconds=30, processes=16)
    with SandboxedStudent(FORK_BOMB, "01_cost_matrix", capped) as student:
        started = student.call("fork_many", 200)
        cgroup = student._cgroup
        assert cgroup is not None or os.getuid() != 0, "as root the sandbox needs its cgroup"
    assert started < 16, f"{started} processes started under a cap of 16"
    if cgroup is not None:
        assert not any(path.exists() for path in cgroup.dirs.values()), \
            "the sandbox's cgroup outlived it"
