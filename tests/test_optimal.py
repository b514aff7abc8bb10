"""minilb.optimal: exact against brute force and two general solvers; bounds always valid."""

import itertools
import random
from math import ceil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from independent_solvers import solve_cp_sat, solve_highs

from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES, SERVER_KINDS, Request
from minilb.optimal import lower_bound, optimal_makespan
from minilb.scheduling import finish_times, greedy_assign
from minilb.timeline import Schedule

FLEETS = [
    DEFAULT_FLEET,
    ("VP",),
    ("M", "M"),
    ("VP", "M", "M", "VP"),
    ("VP", "VP", "VP", "M", "M"),
    ("VP",) * 10,
]


def brute_force(requests, fleet):
    """Smallest makespan over every assignment, written as plainly as possible.

    The only shortcut: a request never opens a second *empty* server of a kind when an earlier
    empty server of that kind exists (the two choices mirror each other).
    """
    best = None

    def place(index, loads):
        nonlocal best
        if index == len(requests):
            best = max(loads) if best is None else min(best, max(loads))
            return
        request_type, length = requests[index]
        empty_kinds_seen = set()
        for server, kind in enumerate(fleet):
            if loads[server] == 0:
                if kind in empty_kinds_seen:
                    continue
                empty_kinds_seen.add(kind)
            loads[server] += length * FACTORS[kind][request_type]
            place(index + 1, loads)
            loads[server] -= length * FACTORS[kind][request_type]

    place(0, [0] * len(fleet))
    return best


def simple_bound(requests, fleet):
    fastest = [min(length * FACTORS[kind][t] for kind in fleet) for t, length in requests]
    return max(max(fastest), sum(fastest) / len(fleet))


def check_optimum(requests, fleet, expected):
    value, assignment = optimal_makespan(requests, fleet)
    assert value == expected, f"{requests} on {fleet}: got {value}, optimum is {expected}"
    assert isinstance(value, int) and len(assignment) == len(requests)
    assert Schedule.from_assignment(requests, assignment, fleet).makespan == value
    return value


def random_batch(rng, size, longest):
    return [(rng.choice(REQUEST_TYPES), rng.randint(1, longest)) for _ in range(size)]


def test_every_small_batch_on_the_default_fleet_matches_brute_force():
    items = [(t, length) for t in REQUEST_TYPES for length in (1, 2, 3, 5)]
    gaps = 0
    for size in range(1, 6):
        for requests in itertools.combinations_with_replacement(items, size):
            requests = list(requests)
            value = check_optimum(requests, DEFAULT_FLEET, brute_force(requests, DEFAULT_FLEET))
            assert simple_bound(requests, DEFAULT_FLEET) <= lower_bound(requests) <= value
            gaps += lower_bound(requests) < value
    assert gaps > 0, "no instance exercised the search (every bound was tight)"


@pytest.mark.parametrize("fleet", FLEETS, ids="-".join)
def test_random_batches_up_to_8_requests_match_brute_force(fleet):
    rng = random.Random(f"brute {fleet}")
    for _ in range(150):
        requests = random_batch(rng, rng.randint(1, 8), rng.choice((3, 9, 30)))
        value = check_optimum(requests, fleet, brute_force(requests, fleet))
        assert simple_bound(requests, fleet) <= lower_bound(requests, fleet) <= value


@pytest.mark.parametrize(
    "requests, fleet, expected",
    [
        ([("V", 3), ("V", 3), ("V", 2), ("V", 2), ("V", 2)], ("VP", "VP"), 6),  # a perfect split
        ([("V", 5)] * 3, ("VP", "VP"), 10),  # two of three must share
        ([("P", 2)] * 4, ("VP", "VP", "M"), 4),  # M takes one at twice the time
        ([("M", 7), ("M", 7), ("V", 1)], ("M",), 17),  # Video is slow on M
        ([("V", 100), ("M", 1)], ("VP", "M", "M", "VP"), 100),
    ],
)
def test_hand_made_instances(requests, fleet, expected):
    assert brute_force(requests, fleet) == expected
    check_optimum(requests, fleet, expected)


