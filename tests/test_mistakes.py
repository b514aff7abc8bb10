"""Common mistakes: each loses points in its own lesson only, and the feedback names it.

Each mistake is a small edit of one reference function. Lessons 1-3 run in-process (the hidden
tests see the same plain data as through the sandbox); two also run end to end through the
sandbox. Lesson 4 is graded from outside a sandboxed process only (``autograder/TRUST.md``).
Broken contracts (mutated arguments, wrong return types, bad lengths let through, code right on
the default fleet only, a correct but slow solver) are in ``test_contracts.py``.
"""

import functools

import pytest
from notebook_fixtures import mistaken_notebook
from test_lesson04_grading import grade as grade_sandboxed
from test_lesson04_grading import reference_cells

from autograder.contract import LESSONS
from autograder.mutation import InProcessStudent, mutable_functions
from autograder.rubric import RUBRIC, grade_lesson
from autograder.sandbox import SandboxedStudent
from minilb.notebook_cells import code_cells

SOLUTION = "    ### BEGIN SOLUTION\n"  # an early return after it replaces the whole solution

# (id, function, old text, new text, the exercise that must lose points, words its feedback has)
MISTAKES = [
    ("wrong-factor", "processing_time", "return length * FACTORS[kind][request_type]",
     "return length * (2 if (kind, request_type) == ('M', 'V') else FACTORS[kind][request_type])",
     "processing_time", ["factor", "an M server serving V"]),
    ("no-validation", "processing_time", "    check_kind(kind)\n", "",
     "processing_time", ["invalid input", "ValueError"]),
    ("transposed-matrix", "cost_matrix",
     "return {t: [FACTORS[kind][t] for kind in kinds] for t in REQUEST_TYPES}",
     "return {k: [FACTORS[k][t] for t in REQUEST_TYPES] for k in kinds}",
     "cost_matrix", ["keys must be the request types"]),
    ("makespan-as-sum", "makespan", "return float(max(finish_times, default=0.0))",
     "return float(sum(finish_times))", "makespan", ["add the finish times"]),
    ("tie-break-by-index-only", "choose_server", "key = (max([done, *others]), done)",
     "key = (max([done, *others]),)", "choose_server", ["breaks the tie-break", "index only"]),
    ("ties-to-highest-index", "choose_server", "key < best_key", "key <= best_key",
     "choose_server", ["tie-break", "highest index"]),
    ("ignores-the-clock", "choose_server", "done = max(now, times[server])",
     "done = times[server]", "choose_server", ["ignores the clock"]),
    ("raw-lengths", "choose_server", "+ processing_time(kind, request_type, length)",
     "+ length", "choose_server", ["raw lengths instead of processing times"]),
    ("round-robin", "greedy_assign", "server = choose_server(times, request, kinds)",
     "server = len(assignment) % len(kinds)", "greedy_assign", ["round robin"]),
    ("finish-times-without-factor", "finish_times",
     "times[server] += processing_time(kinds[server], *check_request(request))",
     "times[server] += check_request(request).length", "finish_times", ["raw lengths"]),
    ("bound-not-a-bound", "lower_bound", SOLUTION,
     SOLUTION + "    return float(sum(min(FACTORS[k][t] * n for k in fleet)\n"
     "                     for t, n in requests))\n",
     "lower_bound", ["not a lower bound"]),
    ("bound-too-weak", "lower_bound", SOLUTION, SOLUTION + "    return 0.0\n",
     "lower_bound", ["weaker than"]),
    ("greedy-is-not-optimal", "optimal_makespan", SOLUTION,
     SOLUTION + "    assignment = greedy_assign(requests, fleet)\n"
     "    return max(finish_times(requests, assignment, fleet), default=0), assignment\n",
     "optimal_makespan", ["greedy", "heuristic", "not optimal"]),
    ("char-code-length", "parse_request", "return Request(request_type, int(digit))",
     "return Request(request_type, data[1])", "parse_request", ["character code"]),
    ("accepts-lowercase", "parse_request", "request_type, digit = chr(data[0]), chr(data[1])",
     "request_type, digit = chr(data[0]).upper(), chr(data[1])", "parse_request", ["lowercase"]),
]  # fmt: skip


