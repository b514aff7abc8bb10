"""Forging what the sandbox reports gains nothing (``autograder/TRUST.md``).

Each hostile notebook is the blank handout (every exercise raises ``NotImplementedError``) plus
one cell that lies to the grader in its own way: it rebinds the names the in-sandbox code looks
up at call time, patches ``builtins``, ``os``, ``socket``, ``select``, ``time`` or ``json``,
takes over the pipe to the grader and writes its own replies, or forks and lets a child answer
with lies. None may score more than the blank handout on any lesson-4 exercise, and none may
put text of its own into feedback. Positive controls: the reference still scores full marks
after the same cells are run beside it where they leave the machinery alone, and the lesson-2
contract audit shows what forging the contracts harness can and cannot earn.
"""

import pytest
from notebook_fixtures import reference_source
from test_lesson04_grading import POINTS, grade, reference_cells

from autograder.contract import LESSONS
from autograder.rubric import grade_lesson
from autograder.sandbox import SandboxedStudent

BLANK = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError()\n" for name in POINTS]

# What a forger would answer for each in-sandbox action: the ideal the old harnesses reported,
# and plausible results of the new one (it cannot know the pids the grader sees).
LIES = '''
OLD_IDEAL = {"kind": "dict", "codes": [0, 3, 1, 42], "others": 0, "running_reported": False,
             "left": 0, "seconds": 0.01, "blocked": False, "raised": None, "returned": "M5",
             "unread": "", "pid": True, "client_open": True, "backend_open": False,
             "new_sockets": 0, "code": 0, "on_reply": "P7", "reply": "P7", "ended": True,
             "answers": [], "route_calls": 46, "zombies": 0, "running": 0, "hung": 0}
PIDS = list(range(2, 80))


def lie(args):
    action = args[0] if args and isinstance(args[0], str) else "call"
    if action == "children":
        return None
    if action == "bytes-like":
        return {"tuple": True, "type": "M", "length": 5, "length_kind": "int"}
    if action == "relay":
        return 3
    if action == "serve":
        return {"kind": "dict", "items": [[pid, 0] for pid in PIDS]}
    if action == "call" and len(args) > 1:  # recv_exactly
        return b"M5"
    if action == "call":  # reap_children
        return {"kind": "dict", "items": [[pid, 0] for pid in PIDS]}
    return OLD_IDEAL
'''

REBIND_HARNESS = LIES + '''
import __main__, sys
__main__.bind_harness = lambda source, function: (lambda *args: lie(args))
sys.modules["__main__"].bind_harness = __main__.bind_harness
'''

OLD_EXPLOIT = '''
import __main__
IDEAL = {"kind": "dict", "codes": [0, 3, 1, 42], "others": 0, "running_reported": False,
         "left": 0, "seconds": 0.01, "blocked": False, "raised": None}
__main__.bind_harness = lambda source, function: (lambda *args: IDEAL)
'''

PATCH_MODULES = LIES + '''
import builtins, json, os, select, socket, time
os.fork = lambda: 4242
os.waitpid = lambda pid, options: (4242, 0)
os.waitid = lambda *args: None
os._exit = lambda code: None
os.kill = lambda pid, signal: None
select.select = lambda r, w, x, timeout=None: (list(r), list(w), [])
socket.socket.recv = lambda self, size, *flags: b"M5"[:size]
socket.socket.close = lambda self: None
time.monotonic = lambda: 0.0
time.sleep = lambda seconds: None
json.dumps = lambda value, *a, **k: '{"id": 1, "ok": 2}'
_real_import = builtins.__import__
builtins.__import__ = lambda name, *a, **k: _real_import(name, *a, **k)
def reap_children():
    return {4242: 0, 2: 0, 3: 3, 4: 1, 5: 42}
def spawn_relay_child(client, backend, timeout, on_reply=None):
    return 4242
'''

