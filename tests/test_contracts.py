"""Contracts the lessons state are graded: a broken contract costs its own points, no others.

Each case is a plausible submission that breaks one contract of lessons 1-3 (mutating the
caller's list, only at a clock after 0; a float or bool let through as a length; the wrong return
type; code right only on the default fleet; a correct but exponential solver) and is otherwise
the reference. Graded in-process like ``test_mistakes``: it must lose points in its own exercise,
with feedback naming the contract, and no other exercise of the lesson may lose any (except
greedy_assign, which calls the student's own choose_server). A few run through the real sandbox,
where the harness must see the same things.
"""

import time

import pytest
from independent_solvers import solve_cp_sat
from notebook_fixtures import (
    BRUTE_FORCE_OPTIMUM,
    ONE_MUSIC_SERVER_BOUND,
    TEXTBOOK_BRANCH_AND_BOUND,
    mistaken_notebook,
    solved_notebook,
)

from autograder.contract import LESSONS, StudentCallError
from autograder.hidden import lesson02, lesson03
from autograder.hidden.common import (
    RIGHT,
    Group,
    Outcome,
    grade_exercise,
    unchanged_group,
    wrong,
)
from autograder.hidden.greedy_rules import choice
from autograder.mutation import InProcessStudent, mutable_functions
from autograder.rubric import RUBRIC, grade_lesson
from autograder.sandbox import SandboxedStudent
from minilb.notebook_cells import code_cells
from minilb.optimal import optimal_makespan
from minilb.scheduling import choose_server, greedy_assign

SOLUTION = "    ### BEGIN SOLUTION\n"  # an early return after it replaces the whole solution
CHECKS_OWN_REQUEST = "request_type, length = check_request(request)"
DIVIDES_BY_THREE = """\
    kinds = check_fleet(fleet)
    fastest = [min(processing_time(k, *check_request(r)) for k in kinds) for r in requests]
    return float(max(max(fastest, default=0), sum(fastest) / 3))
"""
# The simple bound, right on every fleet, that checks each request's type but not its length.
TRUSTS_LENGTHS_BOUND = """\
    kinds = check_fleet(fleet)
    fastest = []
    for request_type, length in requests:
        check_request((request_type, 1))
        fastest.append(length * min(FACTORS[kind][request_type] for kind in kinds))
    return float(max(max(fastest, default=0), sum(fastest) / len(kinds)))
"""

