"""``--prefork N``: the pool of relay workers keeps every guarantee of the default mode."""

import os
import signal
import socket
import subprocess
import sys

import pytest
from background import in_background
from test_balancer import (
    always_first,
    children_of,
    command_line_balancer,
    wait_for,
    zombies_of,
)
from test_demo import processes_mentioning

from minilb import prefork
from minilb.client import CLASSIC_WORKLOADS, parse_workload, send_bytes, send_request
from minilb.cluster import Cluster, stop_process
from minilb.protocol import encode_request, open_listener

MIXED = [r for text in CLASSIC_WORKLOADS.values() for r in parse_workload(text)]


def test_every_reply_reaches_its_own_client_with_150_concurrent_clients():
    requests = MIXED * 10  # 150, every kind and size
    with Cluster(unit=0.0, prefork=3) as cluster:
        exchanges = cluster.send(requests, concurrency=len(requests))
        assert [e.reply for e in exchanges] == [encode_request(r) for r in requests]
        assert len(children_of(cluster.balancer_pid)) == 3  # no fork per request
        assert zombies_of(cluster.balancer_pid) == []
        log = cluster.access_log()
    assert len(log) == len(requests)
    assert all(r["error"] is None and r["measured_finish"] is not None for r in log)
    assert sorted(r["request"] for r in log) == sorted(str(r) for r in requests)


def test_measured_makespan_follows_the_prediction():
    with Cluster(unit=0.02, prefork=2) as cluster:
        assert all(e.ok for e in cluster.send(MIXED * 4, concurrency=60))
        log = cluster.access_log()
    predicted = max(r["finish"] for r in log)
    measured = max(r["measured_finish"] for r in log)
    assert predicted <= measured <= 1.5 * predicted + 10  # generous: the machine may be busy


def test_backend_killed_mid_request_is_retried_elsewhere():
    with Cluster(unit=0.05, policy=always_first, prefork=2) as cluster:
        client, result = in_background(send_request, cluster.address, ("V", 9))
        wait_for(lambda: cluster.access_log())
        os.kill(cluster.server_pids[0], signal.SIGKILL)
        client.join()
        assert result["value"].reply == b"V9"
        [record] = cluster.access_log()
        assert record["server"] == "vp2" and record["retried"]
        assert send_request(cluster.address, ("P", 1)).reply == b"P1"


def test_all_backends_gone_gives_err_and_the_balancer_lives_on():
    with Cluster(fleet=("VP",), unit=0.05, prefork=2) as cluster:
        client, result = in_background(send_request, cluster.address, ("V", 9))
        wait_for(lambda: cluster.access_log())
        os.kill(cluster.server_pids[0], signal.SIGKILL)
        client.join()
        assert result["value"].reply.startswith(b"ERR ") and b"down" in result["value"].reply
        assert send_request(cluster.address, ("V", 1)).reply.startswith(b"ERR no server")


def fds_once_waiting(worker: int) -> int:
    """The descriptors a worker holds once it is set up and waits for work (not before it
    has closed what it inherited)."""
    wait_for(lambda: "poll" in open(f"/proc/{worker}/wchan").read())
    return len(os.listdir(f"/proc/{worker}/fd"))


def test_a_worker_that_dies_is_replaced_and_its_request_gets_err():
    with Cluster(fleet=("VP",), unit=0.2, prefork=1) as cluster:
        wait_for(lambda: children_of(cluster.balancer_pid))  # forked once it serves
        [worker] = children_of(cluster.balancer_pid)
        fds_of_a_fresh_worker = fds_once_waiting(worker)
        client, result = in_background(send_request, cluster.address, ("V", 9))  # 1.8 s
        wait_for(lambda: cluster.access_log())
        os.kill(worker, signal.SIGKILL)
        client.join()
        assert result["value"].reply.startswith(b"ERR the relay worker failed")
        wait_for(lambda: children_of(cluster.balancer_pid) not in ([], [worker]))
        [replacement] = children_of(cluster.balancer_pid)
        assert send_request(cluster.address, ("P", 1)).reply == b"P1"
        # It kept no copy of the dead worker's client (or of anything else of the parent's).
        assert fds_once_waiting(replacement) == fds_of_a_fresh_worker
        assert zombies_of(cluster.balancer_pid) == []
    [failed, served] = cluster.access_log()
    assert failed["error"].startswith("the relay worker failed") and served["error"] is None


def test_sigterm_finishes_requests_in_flight_then_exits_with_its_workers():
    with Cluster(unit=0.05, prefork=2) as cluster:
        requests = [("V", 3), ("P", 2), ("M", 4), ("V", 1), ("M", 1), ("P", 3)]
        clients, result = in_background(cluster.send, requests, len(requests))
        wait_for(lambda: len(cluster.access_log()) == len(requests))
        workers = children_of(cluster.balancer_pid)
        pid, cluster.balancer_pid = cluster.balancer_pid, None
        assert stop_process(pid) == 0
        clients.join()
        assert all(e.ok for e in result["value"])
        for worker in workers:  # reaped by the balancer before it exited
            assert not os.path.exists(f"/proc/{worker}")
        with pytest.raises(OSError):
            socket.create_connection(cluster.address, timeout=2)


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "minilb.cli", "balancer", "--port", "0", *arguments],
        capture_output=True, text=True, timeout=60,
    )


def test_prefork_with_persistent_is_refused_in_one_line():
    result = run_cli("--servers", "VP@127.0.0.1:1", "--prefork", "2", "--persistent")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "minilb balancer: error: --prefork and --persistent cannot be combined: "
        "--persistent already keeps one long-lived child per server\n"
    )
    result = run_cli("--servers", "VP@127.0.0.1:1", "--prefork", "-1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_command_line_prefork_balancer(tmp_path):
    log_path = tmp_path / "access.log"
    with command_line_balancer("--prefork", "2", "--log", str(log_path)) as (process, address):
        assert send_bytes(address, b"P3") == b"P3"
        assert len(children_of(process.pid)) == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0


def test_demo_with_prefork_runs_and_leaves_no_process(tmp_path):
    command = [sys.executable, "-m", "minilb.cli", "demo", "--unit", "0.02", "--out",
               str(tmp_path), "--prefork", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "measured finish" in result.stdout and (tmp_path / "demo_gantt.png").exists()
    assert processes_mentioning(str(tmp_path)) == []
    refused = subprocess.run([*command, "--persistent"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == "minilb demo: error: --prefork and --persistent cannot be combined\n"


def test_the_parent_sends_on_a_backend_connection_still_under_way(monkeypatch):
    # A listener whose accept queue is full drops the next SYN (the kernel retries it about a
    # second later), so the non-blocking connect is still under way when the 2 bytes are due.
    monkeypatch.setattr(prefork, "CONNECT_TIMEOUT", 30.0)  # generous: the retry takes ~1 s
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        with socket.create_connection(address, timeout=5):  # fills the queue
            sender, result = in_background(
                prefork._connect_and_send, address, socket.AF_INET, b"V1"
            )
            listener.accept()[0].close()  # frees the queue: the retried SYN gets in
            listener.settimeout(30)
            served, _ = listener.accept()
            sender.join()
            with served, result["value"] as backend:
                served.settimeout(30)
                assert served.recv(2) == b"V1"
                assert backend.gettimeout() == 0.0  # handed to a worker non-blocking


def test_a_refused_backend_connection_raises_and_leaks_nothing():
    listener = open_listener()
    address = listener.getsockname()[:2]
    listener.close()  # nobody listens there any more
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        prefork._connect_and_send(address, socket.AF_INET, b"V1")
    assert len(os.listdir("/proc/self/fd")) == before