def lesson_of(function: str) -> str:
    return next(lesson for lesson, names in LESSONS.items() if function in names)


SOCKETS = "04_sockets_and_forking"  # graded from outside a sandbox only (autograder/TRUST.md)
PROTOCOL_IMPORTS = ("from minilb.costs import REQUEST_TYPES, Request\n"
                    "from minilb.protocol import REQUEST_SIZE, ProtocolError\n")  # fmt: skip


@functools.cache
def lesson4_reference() -> tuple:
    return tuple(grade_sandboxed(reference_cells()).values())


def grade_everything(function: str, old: str, new: str) -> dict[str, list]:
    """Grade all four lessons; like the machinery, earlier lessons' functions are the reference
    ones, so the mistaken function is only part of its own lesson's student."""
    source = mutable_functions()[function][1]
    assert old in source, f"{old!r} not in the reference {function}"
    mistaken_source = source.replace(old, new, 1)
    mistaken = InProcessStudent({function: mistaken_source})
    reference = InProcessStudent()
    results = {
        lesson: grade_lesson(lesson, mistaken if lesson == lesson_of(function) else reference)
        for lesson in LESSONS if lesson != SOCKETS
    }
    if lesson_of(function) == SOCKETS:
        cells = [*reference_cells(), PROTOCOL_IMPORTS + mistaken_source]
        results[SOCKETS] = list(grade_sandboxed(cells).values())
    else:
        results[SOCKETS] = list(lesson4_reference())
    return results


@pytest.mark.parametrize(
    ("function", "old", "new", "loser", "words"),
    [pytest.param(*mistake[1:], id=mistake[0]) for mistake in MISTAKES],
)
def test_a_mistake_costs_points_in_its_lesson_only(function, old, new, loser, words):
    results = grade_everything(function, old, new)
    for lesson, lesson_results in results.items():
        for result in lesson_results:
            if result.exercise == loser:
                assert result.score < result.max_score
                feedback = " ".join(result.feedback)
                for word in words:
                    assert word in feedback, f"{word!r} missing from: {feedback}"
            elif lesson != lesson_of(function) or result.exercise not in ("greedy_assign",):
                # greedy_assign calls the student's own choose_server: it may lose points too
                assert result.passed, (lesson, result)


def test_a_tie_break_mistake_scores_partly():
    results = grade_everything("choose_server", "key = (max([done, *others]), done)",
                               "key = (max([done, *others]),)")  # fmt: skip
    choose = next(r for r in results["02_greedy_balancing"] if r.exercise == "choose_server")
    assert 0 < choose.score < choose.max_score


def test_the_mistake_list_covers_every_lesson():
    assert len(MISTAKES) >= 10
    assert {lesson_of(mistake[1]) for mistake in MISTAKES} == set(RUBRIC)


@pytest.mark.parametrize("mistake_id", ["tie-break-by-index-only", "char-code-length"])
def test_a_mistake_through_the_sandbox(tmp_path, mistake_id):
    _, function, old, new, loser, words = next(m for m in MISTAKES if m[0] == mistake_id)
    lesson = lesson_of(function)
    notebook = mistaken_notebook(lesson, tmp_path / f"{lesson}.ipynb", old, new)
    with SandboxedStudent(code_cells(notebook), lesson) as student:
        results = grade_lesson(lesson, student)
    for result in results:
        if result.exercise == loser:
            assert 0 <= result.score < result.max_score
            assert all(word in " ".join(result.feedback) for word in words), result.feedback
        elif result.exercise != "greedy_assign":
            assert result.passed, result
