"""The live demo runs to the end without a terminal and leaves no process behind."""

import os
import re
import signal
import subprocess
import sys
import time

from test_network import student_calls, write_student_notebook

from minilb.client import COURSE_WORKLOADS, parse_workload
from minilb.demo import simulate_hosts
from minilb.policies import RoundRobin
from minilb.scheduling import choose_server


def processes_mentioning(marker):
    """Pids whose command line contains ``marker`` (forked children share their parent's)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def demo_command(out_dir):
    return [sys.executable, "-m", "minilb.cli", "demo", "--unit", "0.02", "--out", str(out_dir)]


def test_demo_runs_in_a_pipe_and_cleans_up(tmp_path):
    result = subprocess.run(demo_command(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for expected in ["predicted finish", "measured finish", "exact optimum", "round-robin"]:
        assert expected in result.stdout
    assert (tmp_path / "demo_gantt.png").stat().st_size > 0
    assert str(tmp_path / "demo_gantt.png") in result.stdout.replace("\n", "")
    assert processes_mentioning(str(tmp_path)) == []


def test_demo_stops_everything_on_ctrl_c(tmp_path):
    command = demo_command(tmp_path)
    command[command.index("0.02")] = "0.5"  # slow enough to interrupt mid-run
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "listening on" in process.stdout.readline()
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    deadline = time.monotonic() + 10
    while processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(tmp_path)) == []


def test_demo_runs_a_students_functions(tmp_path):
    calls = tmp_path / "calls"
    notebook = write_student_notebook(tmp_path / "mine.ipynb", calls)
    command = [*demo_command(tmp_path), "--student", notebook]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "measured finish" in result.stdout
    assert student_calls(calls) == {"recv_exactly", "spawn_relay_child", "reap_children"}
    assert processes_mentioning(str(tmp_path)) == []


def test_demo_with_a_stubbed_notebook_says_so_in_one_line_before_starting(tmp_path):
    notebook = write_student_notebook(tmp_path / "blank.ipynb", stubs=True)
    command = [*demo_command(tmp_path), "--student", notebook]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "minilb demo: error: exercise not done yet: recv_exactly (lesson 04_sockets_and_forking)\n"
    )


def test_demo_runs_a_year_s_hosts_or_a_course_s_own_files(tmp_path):
    (tmp_path / "h1.in").write_text("V1V1\n")
    command = [*demo_command(tmp_path), "--workload", "2020",
               "--hosts-file", str(tmp_path / "h1.in")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    counts = re.findall(r"│ +(?:vp1|vp2|m1) \((?:VP|M)\) │ +(\d+) │", result.stdout)
    assert sum(map(int, counts)) == 4 * 6 + 2  # 2020's h2..h5, and h1 from its file
    bad = subprocess.run([*demo_command(tmp_path), "--workload", "1999"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and "bad --workload '1999'" in bad.stderr


def test_simulated_closed_loop_hosts():
    # The course's hosts with unit 1: greedy 14 (the course's own run measured 14.04 s), and
    # 26 with 2020's longer lists; round-robin needs nearly twice as long.
    for year, requests, greedy_makespan in [("2017", 15, 14), ("2020", 30, 26)]:
        workloads = {host: parse_workload(text) for host, text in COURSE_WORKLOADS[year].items()}
        greedy = simulate_hosts(workloads, choose_server, ("VP", "VP", "M"))
        round_robin = simulate_hosts(workloads, RoundRobin(), ("VP", "VP", "M"))
        assert len(greedy.placements) == len(round_robin.placements) == requests
        assert greedy.makespan == greedy_makespan < round_robin.makespan
