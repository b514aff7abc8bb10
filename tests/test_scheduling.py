"""The greedy rule of DESIGN section 4, checked against an independent formulation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilb.costs import FACTORS, REQUEST_TYPES, SERVER_KINDS
from minilb.scheduling import choose_server, finish_times, greedy_assign, makespan

fleets = st.lists(st.sampled_from(SERVER_KINDS), min_size=1, max_size=10).map(tuple)
requests = st.tuples(st.sampled_from(REQUEST_TYPES), st.integers(1, 12))
# Halves keep every sum exact in floating point, and make ties common.
times = st.integers(0, 40).map(lambda n: n / 2)


def rule_by_filtering(finish, request, fleet, now):
    """The rule written as three successive filters (the spec's wording, not the code's)."""
    request_type, length = request
    cost = [length * FACTORS[kind][request_type] for kind in fleet]
    done = [max(now, f) + c for f, c in zip(finish, cost, strict=True)]
    resulting = [
        max([done[i]] + [f for j, f in enumerate(finish) if j != i]) for i in range(len(fleet))
    ]
    candidates = [i for i in range(len(fleet)) if resulting[i] == min(resulting)]
    candidates = [i for i in candidates if done[i] == min(done[c] for c in candidates)]
    return min(candidates)


@given(st.data(), fleets, requests, times)
def test_choose_server_is_the_argmin_with_the_documented_tie_breaks(data, fleet, request, now):
    finish = data.draw(st.lists(times, min_size=len(fleet), max_size=len(fleet)))
    assert choose_server(finish, request, fleet, now) == rule_by_filtering(
        finish, request, fleet, now
    )


@given(st.lists(requests, max_size=30), fleets)
def test_greedy_assign_is_repeated_choose_server(batch, fleet):
    finish = [0.0] * len(fleet)
    expected = []
    for request_type, length in batch:
        server = choose_server(finish, (request_type, length), fleet)
        finish[server] += length * FACTORS[fleet[server]][request_type]
        expected.append(server)
    assignment = greedy_assign(batch, fleet)
    assert assignment == expected
    assert finish_times(batch, assignment, fleet) == finish


def test_tie_breaks_on_small_cases():
    # Idle identical servers: lowest index.
    assert choose_server([0, 0, 0], ("V", 2)) == 0
    # Same resulting makespan (5) either way; vp2 lets the request itself finish earlier.
    assert choose_server([5, 1, 0], ("V", 2)) == 1
    # The clock matters: a server whose queue drained long ago starts at `now`.
    assert choose_server([1, 3, 0], ("M", 2), now=10) == 2
    # Makespan first: the Music server is idle but slow at video.
    assert choose_server([2, 2, 0], ("V", 3)) == 0


def test_makespan():
    assert makespan([3, 7.5, 2]) == 7.5
    assert makespan([]) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: choose_server([0, 0], ("V", 1)),
        lambda: choose_server([0, 0, 0], ("X", 1)),
        lambda: choose_server([0, 0, 0], ("V", 0)),
        lambda: greedy_assign([("V", 1)], ()),
        lambda: finish_times([("V", 1)], [0, 1]),
        lambda: finish_times([("V", 1)], [3]),
    ],
)
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
