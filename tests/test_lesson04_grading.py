"""Lesson 4's hidden tests through the real sandbox: real sockets, forks and threads in there.

The reference scores 16/16, from the kit's package and from the instructor's notebook. Each
plausible mistake is the solved notebook with one edit (or one cell that redefines a function):
it costs points in its own exercise only, and the feedback names the mistake and shows no
hidden input.
"""

import ast
import re
import subprocess
import sys
import time

import pytest
from notebook_fixtures import mistaken_notebook, solved_notebook

from autograder import sandbox
from autograder.contract import ExerciseResult
from autograder.handout import REFERENCE_PACKAGE
from autograder.hidden import lesson04
from autograder.hidden import lesson04_harness_peers as peers
from autograder.rubric import RUBRIC, grade_lesson
from autograder.sandbox import SandboxedStudent
from minilb.notebook_cells import code_cells

LESSON = "04_sockets_and_forking"
POINTS = {"parse_request": 3, "recv_exactly": 3, "spawn_relay_child": 3, "reap_children": 3,
          "serve_forking": 4}  # fmt: skip


def reference_cells() -> list[str]:
    """The kit's reference as a submission: ``network.py``, then ``protocol.parse_request``
    (last, so that network.py's import of the lesson's stub does not shadow it)."""
    protocol = (REFERENCE_PACKAGE / "protocol.py").read_text()
    parse = next(node for node in ast.parse(protocol).body
                 if isinstance(node, ast.FunctionDef) and node.name == "parse_request")  # fmt: skip
    imports = ("from minilb.costs import REQUEST_TYPES, Request\n"
               "from minilb.protocol import REQUEST_SIZE, ProtocolError\n")  # fmt: skip
    network = (REFERENCE_PACKAGE / "network.py").read_text()
    return [network, imports + ast.get_source_segment(protocol, parse)]


def grade(cells: list[str]) -> dict[str, ExerciseResult]:
    with SandboxedStudent(cells, LESSON) as student:
        assert not student.startup_note and not student.cell_errors, student.cell_errors
        return {result.exercise: result for result in grade_lesson(LESSON, student)}


def assert_full_marks(results: dict[str, ExerciseResult]) -> None:
    assert {name: result.score for name, result in results.items()} == POINTS, results
    assert all(result.feedback == [] for result in results.values()), results


def test_the_rubric_gives_lesson_four_sixteen_points():
    assert {e.name: e.points for e in RUBRIC[LESSON]} == POINTS


def test_the_reference_package_scores_full_marks():
    assert_full_marks(grade(reference_cells()))


def test_the_instructor_notebook_scores_full_marks_quickly(tmp_path):
    cells = code_cells(solved_notebook(LESSON, tmp_path / "solved.ipynb"))
    with SandboxedStudent(cells, LESSON) as student:
        started = time.monotonic()
        results = {result.exercise: result for result in grade_lesson(LESSON, student)}
        seconds = time.monotonic() - started
    assert_full_marks(results)
    assert seconds < 30, f"grading lesson 4 took {seconds:.1f} s"  # about 5 s when idle


