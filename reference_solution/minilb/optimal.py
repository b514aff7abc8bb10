"""The exact offline optimum: the smallest makespan of a batch, and lower bounds on it.

A batch arrives all at time 0; each server works through its requests back to back, so its
finish time is the sum of its processing times, and the makespan is the largest finish time.
Trying every assignment costs ``servers ** requests`` steps: hopeless beyond about 15 requests.
How to find the optimum faster is lesson 3's exercise; the reference solver and the
explanation of how it works are in this file's solution region (instructors only).
"""

from collections.abc import Sequence
from math import ceil, gcd

from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES, check_fleet, check_request
from minilb.timeline import service_time


def lower_bound(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> float:
    """A makespan that no assignment of the batch ``requests`` can beat (0 for no requests).

    >>> lower_bound([("V", 4), ("M", 4), ("P", 2)])
    4.0
    """
    ### BEGIN SOLUTION
    batch = _Batch(requests, fleet)
    return float(_relaxed_optimum(batch))
    ### END SOLUTION


def optimal_makespan(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> tuple[int, list[int]]:
    """The smallest makespan of the batch ``requests``, and a server per request achieving it.

    >>> optimal_makespan([("V", 4), ("M", 4), ("P", 2), ("P", 2)])
    (4, [0, 2, 1, 1])
    """
    ### BEGIN SOLUTION
    batch = _Batch(requests, fleet)
    if not batch.jobs:
        return 0, []
    impossible_below = _relaxed_optimum(batch)  # step 1: no smaller makespan exists
    best, best_makespan = None, 0
    target, jump = impossible_below, 1
    patient = False  # step 3: set once a quick search has run long
    while best is None or impossible_below < best_makespan:
        try:
            assignment = _decide(batch, target, patient)
        except _SearchTooLong:
            patient = True
            continue
        if assignment is None:
            impossible_below = target + 1
        else:
            best, best_makespan = assignment, batch.makespan(assignment)
        if best is None:  # probe upwards in growing jumps: T, T + 1, T + 3, T + 7, ...
            target, jump = impossible_below + jump - 1, jump * 2
        else:  # then halve the gap between what is impossible and what fits
            target = (impossible_below + best_makespan - 1) // 2
    return best_makespan, best
    ### END SOLUTION


### BEGIN SOLUTION
# How the solver works.
#
# The solver below stays exact but is fast in practice, in three steps.
#
# 1. **Lower bound.** Pretend a request may be cut into pieces shared by the two server groups
#    (the VP servers and the M servers). For a candidate makespan ``T`` each group then offers
#    ``servers * T`` time units, and the best split is easy: the M servers should take the work
#    they are relatively best at first (Music, then Picture, then Video). A request longer than
#    ``T`` on one kind cannot go there at all, and a server's load is always a multiple of the
#    greatest common divisor of the processing times on its kind, so ``T`` is rounded down to one.
#    The smallest whole ``T`` for which this relaxed problem fits is a lower bound (whole, because
#    every processing time is), and it is never below the simple bounds
#    ``max(largest fastest time, total fastest time / servers)``. Two of the ``servers + 1``
#    longest requests must share a server, which gives one more bound.
# 2. **Search.** Ask: can every request be placed so that no server finishes after ``T``? First
#    for ``T`` = the lower bound (usually the answer is yes, and we are done), then for ``T + 1``,
#    ``T + 3``, ``T + 7``, ... until one fits, then by binary search between the largest ``T``
#    known to be impossible and the best makespan found so far. Each question is a depth-first
#    search that places the longest request first, trying first the server kind
#    that is fastest for it and the fullest server with room left (best fit). It cuts a branch as
#    soon as:
#    - the remaining requests cannot fit in the remaining room even when cut (step 1), counting on
#      each server only the room that some subset of the remaining requests can fill exactly;
#    - an identical server (same kind, same load) was already tried: the subtrees are mirror images;
#    - the same situation (same depth, same loads up to swapping identical servers) already failed.
# 3. **A stronger check for stubborn cases.** Most searches succeed within a few steps per request.
#    When one runs long, ``T`` may be impossible for a reason step 1 ignores: requests cannot be
#    cut. From then on, before each search, a knapsack (dynamic programming over the M group's
#    time) decides whether the requests, kept whole, can be split between the two groups at all;
#    if not, that ``T`` is skipped without a search.
#
# The search is exponential in the worst case (the problem is NP-hard, like bin packing), but the
# bounds are tight on almost every instance, so a large batch is usually solved by a search that
# never backtracks far.

# The M servers should take the work they are relatively best at first: the types sorted by
# (time on M) / (time on VP), Music first.
_M_SERVER_PREFERENCE = sorted(REQUEST_TYPES, key=lambda t: FACTORS["M"][t] / FACTORS["VP"][t])
# Floating-point slack when comparing fractional loads; it only ever makes a check more lenient,
# so bounds stay valid.
_EPSILON = 1e-6
# A quick search gets this many steps per request before the stronger check is worth its cost.
_QUICK_TRY_STEPS = 20
# Memory caps, so that huge lengths or stubborn searches cannot exhaust the machine: failed
# situations remembered (about 70 bytes each), bits of subset-sum bitsets, knapsack size.
_MAX_SITUATIONS = 1_000_000
_MAX_BITSET_BITS = 1 << 28
_MAX_KNAPSACK_ROOM = 1 << 20


class _SearchTooLong(Exception):
    """The search used up its steps without an answer."""


class _Batch:
    """A validated batch with every processing time worked out once."""

    def __init__(self, requests: Sequence[tuple[str, int]], fleet: Sequence[str]) -> None:
        self.kinds = check_fleet(fleet)
        self.jobs = [check_request(request) for request in requests]
        self.groups = sorted(set(self.kinds))
        self.time = {kind: [service_time(kind, job) for job in self.jobs] for kind in self.groups}
        self.fastest = [min(self.time[kind][i] for kind in self.groups) for i in range(len(self))]
        # A server's load is a sum of processing times on its kind, so a multiple of their gcd.
        self.step = {kind: gcd(*self.time[kind]) for kind in self.groups}

    def __len__(self) -> int:
        return len(self.jobs)

    def makespan(self, assignment: list[int]) -> int:
        loads = [0] * len(self.kinds)
        for i, server in enumerate(assignment):
            loads[server] += self.time[self.kinds[server]][i]
        return max(loads)

    def capacity(self, target: int) -> dict[str, int]:
        """Per kind, the largest load a server can really have without exceeding ``target``."""
        return {kind: target // self.step[kind] * self.step[kind] for kind in self.groups}


def _split_fits(lengths: dict[str, int], room: dict[str, float]) -> bool:
    """Can work of these total ``lengths`` per type, cut freely, fit in ``room`` per kind?"""
    if len(room) == 1:
        ((kind, free),) = room.items()
        return sum(lengths[t] * FACTORS[kind][t] for t in REQUEST_TYPES) <= free + _EPSILON
    m_room, vp_room = room["M"], room["VP"]
    for request_type in _M_SERVER_PREFERENCE:
        on_m = min(lengths[request_type], max(m_room, 0) / FACTORS["M"][request_type])
        m_room -= on_m * FACTORS["M"][request_type]
        vp_room -= (lengths[request_type] - on_m) * FACTORS["VP"][request_type]
    return vp_room >= -_EPSILON


def _share_out(batch: _Batch, target: int) -> tuple[dict[str, int], list[int]] | None:
    """Room per kind left after placing the requests that fit on one kind only, and the
    requests that fit on both; None if a request fits nowhere within ``target``."""
    per_server = batch.capacity(target)
    room = {kind: batch.kinds.count(kind) * per_server[kind] for kind in per_server}
    either = []
    for i in range(len(batch)):
        allowed = [kind for kind in batch.groups if batch.time[kind][i] <= per_server[kind]]
        if not allowed:
            return None
        if len(allowed) == 1:
            room[allowed[0]] -= batch.time[allowed[0]][i]
        else:
            either.append(i)
    return (room, either) if min(room.values()) >= 0 else None


def _relaxed_fits(batch: _Batch, target: int) -> bool:
    """Step 1's relaxation: does the batch fit when requests may be cut between the groups?"""
    shared = _share_out(batch, target)
    if shared is None:
        return False
    room, either = shared
    lengths = dict.fromkeys(REQUEST_TYPES, 0)
    for i in either:
        lengths[batch.jobs[i].type] += batch.jobs[i].length
    return _split_fits(lengths, dict(room))


def _relaxed_optimum(batch: _Batch) -> int:
    """Step 1: the smallest whole makespan for which the relaxation fits."""
    if not batch.jobs:
        return 0
    fastest = sorted(batch.fastest, reverse=True)
    servers = len(batch.kinds)
    low = max(fastest[0], ceil(sum(fastest) / servers))
    if len(fastest) > servers:  # two of the (servers + 1) longest requests share a server
        low = max(low, fastest[servers - 1] + fastest[servers])
    # The answer is usually at or just above ``low``: try low, low + 1, low + 3, low + 7, ...
    # until it fits, then binary search between the last miss and the first fit.
    high, step = low, 1
    while not _relaxed_fits(batch, high):
        low, high, step = high + 1, high + step, step * 2
    while low < high:
        middle = (low + high) // 2
        if _relaxed_fits(batch, middle):
            high = middle
        else:
            low = middle + 1
    return low


def _whole_split_fits(batch: _Batch, target: int) -> bool:
    """Step 3, a stronger relaxation: requests stay whole, only each group's servers are merged
    into one big server. A knapsack: which requests should the M group take (using at most its
    room) to save the VP group the most time?"""
    shared = _share_out(batch, target)
    if shared is None:
        return False
    room, either = shared
    if len(room) == 1 or room["M"] > _MAX_KNAPSACK_ROOM:  # nothing to add, or too big to try
        return _relaxed_fits(batch, target)
    m_time, vp_time = batch.time["M"], batch.time["VP"]
    must_save = sum(vp_time[i] for i in either) - room["VP"]
    # saved[w]: the most VP time the M group can take over using at most w of its time.
    saved = [0] * (room["M"] + 1)
    for i in either:
        if must_save <= saved[-1]:
            break
        w, v = m_time[i], vp_time[i]
        if w <= room["M"]:
            shifted = [s + v for s in saved[: len(saved) - w]]
            saved[w:] = map(max, saved[w:], shifted)
    return must_save <= saved[-1]


def _decide(batch: _Batch, target: int, patient: bool) -> list[int] | None:
    """An assignment with a makespan of at most ``target``, or None if there is none.

    Not ``patient``: a quick search that raises ``_SearchTooLong`` if it runs long. Patient: the
    knapsack check of step 3 first, then a search for as long as it takes.
    """
    if not patient:
        return _fit_within(batch, target, max_steps=_QUICK_TRY_STEPS * len(batch))
    return _fit_within(batch, target) if _whole_split_fits(batch, target) else None


def _fit_within(batch: _Batch, target: int, max_steps: float = float("inf")) -> list[int] | None:
    """Step 2: an assignment in which no server finishes after ``target``, or None if there is
    none. Raises ``_SearchTooLong`` after ``max_steps`` placements without an answer."""
    kinds, jobs = batch.kinds, batch.jobs
    per_server = batch.capacity(target)
    limit = [per_server[kind] for kind in kinds]
    order = sorted(range(len(jobs)), key=lambda i: -batch.fastest[i])
    times = [[batch.time[kind][i] for kind in kinds] for i in order]
    # What is still to place from each depth on: the total length per type, and per kind every
    # sum of processing times that some of those requests add up to, as a bitset (an int whose
    # bit x is set when some subset sums to x; shifting by t adds t to every sum). With huge
    # lengths the bitsets would not fit in memory: then there are none (every sum counts).
    remaining = [dict.fromkeys(REQUEST_TYPES, 0) for _ in range(len(order) + 1)]
    for depth in reversed(range(len(order))):
        remaining[depth] = dict(remaining[depth + 1])
        remaining[depth][jobs[order[depth]].type] += jobs[order[depth]].length
    sums = None
    if len(order) * sum(per_server.values()) <= _MAX_BITSET_BITS:
        sums = [dict.fromkeys(per_server, 1) for _ in range(len(order) + 1)]
        for depth in reversed(range(len(order))):
            for kind, below in sums[depth + 1].items():
                mask = (2 << per_server[kind]) - 1
                sums[depth][kind] = (below | below << batch.time[kind][order[depth]]) & mask
    servers_of = {kind: [s for s, k in enumerate(kinds) if k == kind] for kind in batch.groups}
    loads = [0] * len(kinds)
    failed: set[int] = set()

    def situation(depth: int) -> int:
        # Identical servers are interchangeable, so only the sorted loads per kind matter. They
        # are packed into one int (digits in base target + 1) to keep the memory small.
        key = depth
        for servers in servers_of.values():
            for load in sorted(loads[s] for s in servers):
                key = key * (target + 1) + load
        return key

    def promising(depth: int) -> bool:
        if failed and situation(depth) in failed:
            return False
        room = dict.fromkeys(per_server, 0.0)
        for server, kind in enumerate(kinds):
            # A server can be filled at most up to the largest sum of remaining requests that
            # fits in its free room: the rest of the room is wasted.
            free = limit[server] - loads[server]
            if sums is not None:
                free = (sums[depth][kind] & ((2 << free) - 1)).bit_length() - 1
            room[kind] += free
        return _split_fits(remaining[depth], room)

    def choices(depth: int) -> list[int]:
        """Servers worth trying, best last (the search pops from the end)."""
        servers, seen = [], set()
        for server, kind in enumerate(kinds):
            fits = loads[server] + times[depth][server] <= limit[server]
            if fits and (kind, loads[server]) not in seen:
                seen.add((kind, loads[server]))
                servers.append(server)
        # The kind fastest for this request first, then the fullest server (best fit).
        return sorted(servers, key=lambda s: (-times[depth][s], loads[s]))

    # An explicit stack instead of recursion: a batch may hold thousands of requests.
    placed = [-1] * len(order)
    untried = [choices(0) if promising(0) else []]
    depth = 0
    while True:
        if placed[depth] >= 0:  # back from a child that failed: take the request off again
            loads[placed[depth]] -= times[depth][placed[depth]]
            placed[depth] = -1
        if not untried[depth]:
            if len(failed) < _MAX_SITUATIONS:
                failed.add(situation(depth))
            if depth == 0:
                return None
            untried.pop()
            depth -= 1
            continue
        max_steps -= 1
        if max_steps < 0:
            raise _SearchTooLong
        server = untried[depth].pop()
        loads[server] += times[depth][server]
        placed[depth] = server
        if depth + 1 == len(order):
            assignment = [0] * len(jobs)
            for position, job_index in enumerate(order):
                assignment[job_index] = placed[position]
            return assignment
        depth += 1
        untried.append(choices(depth) if promising(depth) else [])
### END SOLUTION