# (id, function, old text, new text, words the feedback has, points lost: exact, or None for
# "some"). The exercise that loses is always ``function``.
CONTRACT_MISTAKES = [
    # lesson 1
    ("time-as-float", "processing_time", "return length * FACTORS[kind][request_type]",
     "return float(length * FACTORS[kind][request_type])",
     ["returns a float", "processing_time returns an int"], 0.5),
    ("length-only-checked-below-1", "processing_time",
     "request_type, length = check_request((request_type, length))",
     "if request_type not in REQUEST_TYPES or length < 1:\n"
     "        raise ValueError(f'bad request {request_type!r}')",
     ["accepts a float length (2.0): lengths must be ints", "bool True"], 0.75),
    ("matrix-of-floats", "cost_matrix", "[FACTORS[kind][t] for kind in kinds]",
     "[float(FACTORS[kind][t]) for kind in kinds]",
     ["returns a list holding floats", "a dict of lists of ints"], 0.5),
    ("matrix-keys-out-of-order", "cost_matrix", "for t in REQUEST_TYPES}",
     "for t in sorted(REQUEST_TYPES)}", ["the keys go V, P, M"], 0.5),
    ("matrix-empties-the-fleet", "cost_matrix", "    kinds = check_fleet(fleet)\n",
     "    servers = list(fleet) if isinstance(fleet, tuple) else fleet\n    kinds = []\n"
     "    while servers:\n        kinds.append(servers.pop(0))\n    kinds = check_fleet(kinds)\n",
     ["mutated the caller's fleet list"], 0.5),
    # lesson 2
    ("makespan-int", "makespan", "return float(max(finish_times, default=0.0))",
     "return max(finish_times, default=0)", ["returns an int; makespan returns a float"], 0.25),
    ("makespan-sorts-the-list", "makespan", "return float(max(finish_times, default=0.0))",
     "times = list(finish_times) if isinstance(finish_times, tuple) else finish_times\n"
     "    times.sort()\n    return float(times[-1]) if times else 0.0",
     ["mutated the caller's finish_times list"], 0.25),
    ("makespan-copy-method", "makespan", "return float(max(finish_times, default=0.0))",
     "return float(max(finish_times.copy(), default=0.0))",
     ["raised AttributeError", "finish_times as a tuple"], 0.125),
    ("choose-moves-idle-servers-to-now", "choose_server",
     "times = _check_times(finish_times, kinds)",
     "times = finish_times if isinstance(finish_times, list) else list(finish_times)\n"
     "    _check_times(times, kinds)\n    for server in range(len(times)):\n"
     "        times[server] = max(now, times[server])",
     ["mutated the caller's finish_times list"], 0.5),
    ("choose-returns-bool", "choose_server", "return best_server",
     "return bool(best_server) if best_server < 2 else best_server",
     ["returned a bool, not a server index"], None),  # a bool is never judged a number
    ("choose-trusts-lengths", "choose_server", CHECKS_OWN_REQUEST,
     "request_type, length = request\n    check_request((request_type, 1))\n"
     "    processing_time = lambda kind, type_, length: length * FACTORS[kind][type_]",
     ["accepts a float length (2.0)", "must be ints"], 0.125),
    ("choose-ignores-the-clock-on-music-fleets", "choose_server",
     "done = max(now, times[server])", "done = times[server]",
     ["fleets with several Music servers", "ignores the clock"], None),
    ("choose-music-server-last", "choose_server", "kinds = check_fleet(fleet)",
     "kinds = check_fleet(fleet)\n    kinds = ('VP',) * (len(kinds) - 1) + ('M',)",
     ["fleets with several Music servers", "the last server as the only Music server"], None),
    ("greedy-pops-the-requests", "greedy_assign", "for request in requests:",
     "requests = requests if isinstance(requests, list) else list(requests)\n"
     "    while requests:\n        request = requests.pop(0)",
     ["mutated the caller's requests list"], 0.25),
    ("greedy-music-server-last", "greedy_assign", "kinds = check_fleet(fleet)",
     "kinds = check_fleet(fleet)\n    kinds = ('VP',) * (len(kinds) - 1) + ('M',)",
     ["fleets with several Music servers"], None),
    ("finish-times-ints", "finish_times", "times = [0.0] * len(kinds)",
     "times = [0] * len(kinds)", ["returns a list holding ints", "a list of floats"], 0.25),
    ("finish-times-trusts-lengths", "finish_times",
     "times[server] += processing_time(kinds[server], *check_request(request))",
     "request_type, length = request\n        check_request((request_type, 1))\n"
     "        times[server] += length * FACTORS[kinds[server]][request_type]",
     ["accepts a float length (2.0)", "must be ints"], 0.125),
    ("finish-times-copy-method", "finish_times", "    times = [0.0] * len(kinds)\n",
     "    times = [0.0] * len(kinds)\n    assignment = assignment.copy()\n",
     ["raised AttributeError", "assignment as a tuple"], 0.25),
    # lesson 3
    ("bound-trusts-lengths", "lower_bound", SOLUTION, SOLUTION + TRUSTS_LENGTHS_BOUND,
     ["accepts a float length (2.0)", "accepts the bool True"], 0.25),
    ("bound-divides-by-three", "lower_bound", SOLUTION, SOLUTION + DIVIDES_BY_THREE,
     ["fleets with several Music servers", "fleets with several VP servers",
      "one server, and five servers"], None),
    ("bound-one-music-server", "lower_bound", SOLUTION, SOLUTION + ONE_MUSIC_SERVER_BOUND,
     ["fleets with several Music servers", "not a lower bound"], None),
    ("bound-int", "lower_bound", "return float(_relaxed_optimum(batch))",
     "return _relaxed_optimum(batch)", ["returns an int; lower_bound returns a float"], 0.25),
    ("bound-sorts-the-requests", "lower_bound", SOLUTION,
     SOLUTION + "    if isinstance(requests, list):\n"
     "        requests.sort(key=lambda request: request[0])\n",
     ["mutated the caller's requests list"], 0.25),
    ("optimum-float-value", "optimal_makespan", "return best_makespan, best",
     "return float(best_makespan), best", ["returns the value as a float"], 0.25),
    ("optimum-reverses-the-requests", "optimal_makespan", SOLUTION,
     SOLUTION + "    if isinstance(requests, list):\n        requests.reverse()\n"
     "        requests = requests[::-1]\n", ["mutated the caller's requests list"], 0.25),
    ("optimum-brute-force", "optimal_makespan", SOLUTION, SOLUTION + BRUTE_FORCE_OPTIMUM,
     ["correct but too slow on 40 requests (budget 1 s)", "servers of one kind"], 1.0),
    ("optimum-textbook-branch-and-bound", "optimal_makespan", SOLUTION,
     SOLUTION + TEXTBOOK_BRANCH_AND_BOUND,
     ["mixed fleets, within 1 s each (-0.75): correct but too slow on 40 requests"], 0.75),
]  # fmt: skip