# Find the pipes to the grader (a read-only and a write-only one above fd 2) and the channel,
# answer "ready" and every call with lies; never give the real loop a chance.
TAKE_OVER = LIES + '''
import fcntl, json, os, socket
NAMES = NAMES_HERE


def pipes():
    found = {}
    for fd in sorted(int(entry) for entry in os.listdir("/proc/self/fd")):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if fd > 2 and target.startswith("pipe:"):
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
            found.setdefault("r" if mode == os.O_RDONLY else "w", fd)
        if fd > 2 and target.startswith("socket:") and "channel" not in found:
            sock = socket.socket(fileno=os.dup(fd))
            if sock.family == socket.AF_UNIX:
                found["channel"] = sock
    return found


def take_over():
    found = pipes()
    requests, replies = os.fdopen(found["r"], "r"), os.fdopen(found["w"], "w")
    replies.write(json.dumps({"ready": True, "functions": NAMES, "cell_errors": []}) + "\\n")
    replies.flush()
    for line in requests:
        request = json.loads(line)
        if request.get("fds") and "channel" in found:
            socket.recv_fds(found["channel"], 16, request["fds"])
        forged = lie(request.get("args", []))
        if isinstance(forged, bytes):
            forged = {"__bytes__": forged.decode("latin-1")}
        replies.write(json.dumps({"id": request["id"], "ok": forged}) + "\\n")
        replies.flush()
    os._exit(0)
'''.replace("NAMES_HERE", repr(sorted(POINTS)))

TAKE_OVER_NOW = TAKE_OVER + "\ntake_over()\n"
FORK_AND_LIE = TAKE_OVER + '''
if os.fork() == 0:
    take_over()  # the child answers with lies
os.wait()  # the parent, which the grader watches, waits for ever
'''

HOSTILE = {
    "rebinds-bind-harness": REBIND_HARNESS,
    "the-old-exploit": OLD_EXPLOIT,
    "patches-builtins-os-socket-select-time-json": PATCH_MODULES,
    "writes-its-own-replies-to-the-pipe": TAKE_OVER_NOW,
    "forks-and-lets-a-child-lie": FORK_AND_LIE,
}


def grade_quietly(cells: list[str]) -> dict:
    with SandboxedStudent(cells, "04_sockets_and_forking") as student:
        return {r.exercise: r for r in grade_lesson("04_sockets_and_forking", student)}


@pytest.mark.parametrize("cell", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_forging_notebook_scores_no_more_than_a_blank_one(cell):
    blank = grade_quietly(BLANK)
    forged = grade_quietly([*BLANK, cell])
    for name in POINTS:
        assert forged[name].score <= blank[name].score, (name, forged[name])
        text = " ".join(forged[name].feedback)
        assert "OLD_IDEAL" not in text and "4242" not in text, text


def test_the_same_lies_beside_a_correct_notebook_gain_nothing_either():
    # The reference functions, with the harness names rebound: scores may only fall.
    results = grade([*reference_cells(), REBIND_HARNESS])
    assert all(results[name].score <= POINTS[name] for name in POINTS)
    assert results["parse_request"].score < POINTS["parse_request"]  # bytes-like was forged


def test_the_reference_still_scores_full_marks():
    results = grade(reference_cells())
    assert {name: result.score for name, result in results.items()} == POINTS


# --- lessons 1-3: the contracts harness ------------------------------------------------------

LESSON2 = "02_greedy_balancing"
FORGE_CONTRACTS = '''
import __main__
__main__.bind_harness = lambda source, function: (
    lambda shapes, *args: {"result": None, "mutated": []})
'''
MUTATES_AND_HIDES_IT = '''
import __main__
_honest = __main__.bind_harness
def _hiding(source, function):
    run = _honest(source, function)
    def call(*args):
        answer = run(*args)
        return {**answer, "mutated": []} if isinstance(answer, dict) else answer
    return call
__main__.bind_harness = _hiding
_choose = choose_server
def choose_server(finish_times, request, fleet=("VP", "VP", "M"), now=0.0):
    chosen = _choose(finish_times, request, fleet, now)
    if isinstance(finish_times, list):
        finish_times.append(0.0)  # a mutation the forged report hides
    return chosen
'''


def lesson2_scores(cells: list[str]) -> dict[str, float]:
    with SandboxedStudent(cells, LESSON2) as student:
        return {r.exercise: r.score for r in grade_lesson(LESSON2, student)}


def test_forging_the_contracts_report_earns_nothing_without_right_answers():
    blank = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError()\n"
             for name in LESSONS[LESSON2]]  # fmt: skip
    assert lesson2_scores([*blank, FORGE_CONTRACTS]) == lesson2_scores(blank)


def test_hiding_a_mutation_earns_at_most_what_a_correct_answer_earns():
    reference = [reference_source(LESSON2)]
    honest = lesson2_scores(reference)
    hidden = lesson2_scores([*reference, MUTATES_AND_HIDES_IT])
    assert all(hidden[name] <= honest[name] for name in honest), (hidden, honest)
