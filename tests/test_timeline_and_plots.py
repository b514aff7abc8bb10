import subprocess
import sys

import pytest

from minilb.plots import gantt, text_timeline
from minilb.policies import RoundRobin, fastest_kind
from minilb.scheduling import choose_server, finish_times, greedy_assign
from minilb.timeline import Schedule

BATCH = [("M", 3), ("P", 3), ("P", 1), ("M", 2), ("V", 2), ("V", 1), ("P", 3), ("V", 3)]


def test_a_server_starts_a_request_when_both_it_and_the_request_are_ready():
    schedule = Schedule()
    first = schedule.place(("V", 2), 0, now=1.0)
    second = schedule.place(("M", 1), 0, now=0.0)  # queued behind the first
    late = schedule.place(("M", 1), 2, now=5.0)  # idle server, starts on arrival
    assert (first.start, first.finish) == (1.0, 3.0)
    assert (second.start, second.finish) == (3.0, 5.0)
    assert (late.start, late.finish) == (5.0, 6.0)
    assert schedule.makespan == 6.0


def test_simulating_greedy_agrees_with_the_exercise_functions():
    schedule = Schedule.simulate(BATCH, choose_server)
    assert schedule.assignment == greedy_assign(BATCH)
    assert schedule.finish_times == finish_times(BATCH, schedule.assignment)
    again = Schedule.from_assignment(BATCH, schedule.assignment)
    assert again.placements == schedule.placements


def test_round_robin_takes_turns_and_fastest_kind_avoids_slow_servers():
    assert Schedule.simulate(BATCH, RoundRobin()).assignment == [0, 1, 2, 0, 1, 2, 0, 1]
    fastest = Schedule.simulate(BATCH, fastest_kind).assignment
    assert all(
        (server == 2) == (request[0] == "M") for server, request in zip(fastest, BATCH, strict=True)
    )


def test_bad_placements_are_refused():
    with pytest.raises(ValueError):
        Schedule().place(("V", 1), 3)
    with pytest.raises(ValueError):
        Schedule.from_assignment(BATCH, [0])


def test_gantt_writes_a_png_with_one_panel_per_schedule(tmp_path):
    path = tmp_path / "chart.png"
    greedy = Schedule.simulate(BATCH, choose_server)
    figure = gantt({"greedy": greedy, "round-robin": Schedule.simulate(BATCH, RoundRobin())}, path)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert len(figure.axes) == 2
    single = gantt(greedy, title="just one")
    assert len(single.axes) == 1


def test_text_timeline_has_a_row_per_server_and_the_makespan():
    schedule = Schedule.simulate(BATCH, choose_server)
    text = text_timeline(schedule, width=40)
    lines = text.splitlines()
    assert [line.split("|")[0].strip() for line in lines[:3]] == ["vp1 (VP)", "vp2 (VP)", "m1 (M)"]
    assert "[M3" in lines[2]
    assert lines[-1].endswith(f"makespan {schedule.makespan:g}")
    assert text_timeline(Schedule()).splitlines()[-1].endswith("makespan 0")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "minilb.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_schedule_command_prints_greedy_optimum_and_ratio(tmp_path):
    plot = tmp_path / "both.png"
    result = run_cli("schedule", "M1V2P3M2V2P3", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "greedy makespan:" in result.stdout
    assert "optimal makespan:" in result.stdout
    assert "ratio greedy / optimal:" in result.stdout
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("bad", [["X1"], ["V0"], [], ["M1", "--fleet", "VP,Q"]])
def test_schedule_command_bad_input_is_one_line_and_exit_2(bad):
    result = run_cli("schedule", *bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_schedule_that_runs_for_ever_keeps_only_its_finish_times():
    from minilb.timeline import Schedule

    kept, lean = Schedule(), Schedule(keep_placements=False)
    for schedule in (kept, lean):
        for _ in range(1000):
            placed = schedule.place(("V", 1), 0)
    assert placed.finish == 1000 and lean.finish_times == kept.finish_times == [1000, 0, 0]
    assert len(kept.placements) == 1000 and lean.placements == []
