"""Harness for ``parse_request`` on the other bytes-like types the lesson allows.

``run(parse_request, shape, data)`` calls it with ``data`` as a ``bytearray`` or a
``memoryview`` (JSON carries only bytes) and answers what came back: ``{"tuple": bool,
"type": the first item if a str, "length": the second if an int, "length_kind": its type's
name}``. An exception from the student's function passes through unchanged.
"""

SHAPES = {"bytearray": bytearray, "memoryview": memoryview}


def run(parse_request, shape: str, data: bytes) -> dict:  # noqa: ANN001
    result = parse_request(SHAPES[shape](data))
    pair = tuple(result)[:2] if isinstance(result, tuple | list) else ()
    first, second = (*pair, None, None)[:2]
    return {
        "tuple": isinstance(result, tuple) and len(result) == 2,
        "type": first if type(first) is str else None,
        "length": second if type(second) is int else None,
        "length_kind": type(second).__name__,
    }
