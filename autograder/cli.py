"""Instructor commands: ``minilb grade`` and ``minilb gradescope-package``."""

import argparse
import sys
from pathlib import Path

UNSAFE_HELP = ("where bubblewrap cannot run, grade anyway in a weaker sandbox (root only: "
               "private mounts hide the kit, no network, a throwaway user id, no PID namespace)")


def register(subcommands: argparse._SubParsersAction) -> None:
    grade = subcommands.add_parser(
        "grade", help="grade a class of submitted notebooks",
        description="Grade SUBMISSIONS/<student>/<lesson>.ipynb, nbgrader's submitted/ folder "
        "(<student>/<lesson>/<notebook>.ipynb) or nbgrader's course root that holds submitted/, "
        "in a sandbox; write grades.csv, feedback/ and results/ into --out. A folder with no "
        "notebook at all is refused; a notebook that cannot be read scores 0 (status error) "
        "for that student alone.")
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS")
    grade.add_argument("--out", type=Path, required=True, metavar="DIR")
    grade.add_argument("--workers", type=int, default=2, metavar="N",
                       help="notebooks graded in parallel (default 2)")
    grade.add_argument("--lesson", metavar="NAME",
                       help="grade only this lesson (a student without it scores 0, missing)")
    grade.add_argument("--due", metavar="WHEN",
                       help='due date of every lesson, e.g. "2026-12-01 17:00 UTC"; lateness is '
                       "read from nbgrader's timestamp.txt")
    grade.add_argument("--due-dates", type=Path, metavar="FILE",
                       help="TOML or JSON file: lesson = due date (overrides --due per lesson)")
    grade.add_argument("--late-penalty-per-day", type=float, default=0.0, metavar="P",
                       help="percent of the maximum taken off per started late day (default 0: "
                       "lateness is only reported)")
    grade.add_argument("--late-max-days", type=int, metavar="D",
                       help="more than D days late scores 0 (default: no limit)")
    grade.add_argument("--late-policy", type=Path, metavar="FILE",
                       help="the course's late_policy.toml (due dates, penalty per day, max "
                       "days), the file nbgrader and Gradescope read too; instead of the four "
                       "options above")
    grade.add_argument("--unsafe-no-sandbox", action="store_true", help=UNSAFE_HELP)
    grade.set_defaults(handler=run_grade)
    package = subcommands.add_parser(
        "gradescope-package", help="build a Gradescope autograder zip",
        description="Build OUT.zip with setup.sh and run_autograder for one Gradescope "
        "assignment, which grades one lesson's notebook. --lesson all writes one zip per "
        "lesson, OUT-<lesson>.zip.")
    package.add_argument("zip_path", type=Path, metavar="OUT.zip")
    package.add_argument("--lesson", metavar="NAME",
                         help="the lesson this assignment grades (required), or all")
    package.add_argument("--late-policy", type=Path, metavar="FILE",
                         help="charge lateness in the zip from the course's late_policy.toml "
                         "and Gradescope's submission time (else set Gradescope's own policy)")
    package.add_argument("--unsafe-no-sandbox", action="store_true", help=UNSAFE_HELP)
    package.set_defaults(handler=run_gradescope_package)


def _late_policy(args: argparse.Namespace):  # noqa: ANN202  (keeps the import lazy)
    from autograder.late import LatePolicy, parse_timestamp, read_due_dates, read_policy

    if args.late_policy:
        if args.due or args.due_dates or args.late_penalty_per_day or args.late_max_days:
            raise ValueError("--late-policy replaces --due, --due-dates, --late-penalty-per-day "
                             "and --late-max-days: give the file, or those options")
        return read_policy(args.late_policy)
    return LatePolicy(due=parse_timestamp(args.due) if args.due else None,
                      due_by_lesson=read_due_dates(args.due_dates) if args.due_dates else {},
                      penalty_per_day=args.late_penalty_per_day, max_days=args.late_max_days)


def run_grade(args: argparse.Namespace) -> int:
    from autograder.grade import Interrupted, run_with_progress_bar  # here: keeps `minilb` fast

    try:
        run = run_with_progress_bar(args.submissions, args.out, args.workers, lesson=args.lesson,
                                    late=_late_policy(args),
                                    allow_unsafe=args.unsafe_no_sandbox)
    except Interrupted as stop:
        print(f"minilb grade: {stop}; every sandbox and worker ended, finished notebooks are "
              f"kept in {args.out / '.cache'} (run again to resume)", file=sys.stderr)
        return 128 + stop.signum
    total = sum(grade.final_score for grade in run.grades)
    late = sum(1 for grade in run.grades if grade.late_days)
    errors = sum(1 for grade in run.grades if grade.status == "error")
    print(f"graded {len(run.grades)} notebooks ({run.graded} run, {run.reused} from the cache); "
          f"total {total:g} points" + (f"; {late} handed in late" if late else "") +
          (f"; {errors} could not be graded (status error, the reason is in each feedback)"
           if errors else "") + f"; grades in {args.out / 'grades.csv'}")
    return 0


def run_gradescope_package(args: argparse.Namespace) -> int:
    from autograder.gradescope import build_packages

    for path in build_packages(args.zip_path, args.lesson, args.unsafe_no_sandbox,
                               args.late_policy):
        print(f"wrote {path}")
    return 0
