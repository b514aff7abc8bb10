"""Gradescope: ``minilb gradescope-package --lesson NAME OUT.zip`` and the run inside Gradescope.

A Gradescope assignment grades one lesson (DESIGN section 7: each lesson on its own), so each
zip is built for one lesson (``--lesson all``: one zip per lesson). It holds ``setup.sh``
(installs bubblewrap and the Python dependencies), ``run_autograder`` and the kit's grader
sources under ``kit/``: the same sandbox, rubric and hidden tests as ``minilb grade``. The zip
is reproducible: sorted entries, fixed timestamps, modes 0644 (0755 for the two scripts), so
building twice gives the same bytes.

Gradescope unpacks it into ``/autograder/source``; ``run_autograder`` grades the lesson's
notebook in ``/autograder/submission`` (found by name; other notebooks are ignored, and the
student is told) and writes ``/autograder/results/results.json``. It runs on Gradescope's
base image as it is (Ubuntu 22.04: Python 3.10; ``tomli`` stands in for ``tomllib``). The
sandbox is the best that runs there (``sandbox.isolation``: bubblewrap, else the jail, else the
uid sandbox that needs neither CAP_SYS_ADMIN nor user namespaces, which Gradescope's containers
probably lack); ``run_autograder`` first makes ``source/`` unreadable to other users, so the
uid sandbox cannot read the hidden tests either. A Gradescope container grades one submission
and is thrown away, so a weaker sandbox there risks no other student's work: what it must hide
is the kit. results.json says which sandbox ran (``extra_data.sandbox``). The root
``/autograder`` can be moved with ``AUTOGRADER_ROOT`` (the tests use a temporary one). The
reference package is put on ``PYTHONPATH``, never installed into site-packages: the sandbox
shows site-packages to student code.

Every run writes a results.json, whatever fails: a hostile or missing notebook is graded as 0
with the grader's reason (``grade_submission`` never raises for it); a failure of the grader
itself, even an import error of the kit, is caught in ``main``, which imports the kit only
inside its guard; and ``run_autograder`` writes a score-0 results.json itself if Python wrote
none (no interpreter, a crash before ``main``). The uploaded folder is walked without following
a symbolic link, and the notebook is read only if it is a regular file.
"""

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
SHIPPED = ("autograder/**/*.py", "reference_solution/minilb/*.py", "pyproject.toml")
REQUIREMENTS = ("rich>=13", "python-dateutil>=2.8",  # what grading needs beyond the stdlib
                "numpy>=1.24",  # the reference's exact solver (lesson 3's expected optima)
                'tomli>=1.1; python_version < "3.11"')
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
MAX_OTHERS, MAX_NAME = 10, 80  # other uploaded notebooks named in the output

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -eux
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap python3 python3-pip
python3 -m pip install --break-system-packages -r /autograder/source/requirements.txt \\
    || python3 -m pip install -r /autograder/source/requirements.txt
python3 -c 'import sys; assert sys.version_info >= (3, 10), sys.version'
chmod -R go-rwx /autograder/source  # the hidden tests: unreadable to the sandbox's user
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; AUTOGRADER_ROOT moves /autograder (for tests).
set -eu
root="${{AUTOGRADER_ROOT:-/autograder}}"
kit="$root/source/kit"
results="$root/results/results.json"
write_fallback() {{  # whatever failed, the student gets a result (score 0, the reason)
    if [ ! -s "$results" ]; then
        mkdir -p "$root/results"
        printf '%s\\n' '{fallback}' > "$results"
    fi
}}
trap write_fallback EXIT
rm -f "$results"
chmod -R go-rwx "$root/source"  # the uid sandbox (no CAP_SYS_ADMIN) must not read the kit
cd "$kit"
PYTHONPATH="$kit:$kit/reference_solution" python3 -m autograder.gradescope "$root" \\
    --lesson {lesson}{unsafe}
