"""Command line: ``python -m autograder {release,check-release,grade,grade-one,jobs,merge} ...``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("release", help="regenerate course/ from solutions/")
    sub.add_parser("check-release", help="fail if course/ differs from a fresh release")
    from .grade import add_arguments, add_one_arguments

    add_arguments(sub.add_parser("grade", help="grade a class: sandboxed, parallel, resumable"))
    add_one_arguments(sub.add_parser("grade-one", help="grade one learner x assignment into OUT/results"))
    from .gradebook import add_arguments as add_gradebook_arguments

    add_gradebook_arguments(sub.add_parser("gradebook", help="OUT/results into nbgrader's gradebook"))
    from .merge import add_jobs_arguments, add_merge_arguments

    add_jobs_arguments(sub.add_parser("jobs", help="list the class's jobs, one 'LEARNER ASSIGNMENT' a line"))
    add_merge_arguments(sub.add_parser("merge", help="build grades.csv and feedback from grade-one result folders"))
    args, rest = parser.parse_known_args(argv)

    if args.command == "release":
        from .release import release

        for assignment in release(quiet=True):
            print(f"released {assignment}")
        return 0
    if args.command == "check-release":
        from .release import check

        diffs = check()
        for d in diffs:
            print(f"out of sync: course/{d}  (run `make release`)")
        return 1 if diffs else 0
    if args.command in ("jobs", "merge"):
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from .merge import main_jobs, main_merge

        return main_jobs(args) if args.command == "jobs" else main_merge(args)
    if args.command in ("grade", "grade-one"):
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from .grade import main as grade_main
        from .grade import main_one

        return grade_main(args) if args.command == "grade" else main_one(args)
    if args.command == "gradebook":
        from .gradebook import main as gradebook_main

        return gradebook_main(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