def test_the_reference_scores_full_marks_beside_cpu_bound_processes():
    """Waits are driven by events, so a busy machine costs time, never points (issue 15)."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        assert_full_marks(grade(reference_cells()))
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_the_fallback_sandbox_runs_the_scenarios_too(monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    assert_full_marks(grade(reference_cells()))


# (id, old text in the solved notebook, new text: or None and a cell that redefines a function,
#  the exercise that must lose points, words its feedback has)
SHARED_BACKEND = '''
def serve_forking(listener, route, connections, timeout=2.0):
    backends, started, codes = {}, [], {}
    for _ in range(connections):
        codes.update(reap_children())
        client, _ = listener.accept()
        try:
            data = recv_exactly(client, REQUEST_SIZE, timeout)
            request = parse_request(data)
        except (OSError, ProtocolError) as error:
            close_with(client, error_reply(str(error)))
            continue
        address = route(request)
        if address not in backends:  # connect once, then share it: the original seed's bug
            backends[address] = socket.create_connection(address, timeout)
        backend = backends[address]
        backend.sendall(data)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                close_with(client, recv_exactly(backend, REQUEST_SIZE, timeout))
            except OSError:
                code = 3
            finally:
                os._exit(code)
        started.append(pid)
        client.close()
    for pid in started:
        if pid not in codes:
            codes[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return codes
'''
DECIDE_IN_CHILD = '''
def serve_forking(listener, route, connections, timeout=2.0):
    started, codes = [], {}
    for _ in range(connections):
        codes.update(reap_children())
        client, _ = listener.accept()
        try:
            data = recv_exactly(client, REQUEST_SIZE, timeout)
            request = parse_request(data)
        except (OSError, ProtocolError) as error:
            close_with(client, error_reply(str(error)))
            continue
        pid = os.fork()
        if pid == 0:  # the child decides: whatever route records is lost with the child
            code = 0
            try:
                backend = socket.create_connection(route(request), timeout)
                backend.sendall(data)
                close_with(client, recv_exactly(backend, REQUEST_SIZE, timeout))
            except OSError:
                code = 3
            finally:
                os._exit(code)
        started.append(pid)
        client.close()
    for pid in started:
        if pid not in codes:
            codes[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return codes
'''
ONLY_BYTES = '''
def parse_request(data):
    if not isinstance(data, bytes):
        raise ProtocolError(f"expected bytes, got {type(data).__name__}")
    if len(data) != REQUEST_SIZE:
        raise ProtocolError(f"a request is exactly 2 bytes, got {len(data)}")
    request_type, digit = chr(data[0]), chr(data[1])
    if request_type not in REQUEST_TYPES or digit not in "123456789":
        raise ProtocolError(f"bad request {data!r}")
    return Request(request_type, int(digit))
'''
PER_RECV_TIMEOUT = '''
def recv_exactly(sock, size, timeout):
    if size < 1 or timeout <= 0:
        raise ValueError("size and timeout must be positive")
    sock.settimeout(timeout)  # for each recv, not for the whole read
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the peer closed early")
        data += chunk
    return data
'''
REFUSAL_EXITS_1 = '''
def spawn_relay_child(client, backend, timeout, on_reply=None):
    pid = os.fork()
    if pid != 0:
        backend.close()
        return pid
    exit_code = 1
    try:
        try:
            reply = recv_exactly(backend, REQUEST_SIZE, timeout)
        except OSError:  # only the server's own failures count as a failing server
            exit_code = 3
            raise
        if on_reply is not None:
            on_reply(reply)
        close_with(client, reply)
        exit_code = 0
    except Exception:
        pass
    finally:
        os._exit(exit_code)
'''
BUSY_WAIT = '''
import time


def recv_exactly(sock, size, timeout):
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or not timeout > 0:
        raise ValueError("size and timeout must be positive")
    deadline, data = time.monotonic() + timeout, b""
    sock.setblocking(False)  # then polls: every turn of the loop burns CPU time
    while len(data) < size:
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        try:
            chunk = sock.recv(size - len(data))
        except BlockingIOError:
            continue
        if not chunk:
            raise ConnectionError("the peer closed early")
        data += chunk
    return data
'''
NO_CHILDREN_OLD = """        try:
            pid, status = os.waitpid(-1, os.WNOHANG)  # WNOHANG: return at once if none is done
        except ChildProcessError:
            return exit_codes  # no children at all
