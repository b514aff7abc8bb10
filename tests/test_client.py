"""Clients: workloads, the closed-loop hosts and the command line."""

import pytest

from minilb.cli import main
from minilb.client import CLASSIC_WORKLOADS, parse_workload, run_hosts, send_request
from minilb.cluster import Cluster
from minilb.costs import Request


def test_parse_workload():
    assert parse_workload("M3P3P1") == [Request("M", 3), Request("P", 3), Request("P", 1)]
    for bad in ["", "M", "M0", "m3", "X1V1", "M3P"]:
        with pytest.raises(ValueError, match="bad workload"):
            parse_workload(bad)


def test_classic_workloads_are_five_hosts_of_five_requests():
    assert list(CLASSIC_WORKLOADS) == ["h1", "h2", "h3", "h4", "h5"]
    assert all(len(parse_workload(text)) == 5 for text in CLASSIC_WORKLOADS.values())


def test_hosts_send_one_after_another_and_get_their_own_replies():
    with Cluster(unit=0.005) as cluster:
        results = run_hosts(cluster.address)
        assert len(cluster.access_log()) == 25
    for host, exchanges in results.items():
        assert [e.request for e in exchanges] == parse_workload(CLASSIC_WORKLOADS[host])
        assert all(e.ok for e in exchanges)
        for before, after in zip(exchanges, exchanges[1:], strict=False):
            assert after.sent_at >= before.replied_at  # closed loop: never two at once


def test_a_refused_connection_is_reported_as_an_error_reply():
    with Cluster(unit=0.001) as cluster:
        address = cluster.address
    exchange = send_request(address, ("V", 1), timeout=2)
    assert exchange.reply.startswith(b"ERR client") and not exchange.ok


def test_command_line_client_and_hosts(capsys):
    with Cluster(unit=0.002) as cluster:
        address = f"{cluster.address[0]}:{cluster.address[1]}"
        assert main(["client", "--balancer", address, "M1V2", "P3", "--concurrency", "3"]) == 0
        out = capsys.readouterr().out
        assert "M1 -> b'M1' ok" in out and "P3 -> b'P3' ok" in out
        assert main(["hosts", "--balancer", address, "--workload", "a=V1V1", "--workload",
                     "b=M2"]) == 0
        out = capsys.readouterr().out
        assert out.count("a: V1 -> b'V1' ok") == 2 and "b: M2" in out


def test_command_line_rejects_bad_input(capsys):
    assert main(["client", "--balancer", "127.0.0.1:1", "M0"]) == 2
    assert "bad workload" in capsys.readouterr().err
    assert main(["client", "--balancer", "nowhere", "M1"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert main(["hosts", "--balancer", "127.0.0.1:1", "--workload", "V1"]) == 2
    assert "HOST=REQUESTS" in capsys.readouterr().err