def lesson_of(function: str) -> str:
    return next(lesson for lesson, names in LESSONS.items() if function in names)


def grade_mistake(function: str, old: str, new: str) -> dict[str, tuple[float, float, list]]:
    """Grade the function's lesson with the mistake: exercise -> (score, max, feedback)."""
    source = mutable_functions()[function][1]
    assert old in source, f"{old!r} not in the reference {function}"
    student = InProcessStudent({function: source.replace(old, new, 1)})
    return {r.exercise: (r.score, r.max_score, r.feedback)
            for r in grade_lesson(lesson_of(function), student)}  # fmt: skip


@pytest.mark.parametrize(
    ("function", "old", "new", "words", "lost"),
    [pytest.param(*mistake[1:], id=mistake[0]) for mistake in CONTRACT_MISTAKES],
)
def test_a_broken_contract_costs_its_own_points(function, old, new, words, lost):
    results = grade_mistake(function, old, new)
    score, max_score, feedback = results[function]
    text = " ".join(feedback)
    for word in words:
        assert word in text, f"{word!r} missing from: {text}"
    if lost is None:
        assert score < max_score, text
    else:
        assert score == pytest.approx(max_score - lost), text
    for exercise, (other_score, other_max, _) in results.items():
        if exercise not in (function, "greedy_assign"):
            assert other_score == other_max, (exercise, results[exercise])


def test_every_graded_exercise_of_lessons_1_to_3_has_a_broken_contract_case():
    covered = {mistake[1] for mistake in CONTRACT_MISTAKES}
    for lesson in ("01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan"):
        assert set(LESSONS[lesson]) <= covered


def test_the_mutation_only_shows_at_a_clock_after_zero():
    """The mutating choose_server above leaves the list alone at now=0: only the clocked cases
    catch it, so they must run through the harness too."""
    _, function, old, new, *_ = next(m for m in CONTRACT_MISTAKES
                                     if m[0] == "choose-moves-idle-servers-to-now")  # fmt: skip
    source = mutable_functions()[function][1].replace(old, new, 1)
    namespace = InProcessStudent({function: source}).namespace
    times = [3, 0, 1.5]
    namespace["choose_server"](times, ("V", 2), ("VP", "VP", "M"), 0.0)
    assert times == [3, 0, 1.5]
    namespace["choose_server"](times, ("V", 2), ("VP", "VP", "M"), 2.0)
    assert times == [3, 2.0, 2.0]