@pytest.mark.parametrize("size", [10, 25, 40, 60])
def test_random_batches_match_cp_sat_and_highs(size):
    rng = random.Random(f"solvers {size}")
    for fleet in (DEFAULT_FLEET, ("VP", "M", "M", "VP")):
        requests = random_batch(rng, size, rng.choice((9, 100)))
        cp_sat = solve_cp_sat(requests, fleet, time_limit=60)
        assert cp_sat.proven_optimal
        check_optimum(requests, fleet, cp_sat.makespan)
        if size <= 25:  # HiGHS slows down on the larger ones; CP-SAT covers them
            highs = solve_highs(requests, fleet, time_limit=60)
            assert highs.proven_optimal and highs.makespan == cp_sat.makespan


@pytest.mark.parametrize(
    "fleet, seed, size",
    [(DEFAULT_FLEET, 8, 38), (DEFAULT_FLEET, 42, 42), (("VP", "M", "M", "VP"), 31, 31)],
)
def test_batches_whose_bound_is_not_tight_match_cp_sat(fleet, seed, size):
    """Found by a search over seeds: the optimum is at least 2 above the relaxation bound, so
    the solver must prove some makespans impossible (this runs its knapsack check too)."""
    requests = random_batch(random.Random(f"stubborn {seed}"), size, 100)
    value = check_optimum(requests, fleet, solve_cp_sat(requests, fleet, 60).makespan)
    assert lower_bound(requests, fleet) <= value - 2


@pytest.mark.parametrize("fleet", [DEFAULT_FLEET, ("VP", "M", "M", "VP")], ids="-".join)
def test_huge_lengths_match_brute_force(fleet):
    """Lengths far beyond what the solver's bitsets and knapsack table may hold in memory."""
    rng = random.Random(f"huge {fleet}")
    for _ in range(10):
        requests = random_batch(rng, rng.randint(1, 7), 10**12)
        check_optimum(requests, fleet, brute_force(requests, fleet))


def near_equal_batch(rng, size, shortest=1000, longest=1100):
    return [(rng.choice(REQUEST_TYPES), rng.randint(shortest, longest)) for _ in range(size)]


@pytest.mark.parametrize("seed", range(3))
def test_near_equal_long_jobs_match_cp_sat_and_highs(seed):
    """Dozens of requests whose lengths differ by a few percent: the relaxation bound is far
    from the optimum, so the knapsack bound and the M group's share must do the work."""
    requests = near_equal_batch(random.Random(f"near {seed}"), 60)
    cp_sat = solve_cp_sat(requests, DEFAULT_FLEET, time_limit=60)
    assert cp_sat.proven_optimal
    value = check_optimum(requests, DEFAULT_FLEET, cp_sat.makespan)
    assert lower_bound(requests) < value
    highs = solve_highs(requests, DEFAULT_FLEET, time_limit=60)
    assert highs.proven_optimal and highs.makespan == value


@pytest.mark.parametrize("seed, longest", [(0, 10**6), (1, 10**6), (2, 10**9)])
def test_huge_lengths_with_many_requests_match_cp_sat(seed, longest):
    """Too long for tables over every load; the optimum is a few units above the knapsack
    bound, so makespans just below it must be proven impossible, each M share in turn."""
    requests = random_batch(random.Random(f"huge many {seed}"), 30, longest)
    cp_sat = solve_cp_sat(requests, DEFAULT_FLEET, time_limit=60)
    assert cp_sat.proven_optimal
    check_optimum(requests, DEFAULT_FLEET, cp_sat.makespan)


