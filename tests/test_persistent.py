"""``minilb balancer --persistent`` against servers like the original course's: each accepts
exactly one connection, serves the requests on it first in, first out, and dies when it closes.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from background import in_background

from minilb.access_log import AccessLog
from minilb.balancer import Backend, Balancer, read_access_log
from minilb.client import send_concurrently, send_request
from minilb.cluster import Cluster, fork_process, stop_process
from minilb.costs import server_names
from minilb.network import recv_exactly
from minilb.persistent import ANSWERED, ServerChannel
from minilb.protocol import WIRE_REQUESTS, decode_request, open_listener
from minilb.timeline import service_time

ALL_REQUESTS = list(WIRE_REQUESTS.values())  # 27 kinds of request


def one_connection_server(listener: socket.socket, kind: str, unit: float) -> None:
    """The course's ``server.pyc``, in Python: one connection, FIFO on it, then die."""
    connection, _ = listener.accept()
    listener.close()  # a second connection (a probe, another balancer) is refused
    with connection:
        while True:
            try:
                data = recv_exactly(connection, 2, 3600.0)
            except ConnectionError:
                return  # the connection closed: the course's server dies with it
            time.sleep(service_time(kind, decode_request(data)) * unit)
            connection.sendall(data)


def start_server(kind, unit, address=("127.0.0.1", 0)):
    listener = open_listener(*address)
    pid = fork_process(lambda: one_connection_server(listener, kind, unit))
    address = listener.getsockname()[:2]
    listener.close()
    return pid, address


class System:
    """One-connection servers and a ``--persistent`` balancer in front of them."""

    def __init__(self, tmp_path, fleet, unit, options):
        self.fleet, self.unit, self.options = fleet, unit, options
        self.server_pids, self.server_addresses = [], []
        self.log_path = str(tmp_path / "access.log")
        self.decisions_path = str(tmp_path / "decisions.log")

    def start(self):
        for kind in self.fleet:
            pid, address = start_server(kind, self.unit)
            self.server_pids.append(pid)
            self.server_addresses.append(address)
        names = server_names(self.fleet)
        backends = [Backend(name, kind, address) for name, kind, address
                    in zip(names, self.fleet, self.server_addresses, strict=True)]
        listener = open_listener()
        self.address = listener.getsockname()[:2]
        balancer = Balancer(listener, backends, self.unit, log_path=self.log_path,
                            decisions_path=self.decisions_path, persistent=True, **self.options)
        self.balancer_pid = fork_process(balancer.serve_forever)
        listener.close()

    def log(self):
        return read_access_log(self.log_path, self.decisions_path)

    def stop(self):
        if self.balancer_pid is not None:
            stop_process(self.balancer_pid)
        for pid in self.server_pids:
            stop_process(pid)


@contextmanager
def persistent_system(tmp_path, fleet=("VP", "VP", "M"), unit=0.01, **options):
    system = System(tmp_path, fleet, unit, options)
    try:
        system.start()
        yield system
    finally:
        system.stop()


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def always_first(finish_times, request, fleet, now=0.0):
    return 0


def test_every_reply_reaches_its_client_with_150_at_once(tmp_path):
    requests = ALL_REQUESTS * 5 + ALL_REQUESTS[:15]  # 150 clients at once, every kind mixed
    with persistent_system(tmp_path, unit=0.001) as system:
        exchanges = send_concurrently(system.address, requests, concurrency=len(requests))
        assert [e.reply for e in exchanges] == [f"{t}{n}".encode() for t, n in requests]
        log = read_access_log(system.log_path)  # the access log alone: one line per request
        assert len(log) == len(requests)
        assert all(r["error"] is None and r["measured_finish"] is not None for r in log)
        assert {r["server"] for r in log} == {"vp1", "vp2", "m1"}
        # Each server is still alive: no probe ever used up its one connection.
        assert all(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in system.server_pids)


def test_measured_makespan_is_close_to_the_prediction(tmp_path):
    hosts_2017 = "M1V2P3 M1M2M3 M1P2V3 M2P1V4 V1V2V4"  # the course's five hosts
    batch = [decode_request(hosts_2017.replace(" ", "")[i : i + 2].encode())
             for i in range(0, 30, 2)] * 2
    with persistent_system(tmp_path, unit=0.02) as system:
        exchanges = send_concurrently(system.address, batch, concurrency=len(batch))
        assert all(e.ok for e in exchanges)
        log = system.log()
    predicted = max(r["finish"] for r in log)
    measured = max(r["measured_finish"] for r in log)
    assert measured >= 0.95 * predicted  # no server is faster than its work
    assert measured <= 1.5 * predicted + 10  # generous: the machine may be busy


