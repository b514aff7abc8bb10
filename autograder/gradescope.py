"""Gradescope: ``minilb gradescope-package OUT.zip`` and the grading run inside Gradescope.

The zip holds ``setup.sh`` (installs bubblewrap and the Python dependencies), ``run_autograder``
and the kit's grader sources under ``kit/``: the same sandbox, rubric and hidden tests as
``minilb grade``. Gradescope unpacks it into ``/autograder/source``; ``run_autograder`` grades
every notebook in ``/autograder/submission`` and writes ``/autograder/results/results.json``.
The root ``/autograder`` can be moved with ``AUTOGRADER_ROOT`` (the tests use a temporary one).
The reference package is put on ``PYTHONPATH``, never installed into site-packages: the
sandbox shows site-packages to student code.
"""

import json
import sys
import zipfile
from pathlib import Path

from autograder.grade import Submission, grade_submission, gradescope_results, lesson_of

KIT = Path(__file__).resolve().parent.parent
SHIPPED = ("autograder/**/*.py", "reference_solution/minilb/*.py", "pyproject.toml")
REQUIREMENTS = ("rich>=13",)  # all that grading needs beyond the standard library

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -eux
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap python3 python3-pip
python3 -m pip install --break-system-packages -r /autograder/source/requirements.txt \\
    || python3 -m pip install -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; AUTOGRADER_ROOT moves /autograder (for tests).
set -eu
root="${AUTOGRADER_ROOT:-/autograder}"
kit="$root/source/kit"
cd "$kit"
PYTHONPATH="$kit:$kit/reference_solution" exec python3 -m autograder.gradescope "$root"
"""


def build_package(zip_path: Path) -> None:
    """Write the Gradescope autograder zip."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16  # executable, as Gradescope expects
            archive.writestr(info, text)
        archive.writestr("requirements.txt", "\n".join(REQUIREMENTS) + "\n")
        for pattern in SHIPPED:
            for path in sorted(KIT.glob(pattern)):
                if "__pycache__" not in path.parts:
                    archive.write(path, f"kit/{path.relative_to(KIT)}")


def grade_gradescope_submission(root: Path) -> dict:
    """Grade every lesson notebook in ``root/submission``; one results.json for them all."""
    notebooks = sorted((root / "submission").rglob("*.ipynb"))
    found = {}
    for notebook in notebooks:
        lesson = lesson_of(notebook.stem)
        if lesson and lesson not in found:
            found[lesson] = notebook
    if not found:
        return {"score": 0.0, "tests": [], "output": "No lesson notebook was found in the "
                "submission: upload NN_name.ipynb (for example 01_cost_matrix.ipynb)."}
    results = [gradescope_results(grade_submission(Submission("submission", lesson, path)))
               for lesson, path in sorted(found.items())]
    return {"score": round(sum(result["score"] for result in results), 4),
            "output": "\n".join(result["output"] for result in results if result["output"]),
            "stdout_visibility": "hidden",
            "tests": [test for result in results for test in result["tests"]]}


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "/autograder")
    results = grade_gradescope_submission(root)
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"score {results['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
