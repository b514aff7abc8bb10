"""The greedy rule and the ways students commonly get it wrong, for judging and diagnosing.

A fact worth knowing when reading mistakes: minimising the resulting makespan and then the
request's own finish time picks the same server as minimising the own finish time alone (the
server with the earliest finish also gives the smallest makespan), so "earliest finish" is not a
mistake and is not diagnosed as one.

``choice`` is the rule of DESIGN section 4 with switches that break one part of it; the grader
replays every switch on the student's cases and names the one their answers follow.
"""

from collections.abc import Callable, Sequence

from minilb.costs import DEFAULT_FLEET, FACTORS

Chooser = Callable[..., int]


def resulting_makespans(
    times: Sequence[float], request: Sequence, fleet: Sequence[str], now: float, raw: bool = False
) -> list[tuple[float, float]]:
    """Per server: (makespan if the request goes there, when the request itself finishes)."""
    request_type, length = request
    keys = []
    for server, kind in enumerate(fleet):
        cost = length if raw else length * FACTORS[kind][request_type]
        done = max(now, times[server]) + cost
        others = [f for j, f in enumerate(times) if j != server]
        keys.append((max([done, *others]), done))
    return keys


def choice(
    times: Sequence[float],
    request: Sequence,
    fleet: Sequence[str] = DEFAULT_FLEET,
    now: float = 0.0,
    *,
    raw: bool = False,
    clock: bool = True,
    finish_tie_break: bool = True,
    highest_index: bool = False,
) -> int:
    """The greedy choice, or a broken variant of it (each switch breaks one step)."""
    keys = resulting_makespans(times, request, fleet, now if clock else 0.0, raw)
    if not finish_tie_break:
        keys = [(span, 0.0) for span, _ in keys]
    servers = range(len(fleet))
    best = min(keys)
    ties = [server for server in servers if keys[server] == best]
    return ties[-1] if highest_index else ties[0]


def least_loaded(
    times: Sequence[float],
    request: Sequence,
    fleet: Sequence[str] = DEFAULT_FLEET,
    now: float = 0.0,
) -> int:
    return min(range(len(fleet)), key=lambda server: (times[server], server))


def music_server_last(
    times: Sequence[float],
    request: Sequence,
    fleet: Sequence[str] = DEFAULT_FLEET,
    now: float = 0.0,
) -> int:
    """The rule on the default fleet's pattern: every server VP but the last, a Music one."""
    return choice(times, request, ["VP"] * (len(fleet) - 1) + ["M"], now)


# (variant, what the student is told when all their answers follow it)
CHOICE_MISTAKES: list[tuple[Chooser, str]] = [
    (
        lambda *a: choice(*a, raw=True),
        "your choices match the rule with raw lengths instead of processing times "
        "(length x the server's factor)",
    ),
    (
        lambda *a: choice(*a, clock=False),
        "your choices match the rule that ignores the clock: a request cannot start before "
        "`now`, so it finishes at max(now, finish time) + cost",
    ),
    (
        lambda *a: choice(*a, finish_tie_break=False),
        "your choices match a tie-break by index only: among choices with the same makespan, "
        "first prefer the server where the request itself finishes earliest",
    ),
    (
        lambda *a: choice(*a, highest_index=True),
        "your choices break full ties towards the highest index: the rule takes the lowest",
    ),
    (
        music_server_last,
        "your choices treat the last server as the only Music server: use the kinds of the "
        "fleet you are given",
    ),
    (
        least_loaded,
        "your choices pick the least busy server, ignoring what the request costs there",
    ),
]
