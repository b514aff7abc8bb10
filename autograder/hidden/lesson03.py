"""Hidden tests of lesson 3 (the exact optimum), 10 points.

lower_bound (4): never above the true optimum (2) and never below the simple bound
``max(largest fastest time, total fastest time / servers)`` (1.5), on every instance below and
40 more random batches; invalid input raises ValueError (0.5).
optimal_makespan (6): small batches on the default fleet (2); batches on which greedy and
longest-first are not optimal (1.5); batches whose optimum lies at least 2 above the lower bound,
so that stopping at the bound or a search that narrows the gap wrongly shows (1.5); other
fleets, lengths above 9, empty and single batches (1). A case is right when the value is the
true optimum and the assignment achieves it; a right value with an assignment that does not
achieve it earns half.

Sizes, so that an honest exact solver (brute force with a little pruning, or branch and bound)
passes within the 10 s allowed per call: at most 10 requests on three servers, 8 on two or four
servers, 5 on ten servers, 6 on one server.
"""

import math
import random
from collections.abc import Sequence
from functools import cache

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden.common import (
    OTHER_FLEETS,
    RIGHT,
    TEN_SERVERS,
    Answer,
    Args,
    Group,
    Outcome,
    Response,
    call_failure,
    expect_value_error,
    grade_exercise,
    is_index,
    is_number,
    partly,
    wrong,
)
from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES
from minilb.optimal import lower_bound, optimal_makespan
from minilb.scheduling import finish_times, greedy_assign

LESSON = "03_optimal_makespan"
FLEET = list(DEFAULT_FLEET)
SOLVER_TIMEOUT = 10.0


def _batch(rng: random.Random, size: int, longest: int = 9) -> list[list]:
    return [[rng.choice(REQUEST_TYPES), rng.randint(1, longest)] for _ in range(size)]


@cache
def _optimum(requests: tuple[tuple[str, int], ...], fleet: tuple[str, ...]) -> int:
    return optimal_makespan(requests, fleet)[0]


def optimum(requests: list, fleet: Sequence[str] = FLEET) -> int:
    """The true optimum (the reference solver), computed once per instance."""
    return _optimum(tuple(tuple(request) for request in requests), tuple(fleet))


def schedule_makespan(requests: list, assignment: list, fleet: Sequence[str] = FLEET) -> float:
    return max(finish_times(requests, assignment, fleet), default=0.0)


def longest_first_makespan(requests: list, fleet: Sequence[str] = FLEET) -> float:
    """LPT, the heuristic students most often take for the optimum."""
    loads = [0] * len(fleet)
    fastest = {t: min(FACTORS[k][t] for k in fleet) for t in REQUEST_TYPES}
    for request_type, length in sorted(requests, key=lambda r: -r[1] * fastest[r[0]]):
        finish = [
            load + length * FACTORS[kind][request_type]
            for load, kind in zip(loads, fleet, strict=True)
        ]
        server = finish.index(min(finish))
        loads[server] = finish[server]
    return max(loads, default=0)


def simple_bound(requests: list, fleet: Sequence[str] = FLEET) -> float:
    fastest = [length * min(FACTORS[k][t] for k in fleet) for t, length in requests]
    return max(max(fastest, default=0), sum(fastest) / len(fleet))


def instances() -> dict[str, list[Args]]:
    rng = random.Random(20240505)
    small = [(_batch(rng, size),) for size in (3, 4, 5, 6, 7, 8, 9, 10)]
    heuristics_fail = []
    while len(heuristics_fail) < 6:
        requests = _batch(rng, rng.randint(5, 9))
        best = optimum(requests)
        greedy = schedule_makespan(requests, greedy_assign(requests))
        if best < greedy and best < longest_first_makespan(requests):
            heuristics_fail.append((requests,))
    above_bound = []
    while len(above_bound) < 6:
        requests = _batch(rng, rng.randint(4, 9), rng.choice([9, 20]))
        if optimum(requests) >= math.ceil(lower_bound(requests)) + 2:
            above_bound.append((requests,))
    sizes = {1: 6, 2: 8, 4: 8, len(TEN_SERVERS): 5}
    other = [(_batch(rng, sizes[len(fleet)]), fleet) for fleet in OTHER_FLEETS]
    other += [(_batch(rng, rng.randint(4, 8), 12), ["VP", "M"]) for _ in range(6)]
    other += [([],), ([["P", 7]],), (_batch(rng, 7, longest=30),), (_batch(rng, 6, 60), FLEET)]
    return {
        "small": small,
        "heuristics fail": heuristics_fail,
        "above the bound": above_bound,
        "other": other,
    }


