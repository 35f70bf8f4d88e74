"""``make grade``: grade a whole class, in parallel, one sandbox per submission; the command lines.

Input is nbgrader's layout ``SUBMISSIONS/<learner>/<assignment>/<assignment>.ipynb`` (with any files
the learner's notebook reads; a git clone is fine), or ``SUBMISSIONS/<learner>.zip`` / ``.tar`` /
``.tar.gz`` / ``.tgz`` holding the same layout (with or without the ``<learner>/`` level). The
assignments are those of the source folder (solutions/). The work is split by job:

* ``autograder.staging``: finding the learners, staging a submission into a private copy (nothing
  followed: links, hard links, FIFOs and devices are refused), its content hash;
* ``autograder.job``: one learner x assignment (``python -m autograder grade-one``), its result file;
* ``autograder.batch``: the whole class (``python -m autograder grade``), which jobs to (re)grade,
  one worker process per job, forked from a zygote per worker thread (``autograder.zygote``);
* ``autograder.trusted``: grading one submission, split by job into ``cells``, ``redaction``,
  ``plan``, ``session`` (the sandbox's learner process and the remote calls), ``testrun`` (one test
  cell) and ``results``; ``sandbox``, ``wire`` and ``feedback`` do the rest;
* ``autograder.export``: grades.csv.

Every job gets a row whatever happens to it: a missing assignment (status ``missing``), a refused
submission, a broken notebook, a crash, a timeout, even the death of the grader's own worker.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields

from .batch import WORKER_MEMORY, grade_all, worker_setup
from .export import write_csv
from .job import CSV_FIELDS, grade_one, load_result, result_path
from .paths import SOLUTIONS
from .sandbox import Limits
from .staging import MAX_BYTES, MAX_FILES, ZipProblem, discover, extract_assignment

__all__ = ["CSV_FIELDS", "MAX_BYTES", "MAX_FILES", "ZipProblem", "discover", "extract_assignment", "grade_all",
           "grade_one", "load_result", "result_path", "write_csv"]


def _limits(args):
    limits = Limits()
    if getattr(args, "limits", None):
        given = json.loads(args.limits)
        known = {f.name for f in fields(Limits)}
        if not isinstance(given, dict) or set(given) - known:
            raise SystemExit(f"error: --limits takes a JSON object with keys among {sorted(known)}")
        limits = Limits(**(asdict(limits) | given))
    if args.timeout:
        limits = Limits(**(asdict(limits) | {"wall_seconds": float(args.timeout)}))
    return limits


def _memory(args):
    return int(args.worker_memory) if args.worker_memory else WORKER_MEMORY


def main(args):
    """CLI entry of ``grade`` (see ``python -m autograder grade --help``)."""
    if args.allow_weak_sandbox and not args.scheduler:
        raise SystemExit("error: --allow-weak-sandbox is for --scheduler (a cluster's workers)")
    if args.only and not args.regrade:
        raise SystemExit("error: --only names what --regrade regrades; add --regrade")
    try:
        rows = grade_all(args.submissions, args.out, source=args.source, workers=args.workers,
                         limits=_limits(args), progress=not args.quiet, regrade=args.regrade,
                         only=args.only or None, assignments_only=args.assignment or None,
                         worker_memory=_memory(args), scheduler=args.scheduler,
                         allow_weak_sandbox=args.allow_weak_sandbox)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish the remaining submissions", file=sys.stderr)
        return 130
    graded = sum(r["status"] == "graded" for r in rows)
    print(f"{len(rows)} row(s): {graded} graded, {len(rows) - graded} with another status")
    return 0


def main_one(args):
    """CLI entry of ``grade-one``: one learner x assignment, its result file written at the end."""
    from .batch import check_paths
    from .job import find_learner

    check_paths(args.submissions, args.out, args.source, args.assignment)
    if find_learner(args.submissions, args.learner) is None:
        raise SystemExit(f"error: no learner {args.learner!r} in {args.submissions} "
                         "(`python -m autograder jobs SUBMISSIONS` lists the class's jobs)")
    worker_setup(args.parent_pid, _memory(args))
    row = grade_one(args.submissions, args.learner, args.assignment, args.out, source=args.source,
                    limits=_limits(args), mode=args.mode)
    if not args.quiet:
        print(f"{row['learner']} {row['assignment']}: {row['score']:g}/{row['max_score']:g} {row['status']}")
    return 0


def _common(parser):
    parser.add_argument("--out", default="grades", help="output folder (grades.csv, feedback/, results/)")
    parser.add_argument("--source", default=str(SOLUTIONS), help="source assignments (default: solutions/)")
    parser.add_argument("--timeout", type=float, default=None, help="wall-clock seconds per submission")
    parser.add_argument("--limits", default=None, help="sandbox limits as JSON (autograder.sandbox.Limits fields)")
    parser.add_argument("--worker-memory", type=int, default=None,
                        help=f"RLIMIT_AS of each grader worker in bytes (default {WORKER_MEMORY >> 30} GiB)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def add_arguments(parser):
    parser.add_argument("submissions", help="folder of <learner>/<assignment>/... or <learner>.zip/.tar/.tar.gz/.tgz")
    _common(parser)
    parser.add_argument("--workers", type=int, default=None, help="parallel jobs (default: one per core)")
    parser.add_argument("--regrade", action="store_true", help="grade again even what is up to date")
    parser.add_argument("--only", action="append", default=[], metavar="LEARNER[/ASSIGNMENT]",
                        help="with --regrade: regrade only these (repeatable)")
    parser.add_argument("--assignment", action="append", default=[], metavar="NN_topic",
                        help="grade, and write rows for, only this assignment (repeatable)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                        help="grade on this Dask cluster (the cluster extra), one task per job")
    parser.add_argument("--allow-weak-sandbox", action="store_true",
                        help="with --scheduler: accept workers whose sandbox is weaker than root mode")


def add_one_arguments(parser):
    parser.add_argument("submissions", help="the class's submissions folder")
    parser.add_argument("learner")
    parser.add_argument("assignment")
    _common(parser)
    parser.add_argument("--mode", default=None, help="sandbox mode (default: probed)")
    parser.add_argument("--parent-pid", type=int, default=None, help="die with this process (set by `grade`)")
