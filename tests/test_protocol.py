"""The wire format and the socket helpers (recv_exactly: see test_network.py)."""

import socket

import pytest

from minilb.costs import Request
from minilb.protocol import (
    WIRE_REQUESTS,
    ProtocolError,
    close_with,
    decode_request,
    encode_request,
    error_reply,
    parse_address,
    parse_request,
    read_until_closed,
)

BAD_MESSAGES = [b"X1", b"M0", b"m3", b"M", b"", b"M33", b"\xff\x00", b"MA", b"M-"]


def test_every_valid_message_round_trips():
    assert len(WIRE_REQUESTS) == 27
    for data, request in WIRE_REQUESTS.items():
        assert encode_request(request) == data
        assert decode_request(data) == request == parse_request(data)


@pytest.mark.parametrize("data", BAD_MESSAGES)
def test_bad_messages_raise_a_protocol_error(data):
    for decode in (decode_request, parse_request):
        with pytest.raises(ProtocolError) as caught:
            decode(data)
        assert isinstance(caught.value, ValueError)
        assert str(caught.value)


def test_parse_request_names_the_problem():
    with pytest.raises(ProtocolError, match="type"):
        parse_request(b"X1")
    with pytest.raises(ProtocolError, match="1-9"):
        parse_request(b"M0")
    with pytest.raises(ProtocolError, match="2 bytes"):
        parse_request(b"M33")


@pytest.mark.parametrize("request_", [("X", 1), ("M", 0), ("M", 10)])
def test_encode_refuses_what_the_wire_cannot_carry(request_):
    with pytest.raises(ProtocolError):
        encode_request(request_)


def test_error_reply_is_one_line():
    assert error_reply("bad\nthing  here") == b"ERR bad thing here\n"


def test_parse_address():
    assert parse_address("127.0.0.1:8000") == ("127.0.0.1", 8000)
    for bad in ["127.0.0.1", ":80", "host:port", "h:70000"]:
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(bad)


def test_close_with_sends_then_ends_the_connection():
    left, right = socket.socketpair()
    with right:
        close_with(left, b"ERR x\n")
        assert read_until_closed(right, timeout=5) == b"ERR x\n"
    assert decode_request(b"V9") == Request("V", 9)


def test_parse_request_takes_any_bytes_like_message_but_not_text():
    for data in (b"M5", bytearray(b"M5"), memoryview(b"M5")):
        assert parse_request(data) == Request("M", 5)
    with pytest.raises(ProtocolError, match="expected bytes"):
        parse_request("M5")