# --- lower_bound ------------------------------------------------------------------------------


def _judge_not_above(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if not is_number(answer):
        return wrong("should return a number")
    if answer > optimum(*args) + 1e-9:
        return wrong("your bound is above the optimum on some batch: it is not a lower bound")
    return RIGHT


def _judge_not_below(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if not is_number(answer) or answer < simple_bound(*args) - 1e-9:
        return wrong(
            "your bound is weaker than max(largest fastest time, total fastest time / servers)"
        )
    return RIGHT


def grade_lower_bound(student: Student) -> ExerciseResult:
    every = [case for group in INSTANCES.values() for case in group] + BOUND_INSTANCES
    invalid = [([["X", 2]],), ([["V", 0]],), ([["M", 2]], []), ([["P", 1]], ["VP", "Q"])]
    groups = [
        Group("never above the optimum", 2, every, _judge_not_above),
        Group("at least the simple bound", 1.5, every, _judge_not_below),
        Group("invalid input (unknown type or kind, length 0, no server)", 0.5, invalid,
              expect_value_error("invalid input"), invalid_inputs=True),
    ]  # fmt: skip
    return grade_exercise(LESSON, "lower_bound", student, groups)


# --- optimal_makespan -------------------------------------------------------------------------


def _judge_optimum(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    requests, fleet = (*args, FLEET)[:2]
    if not isinstance(answer, list) or len(answer) != 2 or not is_number(answer[0]):
        return wrong("should return a pair (makespan, assignment)")
    value, assignment = answer
    if (
        not isinstance(assignment, list)
        or len(assignment) != len(requests)
        or not all(is_index(s) and 0 <= s < len(fleet) for s in assignment)
    ):
        return wrong("the assignment needs one server index per request")
    best, achieved = optimum(*args), schedule_makespan(requests, assignment, fleet)
    if value == best and achieved == best:
        return RIGHT
    if value == best:
        return partly("your makespan is right but your assignment does not achieve it")
    if achieved == best:
        return wrong("your assignment is optimal but the value returned is not its makespan")
    if value < best:
        return wrong("you claim a makespan below the optimum: no assignment achieves it")
    return wrong("not optimal: some assignment has a smaller makespan")


def _diagnose_optimum(responses: list[Response]) -> list[str]:
    values = [
        (r.answer[0], r.args)
        for r in responses
        if isinstance(r.answer, list) and r.answer and is_number(r.answer[0])
    ]
    heuristics = [
        (lambda args: schedule_makespan(args[0], greedy_assign(*args), (*args, FLEET)[1]),
         "your result is the greedy schedule: greedy is a heuristic, not always optimal"),
        (lambda args: longest_first_makespan(*args),
         "your result is the longest-first heuristic (LPT): good, but not always optimal"),
    ]  # fmt: skip
    for heuristic, message in heuristics:
        if values and all(value == heuristic(args) for value, args in values):
            return [message + "; search all assignments (with pruning) to be exact"]
    return []


def grade_optimal_makespan(student: Student) -> ExerciseResult:
    groups = [
        Group("small batches on the default fleet", 2, INSTANCES["small"], _judge_optimum),
        Group("batches on which greedy and longest-first are not optimal", 1.5,
              INSTANCES["heuristics fail"], _judge_optimum),
        Group("batches whose optimum lies well above the lower bound", 1.5,
              INSTANCES["above the bound"], _judge_optimum),
        Group("other fleets, lengths above 9, empty and single batches", 1,
              INSTANCES["other"], _judge_optimum),
    ]  # fmt: skip
    return grade_exercise(
        LESSON, "optimal_makespan", student, groups, _diagnose_optimum, timeout=SOLVER_TIMEOUT
    )


def bound_instances(count: int = 40) -> list[Args]:
    """More batches for lower_bound alone: cheap to answer, and bounds fail in odd places."""
    rng = random.Random(20240506)
    fleets = [FLEET, *OTHER_FLEETS[:4]]
    return [(_batch(rng, rng.randint(1, 9), rng.choice([3, 9, 20])), rng.choice(fleets))
            for _ in range(count)]  # fmt: skip


INSTANCES = instances()
BOUND_INSTANCES = bound_instances()

EXERCISES = [
    Exercise(LESSON, "lower_bound", 4, grade_lower_bound),
    Exercise(LESSON, "optimal_makespan", 6, grade_optimal_makespan),
]
