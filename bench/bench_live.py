"""The live system, measured side by side in one run (``make bench``).

1. Zero-cost requests (``unit = 0``) at concurrency 1 and 16, on five paths: one server reached
   directly, the default balancer (a fork per request), ``--persistent``, ``--prefork N`` and
   HAProxy (TCP mode, leastconn). For each: requests/s, CPU per request (the serving process,
   its children alive and its children reaped), the p50 latency it adds to the direct path and
   the minor page faults per request (copy-on-write, mostly: what a fork per request costs).
   The paths take turns in short rounds, so a change in the machine's load hits them all alike.
2. Measured vs predicted makespan of the balancer on a mixed batch.
3. Makespan of the greedy balancer vs HAProxy leastconn on the same mixed batch, both timed by
   the client from the first request sent to the last reply.

Then every target, its measured value and "met" or "NOT met". A wrong reply anywhere exits 1
(a target not met does not: it is a measurement, printed as such). HAProxy is the Debian
package, started here with a generated config; without it, its columns and ratios are skipped.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from minilb.client import CLASSIC_WORKLOADS, parse_workload, send_concurrently
from minilb.cluster import Cluster
from minilb.protocol import open_listener

TICKS = os.sysconf("SC_CLK_TCK")
ZERO_COST_REQUESTS = {1: 2000, 16: 6000}  # concurrency -> requests per path
ROUNDS = 4  # the paths take turns this many times per concurrency
PREFORK = max(1, (os.cpu_count() or 2) - 1)  # workers: the cores the parent leaves
MIXED = [r for text in CLASSIC_WORKLOADS.values() for r in parse_workload(text)] * 10  # 150
MIXED_UNIT = 0.01
targets: list[tuple[str, str, bool]] = []  # (target, measured, met)


def target(name: str, measured: str, met: bool) -> None:
    targets.append((name, measured, met))


def own_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and minor page faults of ``pid`` and of its children that it has reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a child that ended between the listing and the read
        return 0.0, 0
    cpu = sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
    return cpu, int(fields[7]) + int(fields[8])  # minflt cminflt


def usage(pid: int) -> tuple[float, int]:
    """CPU seconds and minor faults of ``pid``, of its children alive (prefork's workers,
    persistent's channels) and of those it has reaped (a fork per request). Read between
    rounds, when no request is in flight, so no child is counted twice."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        tree = [own_usage(pid)] + [own_usage(int(child)) for child in children.read().split()]
    return sum(cpu for cpu, _ in tree), sum(faults for _, faults in tree)


class Tally:
    """One path's totals over its rounds."""

    def __init__(self) -> None:
        self.requests, self.seconds, self.cpu, self.faults, self.latencies = 0, 0.0, 0.0, 0, []

    def measure(self, name, address, pid, requests, concurrency):
        (cpu, faults), start = usage(pid), time.monotonic()
        exchanges = send_concurrently(address, [("V", 1)] * requests, concurrency, timeout=60)
        self.seconds += time.monotonic() - start
        cpu_after, faults_after = usage(pid)
        self.cpu += cpu_after - cpu
        self.faults += faults_after - faults
        self.requests += requests
        self.latencies += [e.replied_at - e.sent_at for e in exchanges]
        bad = sum(not e.ok for e in exchanges)
        if bad:
            print(f"CORRECTNESS: {bad} of {requests} replies were wrong on the {name} path")
            sys.exit(1)

    def cpu_per_request(self) -> float:
        return self.cpu / self.requests

    def faults_per_request(self) -> float:
        return self.faults / self.requests

    def p50(self) -> float:
        return statistics.median(self.latencies)


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


def lean_balancer(fleet, servers, log_dir, *mode):
    specs = [f"{kind}@{host}:{port}" for kind, (host, port) in zip(fleet, servers, strict=True)]
    log = os.path.join(log_dir, f"access{'-'.join(mode)}.log")
    return LeanCommand(
        "balancer", "--port", "0", "--unit", "0", "--log", log, *mode, "--servers", *specs
    )


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
    """``value / baseline``, or n/a when the baseline is not there or too small to see."""
    return f"{value / baseline:{width}.1f}" if baseline else f"{'n/a':>{width}}"


def throughput(have_haproxy):
    print("\n1. zero-cost requests, the paths taking turns: requests/s, CPU per request, "
          "added p50 latency, page faults per request")
    print(f"{'concurrency':>11} {'path':>11} {'req/s':>7} {'CPU ms/req':>10} {'vs HAProxy':>10} "
          f"{'added p50 ms':>12} {'vs HAProxy':>10} {'faults/req':>10}")
    prefork = f"prefork {PREFORK}"
    with (
        Cluster(unit=0.0) as cluster,
        tempfile.TemporaryDirectory(prefix="minilb-bench-") as log_dir,
        lean_balancer(cluster.fleet, cluster.server_addresses, log_dir) as default,
        lean_balancer(cluster.fleet, cluster.server_addresses, log_dir, "--persistent") as kept,
        lean_balancer(
            cluster.fleet, cluster.server_addresses, log_dir, "--prefork", str(PREFORK)
        ) as pool,
    ):
        paths = {
            "direct": (cluster.server_addresses[0], cluster.server_pids[0]),
            "default": (default.address, default.process.pid),
            "persistent": (kept.address, kept.process.pid),
            prefork: (pool.address, pool.process.pid),
        }
        haproxy = HAProxy(cluster.server_addresses).__enter__() if have_haproxy else None
        if haproxy:
            paths["HAProxy"] = (haproxy.address, haproxy.process.pid)
        try:
            for concurrency, count in ZERO_COST_REQUESTS.items():
                tallies = {name: Tally() for name in paths}
                for _ in range(ROUNDS):
                    for name, (address, pid) in paths.items():
                        tallies[name].measure(name, address, pid, count // ROUNDS, concurrency)
                direct = tallies["direct"].p50()
                added = {name: max(tally.p50() - direct, 0.0) for name, tally in tallies.items()}
                cpu = {name: tally.cpu_per_request() for name, tally in tallies.items()}
                for name, tally in tallies.items():
                    cpu_ratio = ratio_text(cpu[name], cpu.get("HAProxy", 0), 10)
                    added_ratio = ratio_text(added[name], added.get("HAProxy", 0), 10)
                    print(f"{concurrency:>11} {name:>11} {tally.requests / tally.seconds:7.0f} "
                          f"{cpu[name] * 1000:10.3f} {cpu_ratio} {added[name] * 1000:12.3f} "
                          f"{added_ratio} {tally.faults_per_request():10.0f}")
                if concurrency == 16:
                    versus = f", {ratio_text(cpu['default'], cpu.get('HAProxy', 0), 0)}x HAProxy"
                    target("default balancer CPU per request at c=16 <= 2 ms",
                           f"{cpu['default'] * 1000:.3f} ms{versus}", cpu["default"] <= 0.002)
                if haproxy:
                    cpu_x = cpu[prefork] / cpu["HAProxy"] if cpu["HAProxy"] else float("inf")
                    target(f"{prefork} CPU per request at c={concurrency} <= 3x HAProxy",
                           f"{cpu_x:.2f}x", cpu_x <= 3)
                    lat_x = added[prefork] / added["HAProxy"] if added["HAProxy"] else float("inf")
                    target(f"{prefork} added p50 latency at c={concurrency} <= 3x HAProxy",
                           f"{lat_x:.2f}x ({added[prefork] * 1000:.3f} vs "
                           f"{added['HAProxy'] * 1000:.3f} ms)", lat_x <= 3)
        finally:
            if haproxy:
                haproxy.__exit__()


def makespans(have_haproxy):
    print(f"\n2-3. mixed batch of {len(MIXED)} requests sent at once, unit {MIXED_UNIT} s")
    with Cluster(unit=MIXED_UNIT) as cluster:
        start = time.monotonic()
        check(cluster.send(MIXED, concurrency=len(MIXED)), "balancer, mixed batch")
        greedy = (time.monotonic() - start) / MIXED_UNIT
        log = cluster.access_log()
    predicted = max(r["finish"] for r in log)
    measured = max(r["measured_finish"] for r in log)
    print(f"balancer makespan measured/predicted = {measured / predicted:.4f} "
          f"({measured:.1f} vs {predicted:.1f} units)")
    target("makespan measured/predicted <= 1.02", f"{measured / predicted:.4f}",
           measured / predicted <= 1.02)
    if not have_haproxy:
        print("greedy vs HAProxy leastconn: skipped (haproxy is not installed)")
        return
    with Cluster(unit=MIXED_UNIT) as cluster, HAProxy(cluster.server_addresses) as haproxy:
        start = time.monotonic()
        check(send_concurrently(haproxy.address, MIXED, len(MIXED)), "HAProxy, mixed batch")
        leastconn = (time.monotonic() - start) / MIXED_UNIT
    print(f"makespan greedy/HAProxy-leastconn = {greedy / leastconn:.2f} "
          f"({greedy:.1f} vs {leastconn:.1f} units, client-side)")
    target("makespan greedy/HAProxy-leastconn <= 0.8", f"{greedy / leastconn:.2f}",
           greedy / leastconn <= 0.8)


def check(exchanges, what):
    bad = sum(not e.ok for e in exchanges)
    if bad:
        print(f"CORRECTNESS: {bad} of {len(exchanges)} replies were wrong ({what})")
        sys.exit(1)


def main():
    have_haproxy = shutil.which("haproxy") is not None
    if not have_haproxy:
        print("haproxy is not installed: its columns are skipped")
    started = time.monotonic()
    throughput(have_haproxy)
    makespans(have_haproxy)
    print(f"\ntargets (bench_live, {time.monotonic() - started:.0f} s):")
    for name, measured, met in targets:
        print(f"  {name}: {measured}: {'met' if met else 'NOT met'}")
    if not have_haproxy:
        print("  the HAProxy targets: not measured (haproxy is not installed)")


if __name__ == "__main__":
    main()
