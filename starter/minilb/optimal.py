"""The exact offline optimum: the smallest makespan of a batch, and lower bounds on it.

A batch arrives all at time 0; each server works through its requests back to back, so its
finish time is the sum of its processing times, and the makespan is the largest finish time.
Trying every assignment costs ``servers ** requests`` steps: hopeless beyond about 15 requests.
The solver below stays exact but is fast in practice, in three steps.

1. **Lower bound.** Pretend a request may be cut into pieces shared by the two server groups
   (the VP servers and the M servers). For a candidate makespan ``T`` each group then offers
   ``servers * T`` time units, and the best split is easy: the M servers should take the work
   they are relatively best at first (Music, then Picture, then Video). A request longer than
   ``T`` on one kind cannot go there at all, and a server's load is always a multiple of the
   greatest common divisor of the processing times on its kind, so ``T`` is rounded down to one.
   The smallest whole ``T`` for which this relaxed problem fits is a lower bound (whole, because
   every processing time is), and it is never below the simple bounds
   ``max(largest fastest time, total fastest time / servers)``. Two of the ``servers + 1``
   longest requests must share a server, which gives one more bound.
2. **Search.** Ask: can every request be placed so that no server finishes after ``T``? First
   for ``T`` = the lower bound (usually the answer is yes, and we are done), then for ``T + 1``,
   ``T + 3``, ``T + 7``, ... until one fits, then by binary search between the largest ``T``
   known to be impossible and the best makespan found so far. Each question is a depth-first
   search that places the longest request first, trying first the server kind
   that is fastest for it and the fullest server with room left (best fit). It cuts a branch as
   soon as:
   - the remaining requests cannot fit in the remaining room even when cut (step 1), counting on
     each server only the room that some subset of the remaining requests can fill exactly;
   - an identical server (same kind, same load) was already tried: the subtrees are mirror images;
   - the same situation (same depth, same loads up to swapping identical servers) already failed.
3. **A stronger check for stubborn cases.** Most searches succeed within a few steps per request.
   When one runs long, ``T`` may be impossible for a reason step 1 ignores: requests cannot be
   cut. From then on, before each search, a knapsack (dynamic programming over the M group's
   time) decides whether the requests, kept whole, can be split between the two groups at all;
   if not, that ``T`` is skipped without a search.

The search is exponential in the worst case (the problem is NP-hard, like bin packing), but the
bounds are tight on almost every instance, so a large batch is usually solved by a search that
never backtracks far.
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
    # YOUR CODE HERE
    raise NotImplementedError()


def optimal_makespan(
    requests: Sequence[tuple[str, int]], fleet: Sequence[str] = DEFAULT_FLEET
) -> tuple[int, list[int]]:
    """The smallest makespan of the batch ``requests``, and a server per request achieving it.

    >>> optimal_makespan([("V", 4), ("M", 4), ("P", 2), ("P", 2)])
    (4, [0, 2, 1, 1])
    """
    # YOUR CODE HERE
    raise NotImplementedError()