@pytest.mark.parametrize(
    "fleet",
    [("VP", "M", "M"), ("M", "M", "M", "VP"), ("VP",) * 6 + ("M",), ("VP", "VP", "M", "M")],
    ids="-".join,
)
def test_near_equal_jobs_on_other_fleets_match_cp_sat(fleet):
    rng = random.Random(f"near fleet {fleet}")
    for size in (12, 24):
        requests = near_equal_batch(rng, size, 100, 110)
        cp_sat = solve_cp_sat(requests, fleet, time_limit=60)
        assert cp_sat.proven_optimal
        check_optimum(requests, fleet, cp_sat.makespan)


def test_a_large_batch_matches_cp_sat():
    requests = random_batch(random.Random("large"), 200, 100)
    check_optimum(requests, DEFAULT_FLEET, solve_cp_sat(requests, DEFAULT_FLEET, 60).makespan)


fleets = st.lists(st.sampled_from(SERVER_KINDS), min_size=1, max_size=6).map(tuple)
batches = st.lists(
    st.tuples(st.sampled_from(REQUEST_TYPES), st.integers(1, 40)), min_size=1, max_size=14
)


@given(batches, fleets)
def test_bounds_sandwich_the_optimum(requests, fleet):
    value, assignment = optimal_makespan(requests, fleet)
    greedy = max(finish_times(requests, greedy_assign(requests, fleet), fleet))
    bound = lower_bound(requests, fleet)
    assert simple_bound(requests, fleet) <= bound <= value <= greedy
    assert max(finish_times(requests, assignment, fleet)) == value
    assert bound == ceil(bound), "the optimum is whole, so a bound can be rounded up"


def test_empty_batch_and_request_objects():
    assert optimal_makespan([]) == (0, [])
    assert lower_bound([], ("M",)) == 0.0
    assert optimal_makespan([Request("M", 4)]) == (4, [2])
    assert optimal_makespan((("V", 12),), ("VP", "M")) == (12, [0])
    assert isinstance(lower_bound([("V", 1)]), float)


@pytest.mark.parametrize(
    "requests, fleet, message",
    [
        ([("X", 1)], DEFAULT_FLEET, "unknown request type 'X'"),
        ([("V", 0)], DEFAULT_FLEET, "at least 1"),
        ([("V", 2.5)], DEFAULT_FLEET, "must be an integer"),
        ([("V", True)], DEFAULT_FLEET, "must be an integer"),
        (["V3"], DEFAULT_FLEET, "must be an integer"),
        ([("V",)], DEFAULT_FLEET, "a request is a pair"),
        ([("V", 1)], ("VP", "GPU"), "unknown server kind 'GPU'"),
        ([("V", 1)], (), "at least one server"),
        ([("V", 1)], "VP", "a fleet is a sequence"),
        ([], ("X",), "unknown server kind"),
    ],
)
def test_bad_input_says_what_is_wrong(requests, fleet, message):
    for function in (optimal_makespan, lower_bound):
        with pytest.raises(ValueError, match=message):
            function(requests, fleet)


@given(st.lists(st.integers(1, 60), max_size=10), st.integers(1, 200))
def test_both_two_server_splits_agree_with_brute_force(times, capacity):
    """The VP pair's split, by bitset and by meeting in the middle (used for huge lengths)."""
    from minilb.optimal import _two_way_split, _two_way_split_in_halves

    def loads(sides):
        return [sum(t for t, side in zip(times, sides, strict=True) if side == s) for s in (0, 1)]

    sides_of_all = itertools.product((0, 1), repeat=len(times))
    possible = any(max(loads(sides)) <= capacity for sides in sides_of_all)
    for split in (_two_way_split, _two_way_split_in_halves):
        sides = split(times, capacity)
        assert (sides is not None) == possible
        assert sides is None or max(loads(sides)) <= capacity


# Step 3's knapsack table and the fast path in front of it (issue 18): the table must say what
# the Pareto fronts say, its bound must never pass the optimum, and the answers it leads to must
# match an independent solver on the batches it was built for (near-equal lengths) and on others.

