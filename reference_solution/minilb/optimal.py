"""The exact offline optimum: the smallest makespan of a batch, and lower bounds on it.

A batch arrives all at time 0; each server works through its requests back to back, so its
finish time is the sum of its processing times, and the makespan is the largest finish time.
Trying every assignment costs ``servers ** requests`` steps: hopeless beyond about 15 requests.
How to find the optimum faster is lesson 3's exercise; the reference solver and the
explanation of how it works are in this file's solution region (instructors only).
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from math import ceil, gcd

from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES, check_fleet, check_request
from minilb.timeline import service_time


def lower_bound(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> float:
    """A makespan that no assignment of the batch ``requests`` can beat (0 for no requests).

    Leaves the caller's ``requests`` unchanged. Raises ``ValueError`` for invalid input: an
    unknown request type or server kind, no server at all, or a length that is not a positive
    int (``True``, ``2.0`` and ``"3"`` are not). A ``ValueError`` for invalid input comes with a
    message that says what was wrong.

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

    A ``ValueError`` for invalid input comes with a message that says what was wrong.

    >>> optimal_makespan([("V", 4), ("M", 4), ("P", 2), ("P", 2)])
    (4, [0, 2, 1, 1])
    """
    ### BEGIN SOLUTION
    batch = _Batch(requests, fleet)
    if not batch.jobs:
        return 0, []
    impossible_below = _relaxed_optimum(batch)  # step 1: no smaller makespan exists
    quick = _quick_dive(batch, impossible_below)  # step 2, briefly: it often meets the bound
    if quick is not None:
        return batch.makespan(quick), quick
    # Otherwise step 3 at once: requests stay whole in its knapsack, so its bound is often
    # higher, and its shares of the M group settle each makespan quickly.
    patient = len(batch.groups) == 2
    if patient:
        batch.knapsack = _knapsack(batch, _greedy_makespan(batch))
        impossible_below = batch.knapsack.bound(impossible_below)
    best, best_makespan = None, 0
    target, jump = impossible_below, 1
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
#    for ``T`` = the lower bound, in one quick dive of a couple of steps per request (usually the
#    answer is yes, and we are done). Otherwise from the best bound known (step 3's, when the
#    fleet has both groups): ``T``, ``T + 1``, ``T + 3``, ``T + 7``, ... until one fits, then by
#    binary search between the largest ``T`` known to be impossible and the best makespan found
#    so far. Each question is a depth-first search that places the longest request first,
#    trying first the server kind that is fastest for it and the fullest server with room left
#    (best fit). It cuts a branch as soon as:
#    - the remaining requests cannot fit in the remaining room even when cut (step 1), counting on
#      each server only the room that some subset of the remaining requests can fill exactly;
#    - an identical server (same kind, same load) was already tried: the subtrees are mirror images;
#    - the same situation (same depth, same loads up to swapping identical servers) already failed.
# 3. **A stronger check for stubborn cases.** When the dive fails, ``T`` may be impossible for
#    a reason step 1 ignores: requests cannot be cut. Then each ``T`` goes through a knapsack:
#    keep requests whole but merge each group's servers into one; which requests should the M
#    group take (within its time) to save the VP group enough? Built once per batch, at once
#    after the dive, it rules a ``T`` out at once, or lists every share of the M group that
#    saves enough (near the optimum there are few); its smallest allowed ``T`` is a lower bound
#    too, often well above step 1's when requests are long next to the makespan (dozens of
#    near-equal requests). Where loads are small it is a table over every M time, a few numpy
#    operations per request; for huge lengths it keeps Pareto fronts. (A fleet of one kind has
#    no knapsack: its searches get twenty steps per request, then as many as they need.) Each
#    share is then checked group by group: one server by its sum, two identical servers by a
#    subset sum (a bitset, or for huge lengths meeting in the middle), more by step 2's search.
#    Only when the shares cannot settle ``T`` does the whole-fleet search run unlimited.
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
# The first search, at step 1's bound, gets fewer: it usually succeeds in one straight dive.
_DIVE_STEPS = 2
# Memory caps, so that huge lengths or stubborn searches cannot exhaust the machine: failed
# situations remembered (about 70 bytes each), bits of subset-sum bitsets, knapsack choices
# remembered (about 70 bytes each).
_MAX_SITUATIONS = 1_000_000
_MAX_FRONT_POINTS = 1_000_000
# Cells of step 3's knapsack table (4 or 8 bytes each); beyond it the knapsack keeps Pareto fronts.
_MAX_TABLE_CELLS = 4_000_000
_MAX_BITSET_BITS = 1 << 28
# The search's pruning reads its bitsets at every step: beyond this size that costs more than
# the pruning saves.
_MAX_SEARCH_BITSET_BITS = 1 << 27
# Steps for listing every choice of the M group's share before searching the whole fleet.
_MAX_SHARE_STEPS = 200_000


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
        self.knapsack: _Knapsack | None = None  # step 3's, built when first needed

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


def _greedy_makespan(batch: _Batch) -> int:
    """An upper bound: each request, longest first, on the server that would finish it first."""
    loads = [0] * len(batch.kinds)
    for i in sorted(range(len(batch)), key=lambda i: -batch.fastest[i]):
        finish = [load + batch.time[kind][i] for load, kind in zip(loads, batch.kinds, strict=True)]
        server = finish.index(min(finish))
        loads[server] = finish[server]
    return max(loads)


class _Knapsack:
    """Step 3: requests stay whole, only each group's servers are merged into one big server.
    Then the M group should take requests that save the VP group enough time: a knapsack.

    ``can_save(prefix, room, needed)`` answers: can some of the first ``prefix`` requests (in
    ``order``) save ``needed`` VP time within ``room`` M time? Two ways to answer it follow: a
    table over every M time when that is small, Pareto fronts when lengths are huge. Built once
    for makespans up to ``largest``; reading it backwards lists every choice that saves enough.
    """

    def __init__(self, batch: _Batch, largest: int) -> None:
        self.batch, self.largest = batch, largest
        m_time, vp_time = batch.time["M"], batch.time["VP"]
        # Least useful first, so that the best requests are decided first when reading back.
        self.order = sorted(range(len(batch)), key=lambda i: -m_time[i] / vp_time[i])

    def room_and_saving(self, target: int) -> tuple[int, int]:
        """The merged M group's time within ``target``, and the VP time it must take over."""
        per_server, kinds = self.batch.capacity(target), self.batch.kinds
        needed = sum(self.batch.time["VP"]) - kinds.count("VP") * per_server["VP"]
        return kinds.count("M") * per_server["M"], needed

    def can_save(self, prefix: int, room: int, needed: int) -> bool:
        raise NotImplementedError  # each way of keeping the knapsack answers it

    def fits(self, target: int) -> bool:
        """Can the M group take whole requests within ``target`` that save the VP group enough?"""
        return self.can_save(len(self.order), *self.room_and_saving(target))

    def bound(self, low: int) -> int:
        """The smallest makespan from ``low`` up to ``largest`` that the knapsack allows: a
        lower bound as valid as step 1's (it only merges servers), and tighter when requests
        are long next to the makespan, because it never cuts one."""
        high = self.largest  # the greedy schedule fits, so its makespan passes
        while low < high:
            middle = (low + high) // 2
            if self.fits(middle):
                high = middle
            else:
                low = middle + 1
        return low

    def shares(self, target: int, max_steps: int) -> Iterator[list[int]]:
        """Every set of requests that the M group can take within ``target`` while saving
        enough, best requests first. Every step leads to one (``can_save`` says so before
        each), so near the optimum, where there are few, listing them is quick; raises
        ``_SearchTooLong`` after ``max_steps`` steps."""
        m_time, vp_time = self.batch.time["M"], self.batch.time["VP"]
        stack = [(len(self.order), *self.room_and_saving(target), [])]
        while stack:
            max_steps -= 1
            if max_steps < 0:
                raise _SearchTooLong
            prefix, room, needed, chosen = stack.pop()
            if prefix == 0:
                yield chosen
                continue
            i = self.order[prefix - 1]
            if self.can_save(prefix - 1, room, needed):  # without request i
                stack.append((prefix - 1, room, needed, chosen))
            room_left, still_needed = room - m_time[i], needed - vp_time[i]
            if room_left >= 0 and self.can_save(prefix - 1, room_left, still_needed):
                stack.append((prefix - 1, room_left, still_needed, [*chosen, i]))


