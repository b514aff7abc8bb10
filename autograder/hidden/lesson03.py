"""Hidden tests of lesson 3 (the exact optimum), 10 points.

Every call of a valid case runs in the contracts harness, so both exercises are also graded on
leaving the caller's lists unchanged and on returning exactly the API's types.

lower_bound (4): never above the true optimum (1) and never below the simple bound
``max(largest fastest time, total fastest time / servers)`` (0.75), on every default-fleet batch
below and 40 more; both at once on fleets with several Music servers (0.5), several VP servers
(0.25), one and five servers (0.25), so that a bound right only on the default fleet (dividing
by 3, assuming one Music server) loses; returns a float (0.25); leaves the caller's requests
unchanged (0.25); requests as tuples and ``Request`` named tuples, fleets as tuples (0.25);
invalid input raises ValueError: unknown type or kind, no server (0.25), lengths 2.0, True,
"3", 0, -1 (0.25).
optimal_makespan (6): small batches on the default fleet (1); batches on which greedy and
longest-first are not optimal (1); batches whose optimum lies at least 2 above the lower bound,
so that stopping at the bound or a search that narrows the gap wrongly shows (1); fleets with
several Music servers (0.5); other fleets, lengths above 9, empty and single batches (0.5);
returns an int value and a list of ints (0.25); tuples and ``Request`` named tuples (0.25);
leaves the caller's requests unchanged (0.25); invalid input: unknown type or kind, no server
(0.125), bad lengths (0.125); and speed, as the lesson promises, 40 requests within 1 s per
call: on servers of one kind (0.25), where a branch and bound that starts from longest-first
and stops at the simple bound finishes at once, and on mixed fleets, where greedy is not optimal
(0.75), which takes a strong bound (a textbook branch and bound with the simple bound does not
finish them in 5 s); the mixed-fleet group also holds three batches of 18 to 22 requests on which
a quick search runs long (and the one-kind group one of 23), so that a solver's fallback for
stubborn targets is graded too. A case is right when the value is the true optimum and the
assignment achieves it; a right value with an assignment that does not achieve it earns half.

Sizes, so that an honest exact solver passes every group but the two speed groups within the
10 s allowed per call, brute force included: at most 11 requests on two servers, 10 on three, 8 on
four, 7 on five, 5 on ten, 6 on one. The 40-request batches are ones the reference solves in
about a millisecond (tests/test_contracts.py checks it stays far below the budget); brute force
would need 3 ** 40 tries. A call over the budget loses its group as "too slow", and the group's
other calls are skipped, so a slow solver costs the notebook about two seconds.
"""

import math
import random
from collections.abc import Sequence
from functools import cache

from autograder.contract import Exercise, ExerciseResult, Student
from autograder.hidden.common import (
    FIVE_SERVERS,
    ONE_SERVER,
    RIGHT,
    SEVERAL_MUSIC,
    SEVERAL_VP,
    TEN_SERVERS,
    Answer,
    Args,
    Group,
    Outcome,
    Response,
    bad_lengths_group,
    call_failure,
    exactly,
    expect_value_error,
    grade_exercise,
    is_index,
    is_number,
    list_of,
    partly,
    returns_group,
    type_name,
    unchanged_group,
    wrong,
)
from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES
from minilb.optimal import lower_bound, optimal_makespan
from minilb.scheduling import finish_times, greedy_assign

LESSON = "03_optimal_makespan"
FLEET = list(DEFAULT_FLEET)
SOLVER_TIMEOUT = 10.0
LARGE = 40  # requests in a batch of the speed group
BUDGET = 1.0  # seconds per call on those batches: the lesson's promise
TOO_SLOW = f"too slow on {LARGE} requests (budget {BUDGET:g} s)"
ARGUMENTS = ("requests", "fleet")
# Requests per batch, by fleet size, that brute force tries in well under a second each.
SMALL_SIZES = {1: 6, 2: 10, 3: 9, 4: 8, 5: 7, len(TEN_SERVERS): 5}


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