both_groups = st.lists(st.sampled_from(SERVER_KINDS), max_size=4).map(lambda f: (*f, "VP", "M"))


@given(batches, both_groups)
def test_knapsack_table_and_fronts_give_the_same_bound_and_shares(requests, fleet):
    from minilb.optimal import (
        _Batch,
        _greedy_makespan,
        _KnapsackFront,
        _KnapsackTable,
        _relaxed_optimum,
    )

    batch = _Batch(requests, fleet)
    largest, low = _greedy_makespan(batch), _relaxed_optimum(batch)
    table, fronts = _KnapsackTable(batch, largest), _KnapsackFront(batch, largest)
    assert fronts.fronts is not None, "a batch this small must fit in the fronts' memory cap"
    assert table.bound(low) == fronts.bound(low)
    for target in range(table.bound(low), min(largest, table.bound(low) + 3) + 1):
        listed = [sorted(map(sorted, k.shares(target, max_steps=10**6))) for k in (table, fronts)]
        assert listed[0] == listed[1], f"shares within {target}"


@given(
    st.lists(st.tuples(st.sampled_from(REQUEST_TYPES), st.integers(1, 30)), min_size=1, max_size=8),
    both_groups,
)
def test_knapsack_bound_never_exceeds_the_optimum(requests, fleet):
    from minilb.optimal import _Batch, _greedy_makespan, _KnapsackTable, _relaxed_optimum

    batch = _Batch(requests, fleet)
    bound = _KnapsackTable(batch, _greedy_makespan(batch)).bound(_relaxed_optimum(batch))
    assert _relaxed_optimum(batch) <= bound <= brute_force(requests, fleet)


def test_the_knapsack_bound_beats_the_relaxation_on_near_equal_batches():
    """The batches the table was built for: dozens of near-equal requests, where requests that
    stay whole push the optimum well above step 1's bound; the table's bound sees most of it."""
    from minilb.optimal import _Batch, _greedy_makespan, _KnapsackTable, _relaxed_optimum

    for seed in range(3):
        requests = near_equal_batch(random.Random(f"near {seed}"), 60)
        batch = _Batch(requests, DEFAULT_FLEET)
        relaxed = _relaxed_optimum(batch)
        bound = _KnapsackTable(batch, _greedy_makespan(batch)).bound(relaxed)
        optimum = optimal_makespan(requests)[0]
        assert relaxed < bound <= optimum
        assert optimum - bound < (optimum - relaxed) / 4


near_equal_fleets = st.sampled_from(
    [DEFAULT_FLEET, ("VP", "M", "M", "VP"), ("VP", "VP", "M", "M"), ("VP",) * 4 + ("M",)]
)


@settings(max_examples=40)
@given(
    st.integers(6, 16).flatmap(
        lambda size: st.lists(
            st.tuples(st.sampled_from(REQUEST_TYPES), st.integers(100, 110)),
            min_size=size,
            max_size=size,
        )
    ),
    near_equal_fleets,
)
def test_random_near_equal_batches_match_cp_sat(requests, fleet):
    check_against_anchor(requests, fleet, solve_cp_sat(requests, fleet, time_limit=60))


def check_against_anchor(requests, fleet, anchor) -> None:
    """Ours equals the anchor's proven optimum. An anchor out of time (its limit is wall time,
    so a busy machine decides) proved nothing: ours must then be no worse than its best."""
    if anchor.proven_optimal:
        check_optimum(requests, fleet, anchor.makespan)
    elif anchor.makespan is not None:
        assert optimal_makespan(requests, fleet)[0] <= anchor.makespan


@settings(max_examples=40)
@given(
    st.lists(st.tuples(st.sampled_from(REQUEST_TYPES), st.integers(1, 100)), max_size=20),
    near_equal_fleets,
)
def test_random_batches_match_highs(requests, fleet):
    check_against_anchor(requests, fleet, solve_highs(requests, fleet, time_limit=60))