class _KnapsackTable(_Knapsack):
    """The knapsack as a table: row ``prefix``, column ``room`` holds the most VP time that
    some of the first ``prefix`` requests can save within ``room`` M time (up to the room at
    ``largest``). Each row is the row before, or the row before shifted right by the next
    request's M time plus its VP time, whichever is larger: a few numpy operations per
    request, where the Pareto fronts below cost a Python step per choice they keep."""

    def __init__(self, batch: _Batch, largest: int) -> None:
        import numpy as np  # here, not at the top: only this table needs it, and it loads slowly

        super().__init__(batch, largest)
        m_time, vp_time = batch.time["M"], batch.time["VP"]
        self.room = room = self.room_and_saving(largest)[0]
        # One block of memory, in 4-byte cells when the savings fit: half the memory to touch.
        cell = np.int32 if sum(vp_time) < 2**31 else np.int64
        self.rows = np.empty((len(batch) + 1, room + 1), dtype=cell)
        self.rows[0] = 0  # no request: nothing saved
        for prefix, i in enumerate(self.order):
            before, row, m = self.rows[prefix], self.rows[prefix + 1], m_time[i]
            if m > room:  # request i never fits on the M group
                row[:] = before
                continue
            row[:m] = before[:m]  # too little room for request i
            np.maximum(before[m:], before[: room + 1 - m] + vp_time[i], out=row[m:])

    @staticmethod
    def small_enough(batch: _Batch, largest: int) -> bool:
        room = batch.kinds.count("M") * batch.capacity(largest)["M"]
        return (len(batch) + 1) * (room + 1) <= _MAX_TABLE_CELLS

    def can_save(self, prefix: int, room: int, needed: int) -> bool:
        return room >= 0 and int(self.rows[prefix][min(room, self.room)]) >= needed