"""
NO_CHILDREN_NEW = "        pid, status = os.waitpid(-1, os.WNOHANG)  # raises if no child is left\n"
MISTAKES = [
    ("recv-once", "        while len(data) < size:\n            remaining",
     "        if len(data) < size:\n            remaining", "recv_exactly",
     ["recv was called once instead of looping"]),
    ("no-timeout", "        sock.settimeout(remaining)", "        pass", "recv_exactly",
     ["no timeout: a silent peer blocked the call"]),
    ("leaves-its-timeout-on-the-socket", "    finally:\n        sock.settimeout(old_timeout)\n",
     "    finally:\n        pass  # the caller's socket keeps the last timeout\n", "recv_exactly",
     ["a blocking socket came back non-blocking", "save sock.gettimeout()",
      "sock.settimeout(old) in a finally"]),
    ("timeout-per-recv", PER_RECV_TIMEOUT, None, "recv_exactly",
     ["the timeout restarts at every recv", "one deadline for the whole read"]),
    ("busy-wait", BUSY_WAIT, None, "recv_exactly", ["busy-waited on a silent peer"]),
    ("sys-exit-in-the-child", "        os._exit(exit_code)", "        raise SystemExit(exit_code)",
     "spawn_relay_child", ["the child returned instead of leaving with os._exit"]),
    ("parent-keeps-backend", "        backend.close()\n        return pid", "        return pid",
     "spawn_relay_child", ["backend socket open (fd leaked)"]),
    ("blocking-waitpid", "os.waitpid(-1, os.WNOHANG)", "os.waitpid(-1, 0)", "reap_children",
     ["waitpid blocked while a child was still running", "os.WNOHANG"]),
    ("no-except-child-process-error", NO_CHILDREN_OLD, NO_CHILDREN_NEW, "reap_children",
     ["no children at all (-0.5)", "raised ChildProcessError when there were no children"]),
    ("raw-wait-status", "exit_codes[pid] = os.waitstatus_to_exitcode(status)",
     "exit_codes[pid] = status", "reap_children", ["exit codes not collected (raw wait status?)"]),
    ("parent-keeps-client", "        client.close()\n    for pid in started:",
     "    for pid in started:", "serve_forking",
     ["the parent kept the client socket open (fd leaked)"]),
    ("waits-for-each-child", "        client.close()\n    for pid in started:",
     "        client.close()\n        pid, status = os.waitpid(-1, 0)  # this child, done\n"
     "        exit_codes[pid] = os.waitstatus_to_exitcode(status)\n    for pid in started:",
     "serve_forking", ["clients were served one at a time", "os.WNOHANG"]),
    ("no-reaping", "        exit_codes.update(reap_children())\n", "", "serve_forking",
     ["zombies piled up while serving"]),
    ("shared-backend", SHARED_BACKEND, None, "serve_forking",
     ["one backend socket shared by all children: reply reached the wrong client"]),
    ("decide-in-child", DECIDE_IN_CHILD, None, "serve_forking",
     ["the decision was made in the child", "lost update"]),
    ("parse-only-bytes", ONLY_BYTES, None, "parse_request", ["rejected a bytearray"]),
    # Survivors of ``make mutation`` (docs/MUTATION.md) before the cases that now catch them.
    ("size-type-check-weakened", "isinstance(size, bool) or not isinstance(size, int) or",
     "isinstance(size, bool) and not isinstance(size, int) or", "recv_exactly",
     ["a size that is not an int", "should raise ValueError"]),
    ("recv-asks-for-too-much", "sock.recv(size - len(data))", "sock.recv(size + len(data))",
     "recv_exactly", ["read more than size bytes", "ask recv only for the bytes still missing"]),
    ("other-error-exits-0", "exit_code = 1  #", "exit_code = 0  #", "spawn_relay_child",
     ["another error in the child", "should exit with code 1"]),
    ("other-error-exits-3", "        if on_reply is not None:\n            on_reply(reply)\n",
     "        if on_reply is not None:\n            try:\n                on_reply(reply)\n"
     "            except Exception as error:\n                raise OSError() from error\n",
     "spawn_relay_child", ["exit code 3 when on_reply raised an error that is not an OSError"]),
    ("no-connections-rejected", "connections is not None and connections < 0",
     "connections is not None and connections <= 0", "serve_forking",
     ["with connections 0 it should serve nobody", "not raise ValueError"]),
    ("negative-connections-allowed", "connections is not None and connections < 0",
     "connections is None and connections < 0", "serve_forking",
     ["a negative count of connections should raise ValueError",
      "with connections None it should serve for ever"]),
    ("refusal-exits-1", REFUSAL_EXITS_1, None, "spawn_relay_child",
     ["when on_reply refuses the reply", "exit with code 3"]),
    ("refused-server-crashes-the-relay", "{address[1]} failed", "{address[2]} failed",
     "serve_forking", ["raised IndexError when a server refused the connection"]),
    ("refused-server-stops-the-relay",
     "failed: {error}\"))\n            continue", "failed: {error}\"))\n            break",
     "serve_forking", ["stopped serving after a server refused the connection"]),
]  # fmt: skip


def mistaken_cells(tmp_path, old: str, new: str | None) -> list[str]:
    if new is None:  # ``old`` is a cell that redefines the function after the notebook's
        return [*code_cells(solved_notebook(LESSON, tmp_path / "solved.ipynb")), old]
    return code_cells(mistaken_notebook(LESSON, tmp_path / "mistaken.ipynb", old, new))


def shows_no_hidden_input(feedback: list[str]) -> bool:
    """Beyond the points lost, like "(-0.75)": no lists, dicts, bytes or quoted values, no
    fractional numbers (deadlines, delays); counts such as "zombies left: 3" may appear."""
    text = re.sub(r"\(-[\d.]+\)", "", " ".join(feedback))
    return not re.search(r"[\[\]{}]|b'|\('|\d+\.\d+", text)


@pytest.mark.parametrize(
    ("old", "new", "loser", "words"), [pytest.param(*m[1:], id=m[0]) for m in MISTAKES]
)
def test_a_mistake_costs_points_in_its_own_exercise_only(tmp_path, old, new, loser, words):
    results = grade(mistaken_cells(tmp_path, old, new))
    for name, result in results.items():
        if name == loser:
            assert result.score < result.max_score, result
            feedback = " ".join(result.feedback)
            assert all(word in feedback for word in words), feedback
            assert shows_no_hidden_input(result.feedback), feedback
        else:
            assert result.passed and result.feedback == [], result


@pytest.mark.parametrize(("mistake_id", "group", "points"), [
    ("no-except-child-process-error", "no children at all", 0.5),
    ("leaves-its-timeout-on-the-socket",
     "leaves the socket's timeout and blocking mode as it found them", 0.25),
])  # fmt: skip
def test_a_mistake_about_one_rule_costs_that_rule_s_group_only(tmp_path, mistake_id, group,
                                                               points):
    """Issue 17: one missing ``except`` in reap_children once cost three groups (-2.25)."""
    _, old, new, loser, _ = next(mistake for mistake in MISTAKES if mistake[0] == mistake_id)
    result = grade(mistaken_cells(tmp_path, old, new))[loser]
    assert result.score == result.max_score - points, result
    assert len(result.feedback) == 1 and result.feedback[0].startswith(f"{group} (-{points:g})")


def test_the_mistakes_cover_every_exercise():
    assert {mistake[3] for mistake in MISTAKES} == set(POINTS)


def test_a_blank_handout_is_told_it_is_not_implemented():
    stubs = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError()\n" for name in POINTS]
    for result in grade(stubs).values():
        assert result.score == 0
        assert result.feedback == ["not implemented yet (it raises NotImplementedError)"], result


def test_a_relay_child_that_never_ends_costs_only_its_own_points():
    hanging = ("def spawn_relay_child(client, backend, timeout, on_reply=None):\n"
               "    pid = os.fork()\n"
               "    if pid == 0:\n"
               "        while True:\n"
               "            time.sleep(1)\n"
               "    backend.close()\n"
               "    return pid\n")  # fmt: skip
    results = grade([*reference_cells(), "import os, time\n" + hanging])
    relay = results["spawn_relay_child"]
    assert relay.score == 0.5, relay  # only the parent's part is right
    assert "did not end" in " ".join(relay.feedback)
    assert all(results[name].passed for name in POINTS if name != "spawn_relay_child")


def test_the_sandboxed_part_is_self_contained():
    source = lesson04.harness("call")
    tree = ast.parse(source)
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(module.startswith("autograder") for module in modules if module)
    assert any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body)


def test_a_scenario_the_grader_cannot_set_up_is_not_blamed_on_the_student(monkeypatch):
    def no_sockets() -> None:
        raise OSError("no more sockets")

    monkeypatch.setattr(peers, "tcp_pair", no_sockets)
    results = grade(reference_cells())
    assert results["parse_request"].passed and results["reap_children"].passed
    for name in ("recv_exactly", "spawn_relay_child"):
        assert results[name].score == 0
        assert "grader failed" in results[name].feedback[0], results[name]
        assert "not your fault" in results[name].feedback[0]


def test_a_notebook_that_lowers_its_own_descriptor_limit_gets_what_its_code_does():
    no_more_files = ("import os, resource\n"
                     "held = len(os.listdir('/proc/self/fd'))\n"
                     "resource.setrlimit(resource.RLIMIT_NOFILE, (held, held))\n")  # fmt: skip
    results = grade([*reference_cells(), no_more_files])
    assert results["parse_request"].passed  # plain calls need no new descriptor
    assert results["spawn_relay_child"].score == 0  # three sockets do not fit: said plainly
    assert "raised OSError" in " ".join(results["spawn_relay_child"].feedback)
