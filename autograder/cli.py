"""Instructor commands: ``minilb grade`` and ``minilb gradescope-package``."""

import argparse
from pathlib import Path


def register(subcommands: argparse._SubParsersAction) -> None:
    grade = subcommands.add_parser(
        "grade", help="grade a class of submitted notebooks",
        description="Grade SUBMISSIONS/<student>/<lesson>.ipynb (or nbgrader's submitted/ "
        "layout) in a sandbox; write grades.csv, feedback/ and results/ into --out.")
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS")
    grade.add_argument("--out", type=Path, required=True, metavar="DIR")
    grade.add_argument("--workers", type=int, default=2, metavar="N",
                       help="notebooks graded in parallel (default 2)")
    grade.set_defaults(handler=run_grade)
    package = subcommands.add_parser(
        "gradescope-package", help="build a Gradescope autograder zip",
        description="Build OUT.zip with setup.sh and run_autograder for Gradescope.")
    package.add_argument("zip_path", type=Path, metavar="OUT.zip")
    package.set_defaults(handler=run_gradescope_package)


def run_grade(args: argparse.Namespace) -> int:
    from autograder.grade import run_with_progress_bar  # imported here: keeps `minilb` fast

    run = run_with_progress_bar(args.submissions, args.out, args.workers)
    total = sum(grade.score for grade in run.grades)
    print(f"graded {len(run.grades)} notebooks ({run.graded} run, {run.reused} from the cache); "
          f"total {total:g} points; grades in {args.out / 'grades.csv'}")
    return 0


def run_gradescope_package(args: argparse.Namespace) -> int:
    from autograder.gradescope import build_package

    if args.zip_path.suffix != ".zip":
        raise ValueError(f"the package must be a .zip file, got {args.zip_path}")
    build_package(args.zip_path)
    print(f"wrote {args.zip_path}")
    return 0
