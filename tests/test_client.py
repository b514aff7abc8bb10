"""Clients: workloads, the closed-loop hosts and the command line."""

import pytest

from minilb.cli import main
from minilb.client import (
    CLASSIC_WORKLOADS,
    COURSE_WORKLOADS,
    hosts_files,
    parse_workload,
    read_hosts_file,
    run_hosts,
    send_request,
)
from minilb.cluster import Cluster
from minilb.costs import Request


def test_parse_workload():
    assert parse_workload("M3P3P1") == [Request("M", 3), Request("P", 3), Request("P", 1)]
    for bad in ["", "M", "M0", "m3", "X1V1", "M3P"]:
        with pytest.raises(ValueError, match="bad workload"):
            parse_workload(bad)


def test_the_course_workloads_are_the_original_hosts():
    assert COURSE_WORKLOADS["2017"] == COURSE_WORKLOADS["2019"] == CLASSIC_WORKLOADS == {
        "h1": "M1V2P3", "h2": "M1M2M3", "h3": "M1P2V3", "h4": "M2P1V4", "h5": "V1V2V4",
    }
    assert COURSE_WORKLOADS["2020"] == {
        "h1": "M1V2P3M2V2P3", "h2": "M1M2M3M3M2M1", "h3": "M1P2V3V3M1M1",
        "h4": "M2P1V4M1M1M2", "h5": "V1V2V4V2V4V3",
    }
    for year, requests in [("2017", 3), ("2020", 6)]:
        assert all(len(parse_workload(text)) == requests
                   for text in COURSE_WORKLOADS[year].values())


def test_a_hosts_file_is_one_line_of_requests_named_after_its_host(tmp_path):
    (tmp_path / "h1.in").write_text("M1V2P3\n")
    (tmp_path / "h2.in").write_bytes(b"\xef\xbb\xbfM1 M2\r\nM3\r\n")  # BOM, CRLF, spaces
    (tmp_path / "h3.in").write_text("M1,P2,V3")
    assert read_hosts_file(tmp_path / "h1.in") == ("h1", "M1V2P3")
    assert hosts_files([tmp_path]) == {"h1": "M1V2P3", "h2": "M1M2M3", "h3": "M1P2V3"}
    assert hosts_files([tmp_path / "h3.in", tmp_path / "h1.in"]) == {
        "h3": "M1P2V3", "h1": "M1V2P3"}


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"), (b" \n", "is empty"), (b"M1V0", "bad workload"),
    (b"M1V", "bad workload"), (b"x1", "bad workload"), (b"\xff\xfe", "cannot read"),
])
def test_a_bad_hosts_file_is_named_in_a_clear_error(tmp_path, content, message):
    path = tmp_path / "h4.in"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_hosts_file(path)
    assert "h4.in" in str(error.value) and "\n" not in str(error.value)


def test_missing_or_duplicate_hosts_files_are_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read hosts file"):
        hosts_files([tmp_path / "h9.in"])
    with pytest.raises(ValueError, match="no \\*.in hosts files"):
        hosts_files([tmp_path])
    (tmp_path / "h1.in").write_text("V1")
    with pytest.raises(ValueError, match="given twice"):
        hosts_files([tmp_path, tmp_path / "h1.in"])


def test_hosts_send_one_after_another_and_get_their_own_replies():
    with Cluster(unit=0.005) as cluster:
        results = run_hosts(cluster.address)
        assert len(cluster.access_log()) == 15
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


def test_command_line_hosts_run_a_year_or_a_course_s_files(capsys, tmp_path):
    (tmp_path / "h1.in").write_text("P1\n")
    (tmp_path / "h7.in").write_text("V1M1\n")
    with Cluster(unit=0.002) as cluster:
        address = f"{cluster.address[0]}:{cluster.address[1]}"
        assert main(["hosts", "--balancer", address, "--workload", "2020"]) == 0
        out = capsys.readouterr().out
        assert out.count(" ok ") == 30 and "h5: V3 -> b'V3' ok" in out
        assert main(["hosts", "--balancer", address]) == 0  # the default: 2017
        assert capsys.readouterr().out.count(" ok ") == 15
        assert main(["hosts", "--balancer", address, "--workload", "2017",
                     "--hosts-file", str(tmp_path)]) == 0  # h1 replaced, h7 added
        out = capsys.readouterr().out
        assert out.count(" ok ") == 3 * 4 + 1 + 2 and "h1: P1" in out and "h1: M1" not in out


def test_command_line_rejects_bad_input(capsys):
    assert main(["client", "--balancer", "127.0.0.1:1", "M0"]) == 2
    assert "bad workload" in capsys.readouterr().err
    assert main(["client", "--balancer", "nowhere", "M1"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert main(["hosts", "--balancer", "127.0.0.1:1", "--workload", "V1"]) == 2
    assert "HOST=REQUESTS" in capsys.readouterr().err
    assert main(["hosts", "--balancer", "127.0.0.1:1", "--workload", "2018"]) == 2
    assert "expected 2017, 2019, 2020 or HOST=REQUESTS" in capsys.readouterr().err
    assert main(["hosts", "--balancer", "127.0.0.1:1", "--hosts-file", "/nonexistent/h1.in"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read hosts file '/nonexistent/h1.in'" in err
