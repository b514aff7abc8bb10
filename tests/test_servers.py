"""The simulated FIFO servers, over real sockets on loopback."""

import socket
import subprocess
import sys
import time

import pytest
from background import in_background

from minilb.cli import main
from minilb.client import send_bytes, send_request
from minilb.cluster import fork_process, stop_process
from minilb.costs import Request
from minilb.network import recv_exactly
from minilb.protocol import encode_request, open_listener, read_until_closed
from minilb.servers import FifoServer
from minilb.timeline import service_time

UNIT = 0.05


@pytest.fixture
def server():
    """A forked VP server; yields its address."""
    listener = open_listener()
    address = listener.getsockname()[:2]
    pid = fork_process(FifoServer(listener, "VP", UNIT, read_timeout=1.0).serve_forever)
    listener.close()
    yield address
    stop_process(pid)


def test_echoes_after_processing_time(server):
    exchange = send_request(server, ("M", 3))  # VP serves M at x2: 6 units
    assert exchange.reply == b"M3"
    assert 6 * UNIT <= exchange.replied_at - exchange.sent_at < 6 * UNIT + 1.0


def test_serves_one_at_a_time_in_arrival_order(server):
    first, first_result = in_background(send_request, server, ("V", 4))  # 4 units
    time.sleep(UNIT)  # "V4" reaches the server first
    second = send_request(server, ("V", 1))  # 1 unit, but it waits for V4
    first.join()
    assert second.reply == b"V1" and first_result["value"].reply == b"V4"
    assert second.replied_at >= first_result["value"].replied_at
    assert second.replied_at - first_result["value"].sent_at >= 5 * UNIT


@pytest.mark.parametrize(
    "data, problem",
    [(b"X1", b"bad request"), (b"M0", b"bad request"), (b"m3", b"bad request"),
     (b"\x00\xff", b"bad request"), (b"M", b"short")],
)
def test_bad_input_gets_err_and_the_server_keeps_serving(server, data, problem):
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(200)
    assert reply.startswith(b"ERR ") and problem in reply and reply.endswith(b"\n")
    assert send_request(server, ("P", 1)).reply == b"P1"


def test_an_error_comes_after_the_echoes_owed_on_that_connection(server):
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(b"V1P1X9V1")  # the bad request ends the connection, after two echoes
        reply = read_until_closed(sock, 5)
    assert reply.startswith(b"V1P1ERR bad request") and reply.endswith(b"\n")
    with socket.create_connection(server, timeout=5) as sock:
        sock.sendall(b"M33")  # a whole request, then half of one
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock, 5).startswith(b"M3ERR short request")


def test_one_connection_carries_many_requests_and_gets_echoes_in_order(server):
    requests = [("V", 2), ("M", 1), ("P", 3), ("V", 1), ("M", 2)]
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"".join(encode_request(r) for r in requests))  # all at once
        echoes = [recv_exactly(sock, 2, 10) for _ in requests]
        assert echoes == [encode_request(r) for r in requests]
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open: the server never closes first
            sock.recv(10)


def test_a_long_lived_connection_like_the_courses_balancer(server):
    """One connection, the next request sent only after the echo (the course's
    ``exampleLB``), while clients on their own connections share the same FIFO."""
    with socket.create_connection(server, timeout=10) as sock:
        for request in [("V", 1), ("P", 2), ("M", 1)] * 3:
            worker, other = in_background(send_request, server, ("V", 1))
            sent_at = time.monotonic()
            sock.sendall(encode_request(request))
            assert recv_exactly(sock, 2, 10) == encode_request(request)
            assert time.monotonic() - sent_at >= service_time("VP", Request(*request)) * UNIT
            worker.join()
            assert other["value"].reply == b"V1"
        sock.shutdown(socket.SHUT_WR)  # done: the server closes once nothing is owed
        assert sock.recv(10) == b""


def test_one_queue_over_all_requests_of_all_connections(server):
    first = socket.create_connection(server, timeout=10)
    second = socket.create_connection(server, timeout=10)
    with first, second:
        started = time.monotonic()
        first.sendall(b"V4")
        second.sendall(b"V1")
        assert recv_exactly(second, 2, 10) == b"V1"
        first.sendall(b"V1")
        assert recv_exactly(first, 4, 10) == b"V4V1"
        # One at a time: 4 + 1 + 1 units one after the other, whichever came in first.
        assert time.monotonic() - started >= 6 * UNIT


def test_silent_client_does_not_block_others_and_times_out(server):
    with socket.create_connection(server, timeout=5) as silent:
        assert send_request(server, ("P", 1)).reply == b"P1"
        assert silent.recv(200).startswith(b"ERR timed out")


def test_survives_clients_that_vanish(server):
    for _ in range(5):
        sock = socket.create_connection(server)
        sock.sendall(b"V1")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # reset before the echo
    assert send_request(server, ("V", 1)).reply == b"V1"


def test_command_line_server_prints_its_address_and_serves():
    process = subprocess.Popen(
        [sys.executable, "-m", "minilb.cli", "server", "M", "--port", "0", "--unit", "0.01"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert send_bytes(("127.0.0.1", port), b"M2") == b"M2"
    finally:
        process.terminate()
        process.wait(10)


def test_command_line_rejects_a_bad_unit(capsys):
    assert main(["server", "VP", "--port", "0", "--unit", "-1"]) == 2
    assert "--unit" in capsys.readouterr().err