def test_points_per_exercise_are_unchanged():
    points = {e.name: e.points for exercises in RUBRIC.values() for e in exercises}
    assert {name: points[name] for name in (
        "processing_time", "cost_matrix", "makespan", "choose_server", "greedy_assign",
        "finish_times", "lower_bound", "optimal_makespan")} == {
        "processing_time": 5, "cost_matrix": 5, "makespan": 1, "choose_server": 4,
        "greedy_assign": 3, "finish_times": 2, "lower_bound": 4, "optimal_makespan": 6}  # fmt: skip


def test_the_reference_solves_every_large_batch_far_within_the_budget():
    """The budget is 1 s; the reference must stay under a tenth of it on every hidden batch of
    40 (best of three runs, so a busy machine does not decide), about a millisecond here, and on
    the stubborn batches that reach the solver's patient path (about 10 to 40 ms)."""
    large = lesson03.INSTANCES["large"] + lesson03.INSTANCES["large, one kind"]
    assert len(large) >= 7
    assert all(case in lesson03.INSTANCES["large"] for case in lesson03.STUBBORN)
    for args in large:
        stubborn = args in lesson03.STUBBORN + lesson03.STUBBORN_ONE_KIND
        assert len(args[0]) == lesson03.LARGE or stubborn
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            optimal_makespan(*args)
            seconds.append(time.perf_counter() - started)
        assert min(seconds) < lesson03.BUDGET / 10, seconds


def test_every_hidden_optimum_agrees_with_an_independent_solver():
    """The expected answers come from the reference solver; CP-SAT, which shares no code with
    it, must prove the same optimum on every hidden batch of lesson 3, the large ones too."""
    cases = [*(case for group in lesson03.INSTANCES.values() for case in group),
             *(case for group in lesson03.BOUND_INSTANCES.values() for case in group)]
    for args in cases:
        requests, fleet = (*args, lesson03.FLEET)[:2]
        solution = solve_cp_sat(requests, fleet, time_limit=60)
        assert solution.proven_optimal and solution.makespan == lesson03.optimum(*args), args


def test_every_hidden_greedy_choice_agrees_with_the_rule_written_out():
    """Lesson 2's expected choices come from the reference; greedy_rules.choice writes DESIGN
    section 4 out separately, and both must agree on every hidden state and batch."""
    for name, cases in lesson02.CHOICE_CASES.items():
        if name not in ("invalid", "typed shapes"):
            for args in cases:
                assert choose_server(*args) == choice(*args), args
    for name, cases in lesson02.ASSIGNMENT_CASES.items():
        if name != "typed shapes":
            for args in cases:
                assert greedy_assign(*args) == lesson02._simulate(choice, *args), args


class CountingStudent:
    """A stand-in whose large calls time out (or answer wrong), counting how often it is asked."""

    def __init__(self, large: str, small_right: bool = True) -> None:
        self.large, self.small_right, self.large_calls = large, small_right, 0

    def has(self, function: str) -> bool:
        return True

    def call(self, function, shapes, *args, timeout=5.0, harness=None):  # noqa: ANN001, ANN201
        try:
            value, assignment = optimal_makespan(*args)
        except ValueError as error:
            raise StudentCallError("raised", "ValueError", str(error), ("Exception",)) from None
        if len(args[0]) == lesson03.LARGE:
            self.large_calls += 1
            assert timeout >= lesson03.BUDGET  # a wall-clock safety net; budgets are CPU time
            if self.large == "slow":
                raise StudentCallError("timeout", message="did not return")
            value += 1  # "wrong"
        elif not self.small_right and len(args[0]) > 5:
            value += 1
        return {"result": [value, assignment], "mutated": []}


