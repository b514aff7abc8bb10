"""The cost model: request types, server kinds and how long each server takes for each request.

Everything else in the kit imports the table from here; it is written down nowhere else.
"""

from collections.abc import Sequence
from typing import NamedTuple

REQUEST_TYPES = ("V", "P", "M")  # Video, Picture, Music
SERVER_KINDS = ("VP", "M")  # a Video/Picture server, a Music server
TYPE_NAMES = {"V": "Video", "P": "Picture", "M": "Music"}
KIND_NAMES = {"VP": "Video/Picture", "M": "Music"}

# FACTORS[kind][request_type]: time units per unit of request length. A server is fastest at
# the media it was built for; the Music server is especially slow at Video.
FACTORS: dict[str, dict[str, int]] = {
    "VP": {"V": 1, "P": 1, "M": 2},
    "M": {"V": 3, "P": 2, "M": 1},
}

DEFAULT_FLEET = ("VP", "VP", "M")


def server_names(kinds: Sequence[str]) -> list[str]:
    """The course's names: ``vp1, vp2, m1`` for the default fleet, numbered per kind."""
    counts = dict.fromkeys(kinds, 0)
    names = []
    for kind in kinds:
        counts[kind] += 1
        names.append(f"{kind.lower()}{counts[kind]}")
    return names


DEFAULT_SERVER_NAMES = tuple(server_names(DEFAULT_FLEET))


class Request(NamedTuple):
    """One request: its media type ("V", "P" or "M") and its length (a positive integer)."""

    type: str
    length: int

    def __str__(self) -> str:
        return f"{self.type}{self.length}"


def check_kind(kind: object) -> str:
    """Return ``kind`` if it is a server kind, else raise ``ValueError``."""
    if not isinstance(kind, str) or kind not in FACTORS:
        raise ValueError(f"unknown server kind {kind!r}: expected one of {', '.join(SERVER_KINDS)}")
    return kind  # type: ignore[return-value]


def check_request(request: object) -> Request:
    """Return ``request`` as a ``Request``, or raise ``ValueError`` saying what is wrong."""
    try:
        request_type, length = request  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"a request is a pair (type, length), got {request!r}") from None
    if request_type not in REQUEST_TYPES:
        raise ValueError(
            f"unknown request type {request_type!r}: expected one of {', '.join(REQUEST_TYPES)}"
        )
    if isinstance(length, bool) or not isinstance(length, int):
        raise ValueError(f"request length must be an integer, got {length!r}")
    if length < 1:
        raise ValueError(f"request length must be at least 1, got {length}")
    return Request(request_type, length)


def check_fleet(fleet: object) -> tuple[str, ...]:
    """Return ``fleet`` as a tuple of server kinds, or raise ``ValueError``."""
    if isinstance(fleet, str):
        raise ValueError(
            f"a fleet is a sequence of server kinds such as {DEFAULT_FLEET}, not {fleet!r}"
        )
    try:
        kinds = tuple(check_kind(kind) for kind in fleet)  # type: ignore[union-attr]
    except TypeError:
        raise ValueError(f"a fleet is a sequence of server kinds, got {fleet!r}") from None
    if not kinds:
        raise ValueError("a fleet needs at least one server")
    return kinds


def processing_time(kind: str, request_type: str, length: int) -> int:
    """Time units that a server of ``kind`` needs for a request: ``length * factor``.

    >>> processing_time("M", "V", 2)
    6
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def cost_matrix(fleet: tuple[str, ...] = DEFAULT_FLEET) -> dict[str, list[int]]:
    """For each request type, the factor on each server of ``fleet`` in index order.

    >>> cost_matrix()
    {'V': [1, 1, 3], 'P': [1, 1, 2], 'M': [2, 2, 1]}
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def requests_from_text(text: str) -> list[Request]:
    """Read a batch written as in the course, ``"M1V2P3"`` (spaces and commas allowed).

    Offline batches may be longer than the wire allows: ``"V12 M3"`` is two requests.
    """
    compact = "".join(text.replace(",", " ").split())
    if not compact:
        raise ValueError("no requests given: write them like M1V2P3")
    requests, position = [], 0
    while position < len(compact):
        request_type = compact[position]
        digits_end = position + 1
        while digits_end < len(compact) and compact[digits_end].isdigit():
            digits_end += 1
        digits = compact[position + 1 : digits_end]
        if request_type not in REQUEST_TYPES or not digits:
            bad = compact[position:digits_end] if digits else compact[position : position + 2]
            raise ValueError(
                f"cannot read {bad!r} in {text!r}: each request is a type V, P or M "
                "followed by a length, like M1V2P3"
            )
        requests.append(check_request((request_type, int(digits))))
        position = digits_end
    return requests