"""
FALLBACK = {"score": 0.0, "tests": [], "stdout_visibility": "hidden",
            "output": "The autograder itself failed before it could grade this submission, so "
            "nothing was graded: please tell your instructor."}  # no ' in it: see write_fallback


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (0o100000 | mode) << 16  # a regular file with this mode
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def build_package(zip_path: Path, lesson: str, allow_unsafe: bool = False,
                  late_policy: Path | None = None) -> None:
    """Write the Gradescope autograder zip for ``lesson``, byte for byte reproducibly.

    With ``late_policy`` (the course's ``late_policy.toml``) the zip carries it, and each
    submission is charged from the time Gradescope says it was made, as ``minilb grade`` and
    nbgrader charge it; without one, set Gradescope's own late policy to the same rule."""
    from autograder.handout import check_lesson
    from autograder.late import POLICY_FILE, read_policy

    check_lesson(lesson)
    if late_policy is not None:
        read_policy(late_policy)  # a broken policy fails the build, not every submission
    entries = {
        "setup.sh": (SETUP_SH.encode(), 0o755),
        "run_autograder": (RUN_AUTOGRADER.format(
            lesson=lesson, unsafe=" --unsafe-no-sandbox" if allow_unsafe else "",
            fallback=json.dumps(FALLBACK)).encode(),
            0o755),
        "requirements.txt": ("\n".join(REQUIREMENTS).encode() + b"\n", 0o644),
    }
    if late_policy is not None:
        entries[POLICY_FILE] = (Path(late_policy).read_bytes(), 0o644)
    for pattern in SHIPPED:
        for path in KIT.glob(pattern):
            if "__pycache__" not in path.parts:
                entries[f"kit/{path.relative_to(KIT)}"] = (path.read_bytes(), 0o644)
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name in sorted(entries):
            _add(archive, name, *entries[name])


def build_packages(zip_path: Path, lesson: str | None, allow_unsafe: bool = False,
                   late_policy: Path | None = None) -> list[Path]:
    """``build_package`` for one lesson, or for each (``lesson == "all"``: OUT-<lesson>.zip)."""
    from autograder.contract import LESSONS

    zip_path = Path(zip_path)
    if zip_path.suffix != ".zip":
        raise ValueError(f"the package must be a .zip file, got {zip_path}")
    if lesson is None:
        raise ValueError("a Gradescope assignment grades one lesson: give --lesson NAME (one "
                         f"of {', '.join(LESSONS)}), or --lesson all for one zip per lesson")
    if lesson != "all":
        build_package(zip_path, lesson, allow_unsafe, late_policy)
        return [zip_path]
    paths = [zip_path.with_name(f"{zip_path.stem}-{name}.zip") for name in LESSONS]
    for name, path in zip(LESSONS, paths, strict=True):
        build_package(path, name, allow_unsafe, late_policy)
    return paths


def _find_notebook(submission: Path, lesson: str) -> tuple[Path | None, list[Path]]:
    """The notebook for ``lesson`` (its exact name first) and the other notebooks uploaded,
    found without following a symbolic link (a link itself may be chosen: it is refused when
    read, with the reason)."""
    from autograder.submissions import lesson_of

    notebooks = []
    for folder, subfolders, files in os.walk(submission, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        notebooks += [Path(folder, name) for name in files
                      if name.endswith(".ipynb") and not name.startswith(".")]
    notebooks.sort()
    exact = [path for path in notebooks if path.name == f"{lesson}.ipynb"]
    close = [path for path in notebooks if lesson_of(path.stem) == lesson]
    chosen = (exact or close or [None])[0]
    return chosen, [path for path in notebooks if path != chosen]


def _submitted_at(root: Path):  # noqa: ANN202  (datetime | None)
    """When Gradescope says the submission was made (``submission_metadata.json``)."""
    from autograder.late import parse_timestamp

    try:
        metadata = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        return parse_timestamp(str(metadata["created_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def grade_gradescope_submission(root: Path, lesson: str, allow_unsafe: bool = False) -> dict:
    """Grade ``lesson``'s notebook in ``root/submission``: the content of results.json.

    Raises ``SandboxRefused`` where no sandbox runs here (``allow_unsafe`` is kept for old
    zips: the best sandbox that runs is used either way, see the module's docstring)."""
    from autograder.grade import Submission, apply_late_policy, grade_submission
    from autograder.late import POLICY_FILE, read_policy
    from autograder.reports import gradescope_results, shown_name
    from autograder.sandbox import require_isolation

    kind = require_isolation(allow_unsafe=True)
    submission = root / "submission"
    notebook, others = _find_notebook(submission, lesson)
    handed_in = Submission("submission", lesson, notebook, _submitted_at(root))
    grade = grade_submission(handed_in)
    policy_file = root / "source" / POLICY_FILE
    if policy_file.is_file():
        grade = apply_late_policy(grade, handed_in, read_policy(policy_file))
    results = gradescope_results(grade)
    results["extra_data"] = {**results.get("extra_data", {}), "sandbox": kind}
    if others:
        names = ", ".join(shown_name(str(path.relative_to(submission)))[:MAX_NAME]
                          for path in others[:MAX_OTHERS])  # names the student chose: escaped, cut
        names += f" and {len(others) - MAX_OTHERS} more" if len(others) > MAX_OTHERS else ""
        results["output"] = "\n".join(filter(None, [
            results["output"], f"Not graded here (this assignment grades only {lesson}.ipynb): "
            f"{names}."]))
    return results


def _results(root: Path, lesson: str, allow_unsafe: bool) -> tuple[dict, int]:
    """What to write into results.json and the exit code; never raises."""
    try:
        from autograder.sandbox import SandboxRefused

        try:
            return grade_gradescope_submission(root, lesson, allow_unsafe), 0
        except SandboxRefused as refused:  # the student sees why; the instructor the failure
            print(f"run_autograder: {refused}", file=sys.stderr)
            return {**FALLBACK, "output": "The autograder cannot isolate "
                    "submitted code on this machine, so nothing was graded: please tell your "
                    "instructor.", "extra_data": {"sandbox": "none"}}, 1
    except Exception as error:  # noqa: BLE001  (the grader's own failure: still a result)
        print(f"run_autograder: the grader failed: {type(error).__name__}: {error}",
              file=sys.stderr)
        kind = type(error).__name__ if type(error).__module__ == "builtins" else "an error"
        return {**FALLBACK, "output": f"The autograder failed ({kind}), so nothing was graded: "
                "please tell your instructor."}, 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder")
    parser.add_argument("root", type=Path, nargs="?", default=Path("/autograder"))
    parser.add_argument("--lesson", required=True)
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    args = parser.parse_args(argv)
    results, code = _results(args.root, args.lesson, args.unsafe_no_sandbox)
    (args.root / "results").mkdir(parents=True, exist_ok=True)
    temporary = args.root / "results" / ".results.json.tmp"
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(args.root / "results" / "results.json")
    print(f"score {results['score']:g}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