def _optimal_makespan_feedback(student: CountingStudent) -> tuple[float, str]:
    result = lesson03.grade_optimal_makespan(student)  # type: ignore[arg-type]
    return result.max_score - result.score, " ".join(result.feedback)


def test_one_slow_call_ends_the_speed_group_without_more_calls():
    student = CountingStudent("slow")
    lost, feedback = _optimal_makespan_feedback(student)
    assert student.large_calls == 2 and lost == 1  # one call per speed group
    assert "correct but too slow on 40 requests (budget 1 s)" in feedback


def test_too_slow_is_told_apart_from_wrong():
    student = CountingStudent("wrong")
    lost, feedback = _optimal_makespan_feedback(student)
    assert lost == 1 and "too slow on" not in feedback and "not its makespan" in feedback
    student = CountingStudent("slow", small_right=False)
    lost, feedback = _optimal_makespan_feedback(student)
    assert "too slow on 40 requests" in feedback and "correct but" not in feedback


def test_an_audit_earns_nothing_without_a_right_answer():
    class Stub:
        def has(self, function: str) -> bool:
            return True

        def call(self, function, shapes, *args, timeout=5.0, harness=None):  # noqa: ANN001, ANN201
            raise StudentCallError("raised", "ValueError", "no", ("Exception",))

    def judge(args: tuple, answer: object) -> Outcome:
        return wrong("raised") if isinstance(answer, StudentCallError) else RIGHT

    groups = [Group("values", 1, [([1],)], judge), unchanged_group(1)]
    result = grade_exercise("x", "f", Stub(), groups, arguments=("finish_times",))  # type: ignore[arg-type]
    assert result.score == 0


# --- through the real sandbox -----------------------------------------------------------------


def test_the_reference_notebooks_keep_full_marks_in_the_sandbox(tmp_path):
    for lesson in ("01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan"):
        notebook = solved_notebook(lesson, tmp_path / f"{lesson}.ipynb")
        with SandboxedStudent(code_cells(notebook), lesson) as student:
            results = grade_lesson(lesson, student)
        assert all(r.passed and not r.feedback for r in results), results


SANDBOXED = {
    "choose-moves-idle-servers-to-now": "02_greedy_balancing",
    "optimum-brute-force": "03_optimal_makespan",
    "bound-one-music-server": "03_optimal_makespan",
}


@pytest.mark.parametrize("mistake_id", list(SANDBOXED))
def test_a_broken_contract_through_the_sandbox(tmp_path, mistake_id):
    _, function, old, new, words, lost = next(m for m in CONTRACT_MISTAKES if m[0] == mistake_id)
    lesson = SANDBOXED[mistake_id]
    if old == SOLUTION:  # a whole new body: in front of the reference's first two lines
        first = "".join(mutable_functions()[function][1].split(SOLUTION)[1].splitlines(True)[:2])
        old, new = first, new.removeprefix(SOLUTION) + first
    notebook = mistaken_notebook(lesson, tmp_path / f"{lesson}.ipynb", old, new)
    started = time.monotonic()
    with SandboxedStudent(code_cells(notebook), lesson) as student:
        results = {r.exercise: r for r in grade_lesson(lesson, student)}
    assert time.monotonic() - started < 60  # one slow call must not eat the notebook's budget
    result = results[function]
    assert all(word in " ".join(result.feedback) for word in words), result.feedback
    if lost is not None:
        assert result.score == pytest.approx(result.max_score - lost), result
    assert all(r.passed for name, r in results.items() if name != function), results


def test_a_few_lucky_answers_of_the_right_type_earn_nothing():
    """A constant is right now and then (6 is M-V-2 and VP-V-6...); the contract groups must not
    pay for those answers alone."""
    lucky = {"processing_time": "def processing_time(*args):\n    return 6\n"}
    result = grade_lesson("01_cost_matrix", InProcessStudent(lucky))[0]
    assert result.score == 0, result