class _KnapsackFront(_Knapsack):
    """The knapsack for huge lengths, where a table over every M time would be far too big:
    for each prefix of the requests only the Pareto-optimal choices (Nemhauser and Ullmann):
    pairs (M time, VP time saved) sorted by M time with the saving strictly growing, so that
    a choice that takes more M time and saves no more is dropped."""

    def __init__(self, batch: _Batch, largest: int) -> None:
        super().__init__(batch, largest)
        m_time, vp_time = batch.time["M"], batch.time["VP"]
        room, least_saving = self.room_and_saving(largest)
        still = sum(vp_time)  # VP time of the requests not yet considered
        front = [(0, 0)]
        self.fronts: list[tuple[list[int], list[int]]] | None = [([0], [0])]  # per prefix
        stored = 1
        for i in self.order:
            still -= vp_time[i]
            with_i = [(w + m_time[i], v + vp_time[i]) for w, v in front]
            candidates, front = sorted(front + with_i), []
            for w, v in candidates:
                # Too much M time, or saving too little even with every later request: useless.
                if w <= room and v + still >= least_saving and (not front or v > front[-1][1]):
                    front.append((w, v))
            self.fronts.append(([w for w, _ in front], [v for _, v in front]))
            stored += len(front)
            if stored > _MAX_FRONT_POINTS:  # too many to remember: step 3 cannot help
                self.fronts = None
                return

    def can_save(self, prefix: int, room: int, needed: int) -> bool:
        weights, savings = self.fronts[prefix]  # type: ignore[index]
        best = bisect_right(weights, room) - 1
        return best >= 0 and savings[best] >= needed

    def bound(self, low: int) -> int:
        return low if self.fronts is None else super().bound(low)

    def shares(self, target: int, max_steps: int) -> Iterator[list[int]]:
        if self.fronts is None:
            raise _SearchTooLong
        return super().shares(target, max_steps)


def _knapsack(batch: _Batch, largest: int) -> _Knapsack:
    """Step 3's knapsack for makespans up to ``largest``, kept the cheaper way."""
    if _KnapsackTable.small_enough(batch, largest):
        return _KnapsackTable(batch, largest)
    return _KnapsackFront(batch, largest)


def _quick_dive(batch: _Batch, target: int) -> list[int] | None:
    """Step 2 with a few steps per request: an assignment within ``target``, or None when
    none turned up that fast (which proves nothing)."""
    try:
        return _fit_within(batch, target, max_steps=_DIVE_STEPS * len(batch))
    except _SearchTooLong:
        return None


