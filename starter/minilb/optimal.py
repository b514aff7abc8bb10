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
    # YOUR CODE HERE
    raise NotImplementedError()


def optimal_makespan(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> tuple[int, list[int]]:
    """The smallest makespan of the batch ``requests``, and a server per request achieving it.

    A ``ValueError`` for invalid input comes with a message that says what was wrong.

    >>> optimal_makespan([("V", 4), ("M", 4), ("P", 2), ("P", 2)])
    (4, [0, 2, 1, 1])
    """
    # YOUR CODE HERE
    raise NotImplementedError()
