"""The live system, measured side by side in one run (``make bench``).

1. Zero-cost requests (``unit = 0``) at concurrency 1 and 16: requests/s and CPU per request
   (the serving process plus its reaped children) of the forking balancer, of lesson 4's
   forking relay (``minilb relay``, in front of one server), of HAProxy (TCP mode, leastconn)
   and of one server reached directly.
2. Measured vs predicted makespan of the balancer on a mixed batch.
3. Makespan of the greedy balancer vs HAProxy leastconn on the same mixed batch, both timed by
   the client from the first request sent to the last reply.

HAProxy is the Debian package, started here with a generated config; without it, only its
columns are skipped.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from minilb.client import CLASSIC_WORKLOADS, parse_workload, send_concurrently
from minilb.cluster import Cluster
from minilb.protocol import open_listener

TICKS = os.sysconf("SC_CLK_TCK")
ZERO_COST_REQUESTS = {1: 600, 16: 2000}  # concurrency -> requests
MIXED = [r for text in CLASSIC_WORKLOADS.values() for r in parse_workload(text)] * 10  # 150
MIXED_UNIT = 0.01
TARGETS = "targets: balancer CPU <= 1.5 ms/request, measured/predicted <= 1.02, " \
    "greedy/HAProxy <= 0.8"


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of its children that it has reaped."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime


def measure(address, pid, requests, concurrency):
    """(requests per second, CPU seconds per request of ``pid``)."""
    cpu, start = cpu_seconds(pid), time.monotonic()
    exchanges = send_concurrently(address, [("V", 1)] * requests, concurrency, timeout=60)
    elapsed, cpu = time.monotonic() - start, cpu_seconds(pid) - cpu
    bad = sum(not e.ok for e in exchanges)
    if bad:
        sys.exit(f"{bad} of {requests} replies were wrong at {address}")
    return requests / elapsed, cpu / requests


class LeanCommand:
    """``minilb ARGUMENTS`` in its own process (the CLI loads only that command's modules)."""

    def __init__(self, *arguments):
        self.arguments = arguments

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minilb.cli", *self.arguments], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError(f"minilb {self.arguments[0]} did not start: {line!r}")
        self.address = ("127.0.0.1", int(line.rsplit(":", 1)[1]))
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(30)


def lean_balancer(fleet, servers, log_dir):
    specs = [f"{kind}@{host}:{port}" for kind, (host, port) in zip(fleet, servers, strict=True)]
    log = os.path.join(log_dir, "access.log")
    return LeanCommand("balancer", "--port", "0", "--unit", "0", "--log", log, "--servers", *specs)


def lean_relay(server):
    return LeanCommand("relay", "--port", "0", "--to", f"{server[0]}:{server[1]}")


class HAProxy:
    """HAProxy in TCP mode with ``balance leastconn`` in front of ``servers``."""

    def __init__(self, servers):
        self.servers = servers

    def __enter__(self):
        probe = open_listener()
        self.port = probe.getsockname()[1]
        probe.close()
        backends = "\n".join(
            f"    server s{i} {host}:{port}" for i, (host, port) in enumerate(self.servers)
        )
        self.dir = tempfile.mkdtemp(prefix="minilb-haproxy-")
        config = os.path.join(self.dir, "haproxy.cfg")
        with open(config, "w") as out:
            out.write(
                "global\n    maxconn 4096\n    nbthread 1\n"
                "defaults\n    mode tcp\n    timeout connect 5s\n"
                "    timeout client 60s\n    timeout server 60s\n"
                f"frontend lb\n    bind 127.0.0.1:{self.port}\n    default_backend servers\n"
                f"backend servers\n    balance leastconn\n{backends}\n"
            )
        self.process = subprocess.Popen(["haproxy", "-db", "-f", config])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("haproxy did not start") from None
                time.sleep(0.05)
        self.address = ("127.0.0.1", self.port)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def ratio_text(value, baseline, width):
    """``value / baseline``, or n/a when the baseline used less CPU than the clock can see."""
    return f"{value / baseline:{width}.1f}" if baseline else f"{'n/a':>{width}}"


def throughput(have_haproxy):
    print("\n1. zero-cost requests: requests/s and CPU per request, side by side")
    print(f"{'concurrency':>11} {'path':>9} {'req/s':>8} {'CPU ms/req':>10} "
          f"{'CPU vs direct':>13} {'CPU vs HAProxy':>14}")
    with (
        Cluster(unit=0.0) as cluster,
        tempfile.TemporaryDirectory(prefix="minilb-bench-") as log_dir,
        lean_balancer(cluster.fleet, cluster.server_addresses, log_dir) as balancer,
        lean_relay(cluster.server_addresses[0]) as relay,
    ):
        paths = {
            "direct": (cluster.server_addresses[0], cluster.server_pids[0]),
            "balancer": (balancer.address, balancer.process.pid),
            "relay": (relay.address, relay.process.pid),
        }
        haproxy = HAProxy(cluster.server_addresses).__enter__() if have_haproxy else None
        if haproxy:
            paths["HAProxy"] = (haproxy.address, haproxy.process.pid)
        try:
            for concurrency, count in ZERO_COST_REQUESTS.items():
                results = {name: measure(address, pid, count, concurrency)
                           for name, (address, pid) in paths.items()}
                for name, (rate, cpu) in results.items():
                    versus_direct = ratio_text(cpu, results["direct"][1], 13)
                    versus_haproxy = ratio_text(cpu, results["HAProxy"][1] if haproxy else 0, 14)
                    print(f"{concurrency:>11} {name:>9} {rate:8.0f} {cpu * 1000:10.3f} "
                          f"{versus_direct} {versus_haproxy}")
                rate_ratio = results["balancer"][0] / results["direct"][0]
                print(f"{'':>11} balancer/direct requests/s = {rate_ratio:.2f}")
        finally:
            if haproxy:
                haproxy.__exit__()


def makespans(have_haproxy):
    print(f"\n2-3. mixed batch of {len(MIXED)} requests sent at once, unit {MIXED_UNIT} s")
    with Cluster(unit=MIXED_UNIT) as cluster:
        start = time.monotonic()
        assert all(e.ok for e in cluster.send(MIXED, concurrency=len(MIXED)))
        greedy = (time.monotonic() - start) / MIXED_UNIT
        log = cluster.access_log()
    predicted = max(r["finish"] for r in log)
    measured = max(r["measured_finish"] for r in log)
    print(f"balancer makespan measured/predicted = {measured / predicted:.4f} "
          f"({measured:.1f} vs {predicted:.1f} units)")
    if not have_haproxy:
        print("greedy vs HAProxy leastconn: skipped (haproxy is not installed)")
        return
    with Cluster(unit=MIXED_UNIT) as cluster, HAProxy(cluster.server_addresses) as haproxy:
        start = time.monotonic()
        assert all(e.ok for e in send_concurrently(haproxy.address, MIXED, len(MIXED)))
        leastconn = (time.monotonic() - start) / MIXED_UNIT
    print(f"makespan greedy/HAProxy-leastconn = {greedy / leastconn:.2f} "
          f"({greedy:.1f} vs {leastconn:.1f} units, client-side)")


def main():
    have_haproxy = shutil.which("haproxy") is not None
    if not have_haproxy:
        print("haproxy is not installed: its columns are skipped")
    print(TARGETS)
    throughput(have_haproxy)
    makespans(have_haproxy)


if __name__ == "__main__":
    main()