def _decide(batch: _Batch, target: int, patient: bool) -> list[int] | None:
    """An assignment with a makespan of at most ``target``, or None if there is none.

    Not ``patient``: a quick search that raises ``_SearchTooLong`` if it runs long. Patient: the
    knapsack of step 3, each of its answers with each group on its own, and only if that does
    not settle it a search of the whole fleet as long as it takes.
    """
    if not patient:
        return _fit_within(batch, target, max_steps=_QUICK_TRY_STEPS * len(batch))
    if len(batch.groups) == 1:
        return _fit_within(batch, target)
    if batch.knapsack is None or batch.knapsack.largest < target:
        batch.knapsack = _knapsack(batch, max(target, _greedy_makespan(batch)))
    undecided = False
    try:
        for on_m in batch.knapsack.shares(target, max_steps=_MAX_SHARE_STEPS):
            try:
                assignment = _split_by_group(batch, target, on_m, _QUICK_TRY_STEPS * len(batch))
            except _SearchTooLong:
                undecided = True
                continue
            if assignment is not None:
                return assignment
    except _SearchTooLong:  # too many answers to try them all
        undecided = True
    return _fit_within(batch, target) if undecided else None


def _split_by_group(
    batch: _Batch, target: int, on_m: list[int], max_steps: float
) -> list[int] | None:
    """An assignment within ``target`` giving the M servers exactly the requests ``on_m``, or
    None if there is none; raises ``_SearchTooLong`` if a group takes over ``max_steps``."""
    assignment = [0] * len(batch)
    taken = set(on_m)
    for kind in batch.groups:
        mine = [i for i in range(len(batch)) if (i in taken) == (kind == "M")]
        servers = [s for s, k in enumerate(batch.kinds) if k == kind]
        times = [batch.time[kind][i] for i in mine]
        capacity = batch.capacity(target)[kind]
        if len(servers) == 1:
            found = [0] * len(times) if sum(times) <= capacity else None
        elif len(servers) == 2 and min(len(times) * capacity, 2 ** len(times)) <= _MAX_BITSET_BITS:
            found = _two_way_split(times, capacity)
        else:
            group = _Batch([batch.jobs[i] for i in mine], [kind] * len(servers))
            found = _fit_within(group, target, max_steps) if mine else []
        if found is None:
            return None
        for i, server in zip(mine, found, strict=True):
            assignment[i] = servers[server]
    return assignment


def _two_way_split(times: list[int], capacity: int) -> list[int] | None:
    """Two identical servers: put on server 1 a subset whose sum lies within ``capacity`` of
    the total, so that neither server exceeds it; 0/1 per request, or None if there is none."""
    total = sum(times)
    if total > 2 * capacity:
        return None
    # Whichever is cheaper: the bitset costs about requests * capacity bits of work, meeting in
    # the middle about 2 ** (requests / 2) Python steps, each worth a few thousand bits.
    if 2 ** (len(times) // 2) * 4096 < len(times) * capacity:
        return _two_way_split_in_halves(times, capacity)
    # Subset sums as a bitset (bit x set when some subset sums to x), one per prefix, so that
    # the subset can be read back from the last request to the first.
    mask = (2 << capacity) - 1
    sums = [1]
    for t in times:
        sums.append((sums[-1] | sums[-1] << t) & mask)
    wanted = sums[-1] >> (total - capacity) if total > capacity else sums[-1]
    if not wanted:
        return None
    reach = (wanted & -wanted).bit_length() - 1 + max(total - capacity, 0)  # smallest such sum
    side = [0] * len(times)
    for position in reversed(range(len(times))):
        if not sums[position] >> reach & 1:  # not reachable without this request: take it
            side[position] = 1
            reach -= times[position]
    return side


def _two_way_split_in_halves(times: list[int], capacity: int) -> list[int] | None:
    """The same for lengths too huge for a bitset: meet in the middle. Every subset sum of each
    half (with the subset as a bit mask), and for each sum of the first half a binary search
    for a matching sum of the second: about 2 ** (requests / 2) steps."""
    total, middle = sum(times), len(times) // 2

    def subset_sums(part: list[int]) -> list[tuple[int, int]]:
        sums = [(0, 0)]
        for bit, t in enumerate(part):
            sums += [(s + t, chosen | 1 << bit) for s, chosen in sums]
        return sorted(sums)

    first, second = subset_sums(times[:middle]), subset_sums(times[middle:])
    second_sums = [s for s, _ in second]
    for s, chosen in first:
        j = bisect_left(second_sums, total - capacity - s)
        if j < len(second) and s + second_sums[j] <= capacity:
            together = chosen | second[j][1] << middle
            return [together >> position & 1 for position in range(len(times))]
    return None


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
    if len(order) * sum(per_server.values()) <= _MAX_SEARCH_BITSET_BITS:
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
