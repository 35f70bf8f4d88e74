"""Command line: ``python -m autograder {release,check-release,grade,grade-one} ...``."""

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
    if args.command in ("grade", "grade-one"):
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from .grade import main as grade_main
        from .grade import main_one

        return grade_main(args) if args.command == "grade" else main_one(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
