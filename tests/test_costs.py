import pytest

from minilb.costs import (
    DEFAULT_FLEET,
    FACTORS,
    Request,
    check_fleet,
    cost_matrix,
    processing_time,
    requests_from_text,
)


def test_table_is_the_one_from_the_course():
    assert FACTORS == {"VP": {"V": 1, "P": 1, "M": 2}, "M": {"V": 3, "P": 2, "M": 1}}
    assert DEFAULT_FLEET == ("VP", "VP", "M")


@pytest.mark.parametrize(
    "kind, request_type, length, expected",
    [("VP", "V", 4, 4), ("VP", "M", 4, 8), ("M", "V", 2, 6), ("M", "P", 5, 10), ("M", "M", 7, 7)],
)
def test_processing_time_is_length_times_factor(kind, request_type, length, expected):
    assert processing_time(kind, request_type, length) == expected


@pytest.mark.parametrize(
    "args, words",
    [
        (("X", "V", 1), "unknown server kind"),
        (("VP", "Q", 1), "unknown request type"),
        (("VP", "V", 0), "at least 1"),
        (("VP", "V", -3), "at least 1"),
        (("VP", "V", 1.5), "integer"),
        (("VP", "V", True), "integer"),
    ],
)
def test_processing_time_rejects_bad_input_with_a_clear_message(args, words):
    with pytest.raises(ValueError, match=words):
        processing_time(*args)


def test_cost_matrix_follows_the_fleet_order():
    assert cost_matrix() == {"V": [1, 1, 3], "P": [1, 1, 2], "M": [2, 2, 1]}
    assert cost_matrix(("M", "VP")) == {"V": [3, 1], "P": [2, 1], "M": [1, 2]}
    assert cost_matrix(["VP"] * 10)["M"] == [2] * 10


@pytest.mark.parametrize("fleet", [(), "VPM", ("VP", "X"), 5])
def test_bad_fleets_are_refused(fleet):
    with pytest.raises(ValueError):
        check_fleet(fleet)


def test_requests_from_text_reads_the_course_notation():
    assert requests_from_text("M1V2P3") == [Request("M", 1), Request("V", 2), Request("P", 3)]
    assert requests_from_text(" V12, M3 ") == [Request("V", 12), Request("M", 3)]
    assert str(Request("M", 5)) == "M5"


@pytest.mark.parametrize("text", ["X1", "V0", "", "   ", "v1", "M1x", "V"])
def test_requests_from_text_rejects_bad_input(text):
    with pytest.raises(ValueError):
        requests_from_text(text)