def _music_heavy(rng: random.Random, size: int, longest: int = 9) -> list[list]:
    """Mostly music: it shows a bound or solver that counts the Music servers wrong."""
    return [[rng.choice("MMMMPV"), rng.randint(1, longest)] for _ in range(size)]


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
    music = [(_music_heavy(rng, SMALL_SIZES[len(fleet)]), fleet) for fleet in SEVERAL_MUSIC]
    music += [(_batch(rng, SMALL_SIZES[len(fleet)] - 1), fleet) for fleet in SEVERAL_MUSIC]
    fleets = [*SEVERAL_VP, *ONE_SERVER, *FIVE_SERVERS, TEN_SERVERS]
    other = [(_batch(rng, SMALL_SIZES[len(fleet)]), fleet) for fleet in fleets]
    other += [(_batch(rng, rng.randint(4, 8), 12), ["VP", "M"]) for _ in range(4)]
    other += [([],), ([["P", 7]],), (_batch(rng, 7, longest=30),), (_batch(rng, 6, 60), FLEET)]
    # identical servers: a search that mixes up which servers are interchangeable prunes wrongly
    other += [([["M", 5], ["V", 6], ["V", 15], ["V", 12], ["P", 21], ["V", 5], ["V", 6],
                ["V", 13], ["V", 9], ["M", 13], ["V", 50]], ["M", "M"])]  # fmt: skip
    # lengths so huge that a search cannot tabulate every sum of processing times
    other += [([["V", 10**8], ["P", 10**8], ["M", 3]],)]
    # a makespan of 1: each server's room is a single time unit
    other += [([["V", 1], ["V", 1]], ["VP", "VP"])]
    typed = [(_batch(rng, 6),), (_batch(rng, 5),), (_batch(rng, 6),),
             (_batch(rng, 5), ["M", "VP", "M"]), (_batch(rng, 6), ["VP", "M"])]  # fmt: skip
    return {
        "small": small,
        "heuristics fail": heuristics_fail,
        "above the bound": above_bound,
        "several music": music,
        "other": other,
        "typed": typed,
        "large, one kind": [(_batch(rng, LARGE), fleet)
                            for fleet in (["VP", "VP", "VP"], ["M", "M"], ["VP", "VP"])]
                           + STUBBORN_ONE_KIND,
        "large": large_instances(),
    }


TYPED_SHAPES = [("tuples",), ("named",), ("named-tuple",), ("same", "tuple"),
                ("named", "tuple")]  # fmt: skip


def large_instances() -> list[Args]:
    """Batches of 40 that greedy gets wrong, on the default fleet and two others: exact answers
    need a real algorithm. The reference solves each in about a millisecond."""
    rng = random.Random(20240507)
    fleets = [FLEET, FLEET, FLEET, FIVE_SERVERS[0], SEVERAL_MUSIC[0]]
    cases: list[Args] = []
    for fleet in fleets:
        while True:
            requests = _batch(rng, LARGE)
            if schedule_makespan(requests, greedy_assign(requests, fleet), fleet) > optimum(
                requests, fleet
            ):
                break
        cases.append((requests,) if fleet is FLEET else (requests, fleet))
    return cases + STUBBORN


# Batches of 18 to 22 on two-kind fleets where a quick search runs long and the knapsack check
# of step 3 decides some targets (a solver that gives up, or whose whole-request check is off by
# one, answers wrongly). The reference solves each in about 10 ms.
STUBBORN: list[Args] = [
    ([["V", 24], ["P", 39], ["V", 7], ["V", 7], ["M", 28], ["V", 37], ["M", 25], ["V", 46],
      ["V", 59], ["M", 6], ["P", 17], ["P", 58], ["M", 48], ["M", 9], ["P", 19], ["V", 4],
      ["P", 8], ["V", 9]], ["VP", "VP", "M", "M"]),
    ([["V", 42], ["M", 43], ["M", 7], ["P", 3], ["V", 10], ["P", 9], ["V", 1], ["V", 36],
      ["M", 17], ["M", 18], ["P", 19], ["V", 9], ["M", 27], ["M", 55], ["P", 20], ["V", 12],
      ["V", 19], ["V", 18], ["V", 15], ["M", 16], ["V", 6]], ["VP", "VP", "M"]),
    ([["V", 40], ["V", 17], ["V", 32], ["M", 20], ["V", 43], ["V", 50], ["V", 42], ["P", 17],
      ["V", 16], ["V", 58], ["V", 19], ["M", 53], ["P", 22], ["P", 57], ["V", 60], ["M", 26],
      ["M", 12], ["M", 15], ["V", 43], ["P", 18], ["P", 41], ["M", 14]],
     ["M", "VP", "VP", "M", "M"]),
]  # fmt: skip
# The same on servers of one kind (23 requests on four VP servers, about 25 ms).
STUBBORN_ONE_KIND: list[Args] = [
    ([["P", 15], ["M", 19], ["M", 5], ["M", 2], ["P", 53], ["P", 61], ["P", 28], ["V", 13],
      ["V", 2], ["V", 15], ["M", 17], ["P", 6], ["P", 70], ["M", 58], ["M", 16], ["P", 46],
      ["M", 14], ["M", 18], ["M", 87], ["M", 27], ["M", 47], ["M", 15], ["P", 29]],
     ["VP", "VP", "VP", "VP"]),
]  # fmt: skip


def bound_instances() -> dict[str, list[Args]]:
    """More batches for lower_bound alone: cheap to answer, and bounds fail in odd places."""
    rng = random.Random(20240506)

    def on(fleets: list[list[str]], count: int, heavy: bool = False) -> list[Args]:
        make = _music_heavy if heavy else _batch
        return [(make(rng, rng.randint(2, 12), rng.choice([3, 9, 20])), rng.choice(fleets))
                for _ in range(count)]  # fmt: skip

    return {
        "default": [(_batch(rng, rng.randint(1, 12), rng.choice([3, 9, 20])),)
                    for _ in range(40)],
        "several music": on(SEVERAL_MUSIC, 12, heavy=True) + on(SEVERAL_MUSIC, 8),
        "several vp": on(SEVERAL_VP, 12),
        "one and five": on(ONE_SERVER, 6) + on(FIVE_SERVERS, 10),
    }  # fmt: skip


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