def test_a_server_dying_mid_run_answers_its_waiting_requests_with_err(tmp_path):
    with persistent_system(tmp_path, ("VP", "VP"), unit=0.05, policy=always_first) as system:
        worker, result = in_background(send_concurrently, system.address, [("V", 9)] * 3, 3)
        wait_for(lambda: len(system.log()) == 3)  # all three sent on vp1's connection
        os.kill(system.server_pids[0], signal.SIGKILL)
        worker.join(60)
        assert not worker.is_alive()  # nothing hangs
        replies = [e.reply for e in result["value"]]
        assert all(r.startswith(b"ERR backend vp1 down") for r in replies), replies
        assert all(r["error"] for r in system.log())
        # vp1 is down: the next request goes to vp2, the only live server.
        assert send_request(system.address, ("V", 1)).reply == b"V1"
        assert system.log()[-1]["server"] == "vp2"
        # A new server at vp1's address: the balancer reconnects and uses it again.
        pid, _ = start_server("VP", 0.05, system.server_addresses[0])
        system.server_pids.append(pid)

        def back_on_vp1():
            assert send_request(system.address, ("P", 1)).reply == b"P1"
            return system.log()[-1]["server"] == "vp1"

        wait_for(back_on_vp1, timeout=30)


def test_waits_for_a_server_that_is_not_up_yet(tmp_path):
    placeholder = open_listener()
    address = placeholder.getsockname()[:2]
    placeholder.close()  # nothing listens there yet
    balancer = subprocess.Popen(
        [sys.executable, "-m", "minilb.cli", "balancer", "--port", "0", "--persistent",
         "--unit", "0.01", "--log", str(tmp_path / "access.log"),
         "--servers", f"VP@{address[0]}:{address[1]}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    server_pid = None
    try:
        port = int(balancer.stdout.readline().rsplit(":", 1)[1])
        assert "core:" in balancer.stderr.readline()  # which relay core and policy it runs
        assert "waiting for server vp1" in balancer.stderr.readline()
        server_pid, _ = start_server("VP", 0.01, address)
        assert send_request(("127.0.0.1", port), ("M", 2)).reply == b"M2"
        assert "connected to server vp1" in balancer.stderr.readline()
    finally:
        balancer.terminate()
        assert balancer.wait(30) == 0
        if server_pid is not None:
            stop_process(server_pid)


def test_sigterm_finishes_requests_in_flight_then_exits(tmp_path):
    with persistent_system(tmp_path, unit=0.05) as system:
        requests = [("V", 3), ("P", 2), ("M", 4), ("V", 1), ("M", 1), ("P", 3)]
        worker, result = in_background(send_concurrently, system.address, requests, 6)
        wait_for(lambda: len(system.log()) == len(requests))
        pid, system.balancer_pid = system.balancer_pid, None
        assert stop_process(pid) == 0
        worker.join()
        assert all(e.ok for e in result["value"])
        # The balancer closed its connections: the course's servers die with them.
        for server in system.server_pids:
            assert stop_process(server, timeout=10) == 0
        system.server_pids = []


def test_persistent_mode_in_front_of_the_kits_servers():
    """The kit's servers take many requests per connection, so --persistent works with them."""
    with Cluster(unit=0.002, persistent=True) as cluster:
        results = cluster.run_hosts()
        assert all(e.ok for exchanges in results.values() for e in exchanges)
        exchanges = cluster.send(ALL_REQUESTS * 4, concurrency=108)
        assert all(e.ok for e in exchanges)
        log = cluster.access_log()
        assert len(log) == sum(map(len, results.values())) + len(exchanges)
        assert all(r["error"] is None for r in log)


def test_the_demo_runs_persistent_and_cleans_up(tmp_path):
    command = [sys.executable, "-m", "minilb.cli", "demo", "--persistent", "--unit", "0.02",
               "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "measured finish" in result.stdout
    assert (tmp_path / "demo_gantt.png").stat().st_size > 0
    assert processes_mentioning(str(tmp_path)) == []  # the channels are gone too


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


def test_zero_cost_requests_in_a_flood_never_stall(tmp_path):
    """Echoes come back as fast as requests go out: neither the parent nor a channel ever
    waits for the other."""
    with persistent_system(tmp_path, unit=0.0, max_children=256) as system:
        started = time.monotonic()
        exchanges = send_concurrently(system.address, ALL_REQUESTS * 40, concurrency=100)
        assert all(e.ok for e in exchanges)
        # A stalled send would have waited SEND_TIMEOUT and marked a server down.
        assert all(r["error"] is None for r in system.log())
        assert time.monotonic() - started < 60


def test_a_channel_never_waits_for_a_parent_that_is_behind():
    """A parent busy handing the channel clients reads no news; the channel, if it waited for
    the parent, would stop taking clients, and both would wait for ever."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        channel = ServerChannel(theirs, None, "vp1", lambda: 0.0, AccessLog(None))
        told = 1000  # more messages than a UNIX socket queues (278 here)
        teller = threading.Thread(target=lambda: [channel._tell_parent(ANSWERED)
                                                  for _ in range(told)], daemon=True)
        teller.start()
        teller.join(10)
        assert not teller.is_alive(), "the channel waited for its parent"
        heard = b""
        while len(heard) < told:
            ours.setblocking(False)
            try:
                heard += ours.recv(4096)
            except BlockingIOError:
                channel._tell_parent()  # what did not fit, on the channel's next round
        assert heard == ANSWERED * told
