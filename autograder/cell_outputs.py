"""What the student's cells showed in the sandbox, checked, and turned into notebook outputs.

The child (``autograder.child``) sends one ``cell_output`` a student cell: ``{"stdout": text,
"stderr": text, "result": text or null, "error": null or {"ename": text, "evalue": text,
"traceback": [text, ...]}, "figures": [base64 PNG, ...]}``. Student code runs in that process,
so it can send anything: ``checked`` accepts exactly that shape within the child's bounds and
gives, for anything else, a reason in the grader's words instead. ``RestoreStudentOutputs``
turns checked ones into the nbformat outputs a TA reads in nbgrader's graded notebook.

These are the student's own outputs, shown in their own notebook, before any hidden call ran:
never feedback, never in results.json or grades.csv.
"""

import base64
import binascii

from autograder import child

KEYS = {"stdout", "stderr", "result", "error", "figures"}
ERROR_KEYS = {"ename", "evalue", "traceback"}
TRACEBACK_LINES = 2 * child.TRACEBACK_FRAMES + 1  # a header and a line of code a frame, then
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Malformed(ValueError):
    """A ``cell_output`` that is not what the child sends; the message says what is wrong."""


def _text(value: object, what: str) -> str:
    if type(value) is not str:
        raise Malformed(f"its {what} is not text")
    if len(value) > child.CELL_OUTPUT_BYTES:
        raise Malformed(f"its {what} is longer than {child.CELL_OUTPUT_BYTES} characters")
    return value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be saved


def _figure(value: object) -> str:
    if type(value) is not str or len(value) > child.FIGURE_BYTES:
        raise Malformed(f"a figure is not base64 text of at most {child.FIGURE_BYTES} characters")
    try:
        png = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Malformed("a figure is not valid base64") from error
    if not png.startswith(PNG_SIGNATURE):
        raise Malformed("a figure is not a PNG image")
    return value


def _error(value: object) -> dict | None:
    if value is None:
        return None
    if type(value) is not dict or set(value) != ERROR_KEYS:
        raise Malformed("its error is not {ename, evalue, traceback}")
    lines = value["traceback"]
    if type(lines) is not list or len(lines) > TRACEBACK_LINES:
        raise Malformed(f"its traceback is not a list of at most {TRACEBACK_LINES} lines")
    return {"ename": _text(value["ename"], "error name"),
            "evalue": _text(value["evalue"], "error message"),
            "traceback": [_text(line, "traceback") for line in lines]}


def checked(payload: object) -> dict:
    """``payload`` as a clean ``cell_output`` (a copy), or ``Malformed`` saying why not."""
    if type(payload) is not dict or set(payload) != KEYS:
        raise Malformed(f"it is not an object with exactly the keys {', '.join(sorted(KEYS))}")
    figures = payload["figures"]
    if type(figures) is not list or len(figures) > child.FIGURES_PER_CELL:
        raise Malformed(f"its figures are not a list of at most {child.FIGURES_PER_CELL}")
    result = payload["result"]
    return {"stdout": _text(payload["stdout"], "stdout"),
            "stderr": _text(payload["stderr"], "stderr"),
            "result": None if result is None else _text(result, "result"),
            "error": _error(payload["error"]),
            "figures": [_figure(figure) for figure in figures]}


def text_size(output: dict) -> int:
    error = output["error"] or {"ename": "", "evalue": "", "traceback": []}
    return sum(map(len, (output["stdout"], output["stderr"], output["result"] or "",
                         error["ename"], error["evalue"], *error["traceback"])))


def checked_all(reported: object, cells: int) -> list[dict]:
    """The child's ``cell_outputs``: one entry a cell, each ``checked`` or ``{"dropped":
    reason}`` (also when it would pass the bounds on all cells together); ``[]`` when it is not
    a list of one entry a cell (then no entry can be matched to its cell)."""
    if type(reported) is not list or len(reported) != cells:
        return []
    kept: list[dict] = []
    text_left, figures_left = child.ALL_OUTPUT_BYTES, child.ALL_FIGURE_BYTES
    for payload in reported:
        try:
            output = checked(payload)
        except Malformed as error:
            kept.append({"dropped": str(error)})
            continue
        text, figures = text_size(output), sum(map(len, output["figures"]))
        if text > text_left or figures > figures_left:
            kept.append({"dropped": "the outputs of all cells together pass the bounds"})
            continue
        text_left, figures_left = text_left - text, figures_left - figures
        kept.append(output)
    return kept
