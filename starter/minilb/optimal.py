"""The exact offline optimum: the smallest makespan of a batch, and lower bounds on it.

A batch arrives all at time 0; each server works through its requests back to back, so its
finish time is the sum of its processing times, and the makespan is the largest finish time.
Trying every assignment costs ``servers ** requests`` steps: hopeless beyond about 15 requests.
The solver below stays exact but is fast in practice, in four steps.

1. **Lower bound.** Pretend a request may be cut into pieces shared by the two server groups
   (the VP servers and the M servers). For a candidate makespan ``T`` each group then offers
   ``servers * T`` time units, and the best split is easy: the M servers should take the work
   they are relatively best at first (Music, then Picture, then Video). A request longer than
   ``T`` on one kind cannot be cut there at all, and a server's load is always a multiple of the
   greatest common divisor of the processing times on its kind, so ``T`` is rounded down to one.
   The smallest whole ``T`` for which this relaxed problem fits is a lower bound (whole, because
   every processing time is), and it is never below the simple bounds
   ``max(largest fastest time, total fastest time / servers)``. Two of the ``servers + 1``
   longest requests must share a server, which gives one more bound.
2. **Upper bound.** Longest request first, each on the server where it finishes earliest (LPT).
3. **Done?** If the two bounds meet, LPT is optimal and we have proved it.
4. **Search.** Otherwise ask, for ``T = lower bound, lower bound + 1, ...``: can every request be
   placed so that no server finishes after ``T``? The first ``T`` that works is the optimum (LPT
   already achieves the upper bound, so the search never goes beyond it). Each question is a
   depth-first search that places the longest requests first, and cuts a branch as soon as:
   - the request does not fit on the server (its load would exceed ``T``);
   - the relaxed problem of step 1 says the remaining requests cannot fit in the remaining room;
   - an identical server (same kind, same load) was already tried: the subtrees are mirror images;
   - the same situation (same depth, same loads up to swapping identical servers) already failed.

The search is exponential in the worst case (the problem is NP-hard, like bin packing), but the
bounds are tight on almost every instance, so large batches usually finish at step 3 or after a
search that never backtracks far.
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