def _judge_bound(args: Args, answer: Answer) -> Outcome:
    """Both promises at once (for the fleet groups)."""
    above = _judge_not_above(args, answer)
    return above if above.mistake else _judge_not_below(args, answer)


def grade_lower_bound(student: Student) -> ExerciseResult:
    default = [case for group in INSTANCES.values() for case in group if len(case) == 1]
    default += BOUND_INSTANCES["default"]
    invalid = [([["X", 2]],), ([["M", 2]], []), ([["P", 1]], ["VP", "Q"])]
    groups = [
        Group("never above the optimum (default fleet)", 1, default, _judge_not_above),
        Group("at least the simple bound (default fleet)", 0.75, default, _judge_not_below),
        Group("fleets with several Music servers", 0.5,
              INSTANCES["several music"] + BOUND_INSTANCES["several music"], _judge_bound),
        Group("fleets with several VP servers", 0.25, BOUND_INSTANCES["several vp"],
              _judge_bound),
        Group("one server, and five servers", 0.25, BOUND_INSTANCES["one and five"],
              _judge_bound),
        returns_group(0.25, "returns a float", exactly("lower_bound", float, "a float")),
        unchanged_group(0.25, "leaves the caller's requests unchanged"),
        Group("requests as tuples and Request named tuples, fleets as tuples", 0.25,
              INSTANCES["typed"], _judge_bound, shapes=TYPED_SHAPES),
        Group("invalid input (unknown type or kind, no server)", 0.25, invalid,
              expect_value_error("invalid input"), invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.25,
                          lambda length: ([["V", 2], ["M", length]],),
                          lambda requests, *rest: requests[-1][1]),
    ]  # fmt: skip
    return grade_exercise(LESSON, "lower_bound", student, groups, arguments=ARGUMENTS)


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


def _optimum_types(answer: Answer) -> str:
    wanted = "a pair (int value, list of ints)"
    if not isinstance(answer, list) or len(answer) != 2:
        return f"returns {type_name(answer)}; optimal_makespan returns {wanted}"
    value, assignment = answer
    if type(value) is not int:
        return f"returns the value as {type_name(value)}; optimal_makespan returns an int value"
    return list_of("optimal_makespan", int, wanted)(assignment)


def grade_optimal_makespan(student: Student) -> ExerciseResult:
    invalid = [([["X", 2]],), ([["M", 2]], []), ([["P", 1]], ["VP", "Q"])]
    groups = [
        Group("small batches on the default fleet", 1, INSTANCES["small"], _judge_optimum),
        Group("batches on which greedy and longest-first are not optimal", 1,
              INSTANCES["heuristics fail"], _judge_optimum),
        Group("batches whose optimum lies well above the lower bound", 1,
              INSTANCES["above the bound"], _judge_optimum),
        Group("fleets with several Music servers", 0.5, INSTANCES["several music"],
              _judge_optimum),
        Group("other fleets, lengths above 9, empty and single batches", 0.5,
              INSTANCES["other"], _judge_optimum),
        returns_group(0.25, "returns an int value and a list of ints", _optimum_types),
        Group("requests as tuples and Request named tuples, fleets as tuples", 0.25,
              INSTANCES["typed"], _judge_optimum, shapes=TYPED_SHAPES),
        unchanged_group(0.25, "leaves the caller's requests unchanged"),
        Group("invalid input (unknown type or kind, no server)", 0.125, invalid,
              expect_value_error("invalid input"), invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.125,
                          lambda length: ([["V", 2], ["M", length]],),
                          lambda requests, *rest: requests[-1][1]),
        Group(f"batches of {LARGE} requests on servers of one kind, within {BUDGET:g} s each",
              0.25, INSTANCES["large, one kind"], _judge_optimum, budget=BUDGET,
              too_slow=TOO_SLOW),
        Group(f"batches of {LARGE} requests on mixed fleets, within {BUDGET:g} s each", 0.75,
              INSTANCES["large"], _judge_optimum, budget=BUDGET, too_slow=TOO_SLOW),
    ]  # fmt: skip
    return grade_exercise(LESSON, "optimal_makespan", student, groups, _diagnose_optimum,
                          timeout=SOLVER_TIMEOUT, arguments=ARGUMENTS)


INSTANCES = instances()
BOUND_INSTANCES = bound_instances()

EXERCISES = [
    Exercise(LESSON, "lower_bound", 4, grade_lower_bound),
    Exercise(LESSON, "optimal_makespan", 6, grade_optimal_makespan),
]
