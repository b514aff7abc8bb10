"""Online scheduling: the makespan, the greedy rule that picks a server, and greedy schedules.

The greedy rule (the course's step 4): a request costing ``c[i]`` on server ``i`` would finish at
``g[i] = max(now, f[i]) + c[i]``. Choose the server that

1. minimises the resulting makespan ``max(g[i], max of f[j] for j != i)``; among ties,
2. minimises ``g[i]`` (the request itself finishes earliest); among ties,
3. has the lowest index.
"""

from collections.abc import Sequence

from minilb.costs import DEFAULT_FLEET, check_fleet, check_request, processing_time


def _check_times(finish_times: Sequence[float], fleet: Sequence[str]) -> list[float]:
    times = list(finish_times)
    if len(times) != len(fleet):
        raise ValueError(
            f"finish_times has {len(times)} entries but the fleet has {len(fleet)} servers"
        )
    return times


def makespan(finish_times: Sequence[float]) -> float:
    """The largest finish time over all servers (0 for an empty list).

    >>> makespan([3, 7.5, 2])
    7.5
    """
    ### BEGIN SOLUTION
    return float(max(finish_times, default=0.0))
    ### END SOLUTION


def choose_server(
    finish_times: Sequence[float],
    request: tuple[str, int],
    fleet: Sequence[str] = DEFAULT_FLEET,
    now: float = 0.0,
) -> int:
    """Index of the server the greedy rule picks for ``request`` at time ``now``.

    Leaves the caller's ``finish_times`` and ``request`` unchanged. A ``ValueError`` for
    invalid input comes with a message that says what was wrong.

    >>> choose_server([0, 0, 0], ("M", 4))   # the Music server finishes it first
    2
    """
    ### BEGIN SOLUTION
    kinds = check_fleet(fleet)
    request_type, length = check_request(request)
    times = _check_times(finish_times, kinds)
    best_key, best_server = None, -1
    for server, kind in enumerate(kinds):
        done = max(now, times[server]) + processing_time(kind, request_type, length)
        others = [f for j, f in enumerate(times) if j != server]
        key = (max([done, *others]), done)
        if best_key is None or key < best_key:  # strict: on a full tie the lower index stays
            best_key, best_server = key, server
    return best_server
    ### END SOLUTION


def greedy_assign(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> list[int]:
    """The server of each request when the greedy rule places them in order, all at time 0.

    Raises ``ValueError`` for invalid input: an unknown request type or server kind, no server
    at all, or a length that is not a positive int (``True``, ``2.0`` and ``"3"`` are not),
    with a message that says what was wrong.

    >>> greedy_assign([("M", 1), ("V", 2), ("P", 3)])
    [2, 0, 1]
    """
    ### BEGIN SOLUTION
    kinds = check_fleet(fleet)
    times = [0.0] * len(kinds)
    assignment = []
    for request in requests:
        server = choose_server(times, request, kinds)
        times[server] += processing_time(kinds[server], *check_request(request))
        assignment.append(server)
    return assignment
    ### END SOLUTION


def finish_times(
    requests: Sequence[tuple[str, int]],
    assignment: Sequence[int],
    fleet: Sequence[str] = DEFAULT_FLEET,
) -> list[float]:
    """Each server's finish time when the batch ``requests`` all arrive at time 0.

    Raises ``ValueError`` for invalid input: as many server indices as requests are needed, each
    an int in range (``True``, ``1.0`` and ``"1"`` are not), at least one server, and every
    length a positive int (``True``, ``2.0`` and ``"3"`` are not). A ``ValueError`` for invalid
    input comes with a message that says what was wrong.

    >>> finish_times([("M", 1), ("V", 2), ("P", 3)], [2, 0, 1])
    [2.0, 3.0, 1.0]
    """
    ### BEGIN SOLUTION
    kinds = check_fleet(fleet)
    if len(requests) != len(assignment):
        raise ValueError(f"{len(requests)} requests but {len(assignment)} assignments")
    times = [0.0] * len(kinds)
    for request, server in zip(requests, assignment, strict=True):
        if isinstance(server, bool) or not isinstance(server, int) or not 0 <= server < len(kinds):
            raise ValueError(f"server index {server!r} is not in range 0..{len(kinds) - 1}")
        times[server] += processing_time(kinds[server], *check_request(request))
    return times
    ### END SOLUTION
