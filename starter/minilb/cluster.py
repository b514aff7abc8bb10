"""A whole live system in one ``with`` block: simulated servers plus the forking balancer.

Used by lesson 4, the demo and the tests::

    from minilb.cluster import Cluster

    with Cluster(fleet=("VP", "VP", "M"), unit=0.01, policy=my_choose_server) as cluster:
        cluster.address              # (host, port) of the balancer
        cluster.server_addresses     # [(host, port), ...] in fleet order
        cluster.send([("M", 3), ("V", 1)], concurrency=2)   # -> list of Exchange, in order
        cluster.run_hosts()          # the classic closed-loop hosts -> {host: [Exchange]}
        cluster.access_log()         # one dict per request (see balancer.read_access_log)

Keyword options go to the balancer: ``Cluster(prefork=2)`` relays through two workers forked
once, ``Cluster(persistent=True)`` keeps one connection per server.

Every process is forked from the current one, so a policy defined in a notebook drives the
balancer as is (and so do the notebook's lesson 4 functions, once it has called
``minilb.policies.use_student_functions(globals())``). Each listening socket is opened before
the fork, so the system is ready the moment the ``with`` block starts: there is no ``listening
on`` line to wait for. Leaving the block (normally, on an exception or on Ctrl-C) stops the
balancer gracefully, then the servers.
"""

import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from minilb.balancer import Backend, Balancer, read_access_log
from minilb.client import CLASSIC_WORKLOADS, Exchange, run_hosts, send_concurrently
from minilb.costs import DEFAULT_FLEET, check_fleet, server_names
from minilb.protocol import open_listener
from minilb.servers import FifoServer
from minilb.timeline import Policy


def fork_process(run: Callable[[], None]) -> int:
    """Run ``run()`` in a forked child that never returns into the caller's code; its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us cleanly
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            run()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def stop_process(pid: int, timeout: float = 30.0) -> int:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds (then SIGKILL); its exit code."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


class Cluster:
    """Servers of ``fleet`` and a balancer using ``policy`` (default: the reference greedy)."""

    def __init__(
        self,
        fleet: Sequence[str] = DEFAULT_FLEET,
        unit: float = 0.01,
        policy: Policy | None = None,
        host: str = "127.0.0.1",
        **balancer_options: object,
    ) -> None:
        self.fleet = check_fleet(fleet)
        self.unit = unit
        self.policy = policy
        self.host = host
        self.balancer_options = balancer_options
        self.server_pids: list[int] = []
        self.server_addresses: list[tuple[str, int]] = []
        self.balancer_pid: int | None = None
        self.address: tuple[str, int] = (host, 0)
        self.workdir = tempfile.mkdtemp(prefix="minilb-cluster-")
        self.log_path = os.path.join(self.workdir, "access.log")
        self.decisions_path = os.path.join(self.workdir, "decisions.log")
        self.final_log: list[dict] | None = None  # kept when the workdir goes

    def __enter__(self) -> "Cluster":
        try:
            for kind in self.fleet:
                listener = open_listener(self.host, 0)
                self.server_addresses.append(listener.getsockname()[:2])
                server = FifoServer(listener, kind, self.unit)
                self.server_pids.append(fork_process(server.serve_forever))
                listener.close()
            self.start_balancer()
        except BaseException:
            self.close()
            raise
        return self

    def balancer_listener(self) -> socket.socket:
        """Where the balancer listens (an overridable hook: the lab binds lb1's port 80)."""
        return open_listener(self.host, 0)

    def start_balancer(self) -> None:
        listener = self.balancer_listener()
        self.address = listener.getsockname()[:2]
        names = server_names(self.fleet)
        backends = [
            Backend(name, kind, address)
            for name, kind, address in zip(names, self.fleet, self.server_addresses, strict=True)
        ]
        # Built in this process so that a bad policy fails here, with a clear message.
        balancer = Balancer(
            listener, backends, self.unit, self.policy, self.log_path, self.decisions_path,
            **self.balancer_options,
        )
        self.balancer_pid = fork_process(balancer.serve_forever)
        listener.close()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the balancer (it finishes requests in flight), then the servers."""
        if self.balancer_pid is not None:
            stop_process(self.balancer_pid)
            self.balancer_pid = None
        while self.server_pids:
            stop_process(self.server_pids.pop())
        if self.final_log is None:
            self.final_log = self.access_log()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def send(
        self, requests: Sequence[tuple[str, int]], concurrency: int = 16, timeout: float = 60.0
    ) -> list[Exchange]:
        return send_concurrently(self.address, requests, concurrency, timeout)

    def run_hosts(
        self, workloads: Mapping[str, Sequence[tuple[str, int]] | str] = CLASSIC_WORKLOADS
    ) -> dict[str, list[Exchange]]:
        return run_hosts(self.address, workloads)

    def access_log(self) -> list[dict]:
        """One record per request so far, queued ones included (also after the cluster has
        stopped)."""
        if self.final_log is not None:
            return self.final_log
        return read_access_log(self.log_path, self.decisions_path)
