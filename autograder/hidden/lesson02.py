"""Hidden tests of lesson 2 (greedy balancing), 10 points.

Every call of a valid case runs in the contracts harness, so each exercise is also graded on
leaving the caller's lists unchanged (at every clock and fleet below, not only at time 0), and
on returning exactly the API's types.

makespan (1): lists of finish times (0.25); one server and no server (0.125); finish times
given as a tuple (0.125); returns a float, an int is wrong (0.25); leaves the caller's list
unchanged (0.25).
choose_server (4): random states on the default fleet (0.75); ties, where only the tie-break
decides (0.75); a clock ``now`` that matters: fractional, between finish times, after all of
them (0.75); fleets with several Music servers, at clocks where ignoring ``now`` or the
tie-break shows (0.25); several VP servers, one, five and ten servers (0.25); finish times,
request and fleet given as tuples and ``Request`` named tuples, whole and fractional times
(0.25); returns an int (0.25); leaves the caller's finish_times and request unchanged
(0.5); invalid input raises ValueError: unknown type or kind, finish times that do not match
the fleet (0.125), lengths 2.0, True, "3", 0, -1 (0.125). A choice that reaches the same
makespan as the rule but breaks the tie-break earns half of its group. A bool, NaN or an
infinity is never a server index (``is_index``): such an answer is wrong in its own case.
greedy_assign (3): batches on the default fleet, empty and single ones included (0.75); batches
full of ties (0.5); fleets with several Music servers (0.25); other fleets (0.25); lengths
above 9 (0.25); requests as tuples and ``Request`` named tuples, fleets as tuples (0.25);
returns a list of ints (0.25); leaves the caller's requests unchanged (0.25); invalid input:
unknown types or kinds, no server (0.125), bad lengths (0.125). An assignment whose every step
minimises the makespan but breaks a tie-break earns half.
finish_times (2): batches with given assignments on the default fleet (0.5), on fleets with
several Music servers (0.25) and other fleets (0.25); tuples and ``Request`` named tuples
(0.25); returns a list of floats (0.25); leaves the caller's lists unchanged (0.25); invalid
input: mismatched lengths, server indices out of range or not ints (True, 1.0, "1"), no server
(0.125), bad lengths (0.125).
All cases come from fixed seeds: every student gets the same cases.
"""

import random
from collections.abc import Callable, Sequence
from functools import partial

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
    list_of,
    matching,
    partly,
    returns_group,
    same_number,
    same_numbers,
    type_name,
    unchanged_group,
    wrong,
)
from autograder.hidden.greedy_rules import CHOICE_MISTAKES, choice, resulting_makespans
from minilb.costs import DEFAULT_FLEET, FACTORS, REQUEST_TYPES
from minilb.scheduling import choose_server, finish_times, greedy_assign

LESSON = "02_greedy_balancing"
FLEET = list(DEFAULT_FLEET)
OTHER_FLEETS = [*SEVERAL_VP, *ONE_SERVER, *FIVE_SERVERS, TEN_SERVERS]
TIE_BREAK = (
    "your choice minimises the makespan but breaks the tie-break: prefer the server where the "
    "request itself finishes earliest, then the lowest index"
)


def _random_request(rng: random.Random, longest: int = 9) -> list:
    return [rng.choice(REQUEST_TYPES), rng.randint(1, longest)]


def _random_batch(rng: random.Random, size: int, longest: int = 9) -> list[list]:
    return [_random_request(rng, longest) for _ in range(size)]


# --- makespan ---------------------------------------------------------------------------------


