"""The live system on the lab's hosts, for ``minilb demo --lab``.

A process's network namespace is per thread on Linux: ``setns`` moves only the calling thread.
So the demo stays one Python process: it steps into serv1's namespace to open serv1's listening
socket and fork serv1's server (a socket belongs to the namespace it was opened in, a forked
child to its parent thread's), steps back, and so on for serv2, serv3 and lb1; each client host
is a thread that first moves into its host's namespace. The hosts then start together on one
barrier, as on loopback, and the demo reads the balancer's access log as always.
"""

import ctypes
import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from minilb.client import CLASSIC_WORKLOADS, Exchange, run_hosts
from minilb.cluster import Cluster, fork_process
from minilb.costs import DEFAULT_FLEET
from minilb.lab import (
    BALANCER,
    BALANCER_ADDRESS,
    CLIENTS,
    PORT,
    SERVERS,
    LabError,
    namespace,
    require_up,
)
from minilb.protocol import open_listener
from minilb.servers import FifoServer
from minilb.timeline import Policy

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    """Move the calling thread (only it: network namespaces are per thread) into ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"cannot enter network namespace {path}: {os.strerror(error)}")
    finally:
        os.close(fd)


def enter(prefix: str, host: str) -> None:
    """Move the calling thread into ``host``'s namespace for good (a host's client thread)."""
    _setns(os.path.join(NETNS_DIR, namespace(prefix, host)))


@contextmanager
def inside(prefix: str, host: str) -> Iterator[None]:
    """Sockets opened and processes forked in this block belong to ``host``'s namespace."""
    home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(prefix, host)
        yield
    finally:
        try:
            if _libc.setns(home_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to the original namespace")
        finally:
            os.close(home_fd)


def check_client_hosts(hosts: Iterable[str]) -> None:
    unknown = [host for host in hosts if host not in CLIENTS]
    if unknown:
        raise LabError(f"the lab has no client host {unknown[0]!r}: its clients are "
                       f"{', '.join(CLIENTS)}")


class LabCluster(Cluster):
    """``Cluster`` on the lab: servers in serv1..3, the balancer in lb1, both on port 80.

    The sockets are opened inside each host's namespace and each process is forked from
    there, so every process runs on its host; ``run_hosts`` runs each client host's thread in
    its own namespace. The balancer reaches the servers over s2, the clients reach it over s1.
    """

    def __init__(self, prefix: str, unit: float, policy: Policy | None = None,
                 fleet: Sequence[str] = DEFAULT_FLEET, **balancer_options: object) -> None:
        if len(fleet) != len(SERVERS):
            raise LabError(f"the lab has {len(SERVERS)} servers, the fleet {len(fleet)}")
        require_up(prefix)
        super().__init__(fleet, unit, policy, BALANCER_ADDRESS, **balancer_options)
        self.prefix = prefix

    def __enter__(self) -> "LabCluster":
        try:
            for (host, address), kind in zip(SERVERS.items(), self.fleet, strict=True):
                with inside(self.prefix, host):
                    listener = open_listener(address, PORT)
                    server = FifoServer(listener, kind, self.unit)
                    self.server_pids.append(fork_process(server.serve_forever))
                listener.close()
                self.server_addresses.append((address, PORT))
            with inside(self.prefix, BALANCER):  # it checks the servers as it starts
                self.start_balancer()
        except BaseException:
            self.close()
            raise
        return self

    def balancer_listener(self) -> socket.socket:
        return open_listener(BALANCER_ADDRESS, PORT)

    def run_hosts(
        self, workloads: Mapping[str, Sequence[tuple[str, int]] | str] = CLASSIC_WORKLOADS
    ) -> dict[str, list[Exchange]]:
        check_client_hosts(workloads)
        return run_hosts(self.address, workloads,
                         enter_host=lambda host: enter(self.prefix, host))
