"""The core the live system runs on: lesson 4's functions, or the kit's threaded relay before."""

import socket
import threading

import pytest

from minilb import live_core, network
from minilb.cluster import Cluster
from minilb.costs import DEFAULT_FLEET
from minilb.network import EXIT_BACKEND_FAILED


@pytest.fixture
def restored_network(monkeypatch):
    """Whatever a test installs in ``minilb.network`` is undone after it."""
    for name in live_core.CORE:
        monkeypatch.setattr(network, name, getattr(network, name))


def wait_for_end(relay_id: int, timeout: float = 10.0) -> int:
    ended = threading.Event()
    codes: dict[int, int] = {}

    def poll() -> None:
        while relay_id not in codes:
            codes.update(live_core.collect_relay_threads())
            ended.wait(0.01)
        ended.set()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    assert ended.wait(timeout), "the relay thread did not end"
    return codes[relay_id]


def relay(server_says, on_reply=None) -> tuple[bytes | None, int, socket.socket]:
    client_ours, client_theirs = socket.socketpair()
    server_side, backend = socket.socketpair()
    with client_ours, server_side:
        relay_id = live_core.spawn_relay_thread(client_theirs, backend, 5.0, on_reply)
        assert relay_id < 0  # never mistaken for a process
        server_says(server_side)
        code = wait_for_end(relay_id)
        client_ours.setblocking(False)
        try:
            got = client_ours.recv(16)
        except BlockingIOError:
            got = None
    return got, code, client_theirs


def test_a_reply_is_relayed_and_the_client_closed():
    got, code, client = relay(lambda server: server.sendall(b"V3"))
    assert (got, code) == (b"V3", 0)
    assert client.fileno() == -1


@pytest.mark.parametrize(
    "server_says, on_reply, expected_code",
    [
        (lambda server: server.close(), None, EXIT_BACKEND_FAILED),
        (lambda server: server.sendall(b"V"), None, EXIT_BACKEND_FAILED),
        (lambda server: server.sendall(b"V3"), ConnectionError("refused"), EXIT_BACKEND_FAILED),
        (lambda server: server.sendall(b"V3"), KeyError("a bug"), 1),
    ],
    ids=["closed", "half a reply", "reply refused", "on_reply crashed"],
)
def test_a_failure_leaves_the_client_unanswered_and_open(server_says, on_reply, expected_code):
    def refuse(reply: bytes) -> None:
        raise on_reply

    got, code, client = relay(server_says, refuse if on_reply else None)
    assert code == expected_code and got is None
    assert client.fileno() != -1  # the balancer may still retry elsewhere
    client.close()


def test_in_the_kit_the_packages_forking_core_is_used(restored_network):
    before = {name: getattr(network, name) for name in live_core.CORE}
    assert live_core.choose_live_core(None).startswith("core: lesson 4's functions")
    assert {name: getattr(network, name) for name in live_core.CORE} == before


def test_before_lesson_4_the_balancer_serves_on_threads(restored_network, monkeypatch):
    def reap_children():
        raise NotImplementedError()

    monkeypatch.setattr(network, "reap_children", reap_children)  # lesson 4 not done
    assert live_core.choose_live_core(None).startswith("core: the kit's threaded relay")
    assert network.spawn_relay_child is live_core.spawn_relay_thread
    requests = [("M", 3), ("V", 1), ("P", 2), ("V", 2), ("M", 1)] * 3
    with Cluster(DEFAULT_FLEET, unit=0.005) as cluster:
        exchanges = cluster.send(requests, concurrency=5)
        log = cluster.access_log()
    assert all(exchange.ok for exchange in exchanges), exchanges
    assert len(log) == len(requests) and all(record["error"] is None for record in log)