def _judge_makespan(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if same_number(answer, max(args[0], default=0.0)):
        return RIGHT
    return wrong("not the largest finish time" if args[0] else "no server at all has makespan 0")


def _diagnose_makespan(responses: list[Response]) -> list[str]:
    if matching(responses, lambda times: sum(times)):
        return ["you add the finish times: the makespan is the largest one"]
    return []


def grade_makespan(student: Student) -> ExerciseResult:
    groups = [
        Group("lists of finish times (whole and fractional)", 0.25,
              [([3, 7, 2],), ([0.5, 2.25, 2.0],), ([9, 9, 1, 4],), ([1, 2, 3, 4, 5, 6, 7],),
               ([6, 2.5, 1],)], _judge_makespan),
        Group("one server, and no server at all", 0.125, [([4.5],), ([],)], _judge_makespan),
        Group("finish times given as a tuple", 0.125, [([2, 8.5, 3],), ([5, 1],)],
              _judge_makespan, shapes=[("tuple",)] * 2),
        returns_group(0.25, "returns a float", exactly("makespan", float, "a float")),
        unchanged_group(0.25, "leaves the caller's finish_times unchanged"),
    ]  # fmt: skip
    return grade_exercise(
        LESSON, "makespan", student, groups, _diagnose_makespan, arguments=("finish_times",)
    )


# --- choose_server ----------------------------------------------------------------------------


def _judge_choice(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    times, request, fleet, now = (*args, *(FLEET, 0.0)[len(args) - 2 :])
    if not is_index(answer):  # a bool too: its comparisons are a number's only by accident
        return wrong(f"returned {type_name(answer)}, not a server index (an int, 0 to servers - 1)")
    if not 0 <= answer < len(fleet):
        return wrong("returned a server index out of range (0 to servers - 1)")
    expected = choose_server(*args)
    if answer == expected:
        return RIGHT
    spans = resulting_makespans(times, request, fleet, now)
    if spans[answer][0] == spans[expected][0]:
        return partly(TIE_BREAK)
    if now and answer == choice(times, request, fleet, now, clock=False):
        return wrong("your choice ignores the clock: a request starts at max(now, finish time)")
    return wrong("your choice does not minimise the resulting makespan")


def _has_tie(times: list, request: list, fleet: list, now: float = 0.0) -> bool:
    spans = [span for span, _ in resulting_makespans(times, request, fleet, now)]
    return spans.count(min(spans)) > 1


def _differs(
    variant: dict, limit: int, rng: random.Random, state: object, worse: bool = False
) -> list[Args]:
    """Up to ``limit`` states from ``state(rng)`` on which the broken ``variant`` errs (with
    ``worse``: reaches a larger makespan, so the mistake is a wrong choice, not a tie-break)."""
    cases: list[Args] = []
    for _ in range(5000):
        if len(cases) == limit:
            break
        args = state(rng)
        expected, broken = choose_server(*args), choice(*args, **variant)
        spans = resulting_makespans(*args)
        if broken != expected and (not worse or spans[broken][0] > spans[expected][0]):
            cases.append(args)
    return cases


def _on_fleets(fleets: list[list[str]]) -> Callable[[random.Random], Args]:
    """Random states on one of ``fleets``, at a clock that is often after some finish times."""

    def state(rng: random.Random) -> Args:
        fleet = rng.choice(fleets)
        times = [rng.choice([0, 1, 2.5, 4, 7, 12]) for _ in fleet]
        return (times, _random_request(rng), fleet, rng.choice([0.0, 1.5, 4, 6.25]))

    return state


def choice_cases() -> dict[str, list[Args]]:
    rng = random.Random(20240502)

    def busy(r: random.Random) -> Args:
        return ([r.randint(0, 20) for _ in FLEET], _random_request(r), FLEET, 0.0)

    def skewed(r: random.Random) -> Args:  # one long queue makes the makespan tie often
        times = [r.randint(0, 4) for _ in FLEET]
        times[r.randrange(len(FLEET))] = r.randint(15, 30)
        return (times, _random_request(r, 5), FLEET, 0.0)

    def clocked(r: random.Random) -> Args:
        times = [r.choice([0, 1.5, 3, 4.25, 6, 10]) for _ in FLEET]
        now = r.choice([0.5, 2, 3.75, 5, 7.5, 12, 40.25])
        return (times, _random_request(r), FLEET, now)

    random_states = [busy(rng)[:2] for _ in range(10)] + [busy(rng) for _ in range(15)]
    random_states += [([0, 0, 0], [t, n]) for t in REQUEST_TYPES for n in (1, 5, 9)]
    ties = _differs({"finish_tie_break": False}, 6, rng, skewed)
    ties += _differs({"highest_index": True}, 6, rng, skewed)
    ties += [(t, [k, 2], FLEET, 0.0) for t in ([3, 3, 3], [0, 0, 9], [7, 7, 0]) for k in "VPM"]
    ties += [s for s in (skewed(rng) for _ in range(200)) if _has_tie(*s)][:10]
    clock = _differs({"clock": False}, 12, rng, clocked)
    clock += [([2, 5.5, 1], _random_request(rng), FLEET, 100.5) for _ in range(3)]
    clock += [clocked(rng) for _ in range(10)]
    music = _on_fleets(SEVERAL_MUSIC)
    several_music = _differs({"clock": False}, 6, rng, music, worse=True)
    several_music += _differs({"finish_tie_break": False}, 3, rng, music)
    several_music += [music(rng) for _ in range(8)]
    fleets = _differs({"clock": False}, 4, rng, _on_fleets(OTHER_FLEETS), worse=True)
    for fleet in OTHER_FLEETS:
        for _ in range(3):
            now = rng.choice([0.0, 1.5, 4])
            fleets.append(([rng.randint(0, 12) for _ in fleet], _random_request(rng), fleet, now))
    shapes = [("tuple",), ("same", "tuple"), ("same", "request-named"), ("same", "same", "tuple"),
              ("tuple", "request-named", "tuple")]  # fmt: skip
    typed = [([1.5, 4, 0], ["M", 3]), ([2, 0.5], ["P", 2], ["M", "VP"], 1),
             ([0, 3, 6.5], ["V", 4], FLEET, 5), ([4, 4, 1, 0], ["M", 2], SEVERAL_MUSIC[2], 2),
             ([7.25, 0, 3], ["P", 1], ["VP", "M", "M"], 3.5)]  # fmt: skip
    invalid = [
        ([0, 0], ["V", 2], FLEET, 0.0), ([0, 0, 0, 0], ["M", 1]), ([0, 0, 0], ["X", 2]),
        ([1, 2], ["P", 3], ["VP", "Q"], 0.0), ([0, 0], ["M", 2], ["M", "M", "VP"]),
    ]  # fmt: skip
    return {"random": random_states, "ties": ties, "clock": clock,
            "several music": several_music, "fleets": fleets, "typed": typed,
            "typed shapes": shapes, "invalid": invalid}  # fmt: skip


def _diagnose_choices(responses: list[Response]) -> list[str]:
    return [message for rule, message in CHOICE_MISTAKES if matching(responses, rule)][:1]


def grade_choose_server(student: Student) -> ExerciseResult:
    cases = CHOICE_CASES
    groups = [
        Group("idle and busy servers on the default fleet", 0.75, cases["random"],
              _judge_choice),
        Group("ties, where the tie-break decides", 0.75, cases["ties"], _judge_choice),
        Group("a clock `now` later than some or all finish times", 0.75, cases["clock"],
              _judge_choice),
        Group("fleets with several Music servers", 0.25, cases["several music"], _judge_choice),
        Group("other fleets (several VP servers, one, five and ten servers)", 0.25,
              cases["fleets"], _judge_choice),
        Group("tuples, Request named tuples, whole and fractional times", 0.25, cases["typed"],
              _judge_choice, shapes=cases["typed shapes"]),
        returns_group(0.25, "returns an int", exactly("choose_server", int, "an int index")),
        unchanged_group(0.5, "leaves the caller's finish_times and request unchanged"),
        Group("invalid input (unknown type or kind, finish times that do not match the fleet)",
              0.125, cases["invalid"], expect_value_error("invalid input"), invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.125,
                          lambda length: ([0, 2, 1], ["P", length]),
                          lambda times, request, *rest: request[1]),
    ]  # fmt: skip
    return grade_exercise(LESSON, "choose_server", student, groups, _diagnose_choices,
                          arguments=("finish_times", "request", "fleet", "now"))


# --- greedy_assign ----------------------------------------------------------------------------


def _every_step_minimal(requests: list, assignment: list, fleet: Sequence[str]) -> bool:
    times = [0.0] * len(fleet)
    for (request_type, length), server in zip(requests, assignment, strict=True):
        spans = [span for span, _ in resulting_makespans(times, (request_type, length), fleet, 0)]
        if spans[server] != min(spans):
            return False
        times[server] += length * FACTORS[fleet[server]][request_type]
    return True


def _judge_assignment(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    requests, fleet = (*args, FLEET)[:2]
    if (
        not isinstance(answer, list)
        or len(answer) != len(requests)
        or not all(is_index(s) and 0 <= s < len(fleet) for s in answer)
    ):
        return wrong("should return a list with one server index per request")
    if answer == greedy_assign(*args):
        return RIGHT
    if _every_step_minimal(requests, answer, fleet):
        return partly(TIE_BREAK)
    return wrong("some request was not placed where it minimises the makespan")


def _simulate(chooser: object, requests: list, fleet: Sequence[str] = DEFAULT_FLEET) -> list[int]:
    times: list[float] = [0.0] * len(fleet)
    assignment = []
    for request_type, length in requests:
        server = chooser(times, [request_type, length], list(fleet), 0.0)  # type: ignore[operator]
        times[server] += length * FACTORS[fleet[server]][request_type]
        assignment.append(server)
    return assignment


def _diagnose_assignment(responses: list[Response]) -> list[str]:
    for chooser, message in CHOICE_MISTAKES:
        if matching(responses, partial(_simulate, chooser)):
            return [message]

    def round_robin(requests: list, fleet: Sequence[str] = FLEET) -> list[int]:
        return [i % len(fleet) for i in range(len(requests))]

    if matching(responses, round_robin):
        return ["your servers take turns (round robin): use the greedy rule for every request"]
    return []


def assignment_cases() -> dict[str, list[Args]]:
    rng = random.Random(20240503)
    default = [(_random_batch(rng, size),) for size in (2, 3, 5, 6, 8, 10, 12, 15)]
    default += [(_random_batch(rng, 7), FLEET) for _ in range(4)] + [([],), ([["M", 3]],)]
    ties = [([["V", 1]] * 7,), ([["P", 2]] * 5,), ([["M", 1], ["M", 1], ["V", 2], ["V", 2]] * 2,),
            ([["V", 3], ["P", 3]] * 4, ["VP", "VP"])]  # fmt: skip
    music = [(_random_batch(rng, rng.randint(5, 12)), fleet) for fleet in SEVERAL_MUSIC * 2]
    music += [([["M", 2]] * 6 + [["P", 1]] * 2, fleet) for fleet in SEVERAL_MUSIC[:2]]
    fleets = [(_random_batch(rng, rng.randint(4, 12)), fleet) for fleet in OTHER_FLEETS * 2]
    long = [(_random_batch(rng, rng.randint(3, 8), longest=40),) for _ in range(4)]
    typed = [(_random_batch(rng, 6),), (_random_batch(rng, 5),), (_random_batch(rng, 7),),
             (_random_batch(rng, 6), SEVERAL_MUSIC[0]), (_random_batch(rng, 5), ["M", "VP"])]
    shapes = [("tuples",), ("named",), ("named-tuple",), ("same", "tuple"), ("named", "tuple")]
    return {"default": default, "ties": ties, "several music": music, "fleets": fleets,
            "long": long, "typed": typed, "typed shapes": shapes}  # fmt: skip


def grade_greedy_assign(student: Student) -> ExerciseResult:
    cases = ASSIGNMENT_CASES
    groups = [
        Group("batches on the default fleet (empty and single ones too)", 0.75, cases["default"],
              _judge_assignment),
        Group("batches full of ties (identical requests, equal loads)", 0.5, cases["ties"],
              _judge_assignment),
        Group("fleets with several Music servers", 0.25, cases["several music"],
              _judge_assignment),
        Group("other fleets (several VP servers, one, five and ten servers)", 0.25,
              cases["fleets"], _judge_assignment),
        Group("lengths above 9 (offline batches)", 0.25, cases["long"], _judge_assignment),
        Group("requests as tuples and Request named tuples, fleets as tuples", 0.25,
              cases["typed"], _judge_assignment, shapes=cases["typed shapes"]),
        returns_group(0.25, "returns a list of ints",
                      list_of("greedy_assign", int, "a list of ints (server indices)")),
        unchanged_group(0.25, "leaves the caller's requests unchanged"),
        Group("invalid input (unknown request type or kind, no server)", 0.125,
              [([["V", 1], ["Q", 1]],), ([["v", 2]],), ([["M", 2]], ["VP", "X"]),
               ([["P", 1]], [])],
              expect_value_error("invalid input"), invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.125,
                          lambda length: ([["V", 1], ["M", length]],),
                          lambda requests, *rest: requests[-1][1]),
    ]  # fmt: skip
    return grade_exercise(LESSON, "greedy_assign", student, groups, _diagnose_assignment,
                          arguments=("requests", "fleet"))


# --- finish_times -----------------------------------------------------------------------------


def _judge_finish_times(args: Args, answer: Answer) -> Outcome:
    failure = call_failure(answer)
    if failure:
        return wrong(failure)
    if same_numbers(answer, finish_times(*args)):
        return RIGHT
    return wrong("wrong finish times (one per server, in fleet order)")


def _diagnose_finish_times(responses: list[Response]) -> list[str]:
    def raw(requests: list, assignment: list, fleet: Sequence[str] = FLEET) -> list[float]:
        times = [0.0] * len(fleet)
        for (_, length), server in zip(requests, assignment, strict=True):
            times[server] += length
        return times

    if matching(responses, raw):
        return ["your finish times add raw lengths: use the processing time on that server's kind"]
    return []


def finish_time_cases() -> dict[str, list[Args]]:
    rng = random.Random(20240504)

    def batch(fleet: list, size: int) -> Args:
        return (_random_batch(rng, size, 12), [rng.randrange(len(fleet)) for _ in range(size)])

    default = [batch(FLEET, size) for size in (1, 3, 6, 10)] + [([], [])]
    default += [(*batch(FLEET, 5), FLEET)]
    music = [(*batch(fleet, rng.randint(3, 9)), fleet) for fleet in SEVERAL_MUSIC]
    fleets = [(*batch(fleet, rng.randint(2, 9)), fleet) for fleet in OTHER_FLEETS]
    typed = [batch(FLEET, 4), batch(FLEET, 5), (*batch(FLEET, 3), FLEET),
             (*batch(SEVERAL_MUSIC[0], 6), SEVERAL_MUSIC[0])]  # fmt: skip
    shapes = [("tuples",), ("named", "tuple"), ("named-tuple", "tuple", "tuple"),
              ("same", "same", "tuple")]  # fmt: skip
    invalid = [([["V", 1], ["M", 2]], [0]), ([["V", 1]], [0, 1]), ([["P", 2]], [3]),
               ([["P", 2], ["V", 1]], [0, -1]), ([["M", 2]], [1], ["M"]),
               ([["V", 1]], [0], []),
               # server indices that are not ints: a bool, a float, a string
               ([["V", 1], ["M", 2]], [0, True]), ([["V", 1], ["M", 2]], [0, 1.0]),
               ([["V", 1], ["M", 2]], [0, "1"])]  # fmt: skip
    return {"default": default, "several music": music, "fleets": fleets, "typed": typed,
            "typed shapes": shapes, "invalid": invalid}  # fmt: skip


def grade_finish_times(student: Student) -> ExerciseResult:
    cases = FINISH_TIME_CASES
    groups = [
        Group("batches on the default fleet", 0.5, cases["default"], _judge_finish_times),
        Group("fleets with several Music servers", 0.25, cases["several music"],
              _judge_finish_times),
        Group("other fleets (several VP servers, one, five and ten servers)", 0.25,
              cases["fleets"], _judge_finish_times),
        Group("tuples and Request named tuples", 0.25, cases["typed"], _judge_finish_times,
              shapes=cases["typed shapes"]),
        returns_group(0.25, "returns a list of floats",
                      list_of("finish_times", float, "a list of floats")),
        unchanged_group(0.25, "leaves the caller's requests and assignment unchanged"),
        Group("invalid input (lengths that differ, server indices out of range or not ints, "
              "no server)", 0.125,
              cases["invalid"], expect_value_error("invalid input"), invalid_inputs=True),
        bad_lengths_group("lengths that are not positive ints", 0.125,
                          lambda length: ([["P", 2], ["V", length]], [0, 1]),
                          lambda requests, *rest: requests[-1][1]),
    ]  # fmt: skip
    return grade_exercise(LESSON, "finish_times", student, groups, _diagnose_finish_times,
                          arguments=("requests", "assignment", "fleet"))


CHOICE_CASES = choice_cases()
ASSIGNMENT_CASES = assignment_cases()
FINISH_TIME_CASES = finish_time_cases()

EXERCISES = [
    Exercise(LESSON, "makespan", 1, grade_makespan),
    Exercise(LESSON, "choose_server", 4, grade_choose_server),
    Exercise(LESSON, "greedy_assign", 3, grade_greedy_assign),
    Exercise(LESSON, "finish_times", 2, grade_finish_times),
]
