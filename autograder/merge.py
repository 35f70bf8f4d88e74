"""Grading past one machine: the job list a cluster engine iterates over, and the merge of its results.

A cluster engine (a Slurm job array, an HTCondor ``queue ... from`` file, a Kubernetes Indexed Job)
runs ``python -m autograder grade-one SUBMISSIONS LEARNER ASSIGNMENT --out PART`` once per line of
``python -m autograder jobs SUBMISSIONS``; each run writes ``PART/results/<learner>/<assignment>.json``.
``python -m autograder merge PART... --out OUT`` then gathers those result files into
``OUT/results``, writes the feedback pages and ``OUT/grades.csv``: the same file one ``make grade``
writes. With ``--submissions`` (and ``--source``) the merge knows every job of the class: the rows
come in ``make grade``'s order and a job that left no result gets a ``grader error (no result)`` row
(not final) instead of vanishing; without it the rows are those found, sorted by learner and
assignment. Two parts holding a result for the same job are an error (a job ran twice into
different places and the results may differ), unless they are identical.
"""

from __future__ import annotations

from pathlib import Path

from . import feedback
from .export import write_csv
from .job import CSV_FIELDS, failed_result, load_result, result_path, write_json
from .paths import SOLUTIONS, assignments, notebook_path
from .staging import discover, safe_name, source_digest


def job_list(submissions, source=SOLUTIONS):
    """Every (learner, assignment) of the class, in ``make grade``'s order."""
    source = Path(source)
    ids = assignments(source)
    if not ids:
        raise SystemExit(f"error: no assignments (NN_topic folders) in {source}")
    return [(learner, a) for learner in discover(submissions).learners for a in ids]


def _part_results(part):
    """(learner, assignment) -> result of one part folder's ``results/``."""
    part = Path(part)
    if not part.is_dir():
        raise SystemExit(f"error: result folder {part} does not exist")
    found = {}
    root = part / "results"
    if not root.is_dir():
        return found
    for learner_dir in sorted(root.iterdir()):
        if not learner_dir.is_dir() or learner_dir.is_symlink() or not safe_name(learner_dir.name):
            continue
        for path in sorted(learner_dir.glob("*.json")):
            if path.is_symlink():
                continue
            result = load_result(path)
            if result is None or result.get("learner") != learner_dir.name or result.get("assignment") != path.stem:
                raise SystemExit(f"error: {path} is not a result file of {learner_dir.name} {path.stem}")
            found[(learner_dir.name, path.stem)] = result
    return found


def merge(parts, out, *, submissions=None, source=SOLUTIONS, progress=True):
    """Gather the result files of ``parts`` into ``out``; returns the rows of grades.csv."""
    out = Path(out).resolve()
    results = {}
    for part in parts:
        for key, result in _part_results(part).items():
            if key in results and results[key] != result:
                raise SystemExit(f"error: two different results for {key[0]} {key[1]} (the job ran twice)")
            results[key] = result
    if submissions is not None:
        jobs = job_list(submissions, source)
        extra = sorted(set(results) - set(jobs))
        if extra:
            raise SystemExit(f"error: results for jobs that are not in {submissions}: "
                             + ", ".join(f"{lrn} {a}" for lrn, a in extra[:5]))
    else:
        jobs = sorted(results)
    if not jobs:
        raise SystemExit("error: no result files found in " + ", ".join(map(str, parts)))
    out.mkdir(parents=True, exist_ok=True)
    rows, lost = [], 0
    for learner, a in jobs:
        result = results.get((learner, a))
        if result is None:
            lost += 1
            result = failed_result(notebook_path(a, source), "grader error (no result)")
            result.update(learner=learner, assignment=a, submission_hash="unfinished",
                          source_hash=source_digest(notebook_path(a, source)), final=False)
        target = result_path(out, learner, a)
        if load_result(target) != result:
            write_json(target, result)
        feedback.write(result, out)
        rows.append({k: result[k] for k in CSV_FIELDS})
    csv_path = write_csv(out, rows)
    if progress:
        print(f"merged {len(jobs) - lost} result(s) from {len(parts)} folder(s)"
              + (f"; {lost} job(s) without a result" if lost else "") + f": wrote {csv_path}", flush=True)
    return rows


def main_jobs(args):
    for learner, a in job_list(args.submissions, args.source):
        print(learner, a)
    return 0


def main_merge(args):
    rows = merge(args.parts, args.out, submissions=args.submissions, source=args.source, progress=not args.quiet)
    lost = sum(r["status"] == "grader error (no result)" for r in rows)
    return 1 if lost else 0


def add_jobs_arguments(parser):
    parser.add_argument("submissions", help="the class's submissions folder")
    parser.add_argument("--source", default=str(SOLUTIONS), help="source assignments (default: solutions/)")


def add_merge_arguments(parser):
    parser.add_argument("parts", nargs="+", metavar="DIR", help="folders holding results/ (grade-one's --out)")
    parser.add_argument("--out", required=True, help="output folder (grades.csv, feedback/, results/)")
    parser.add_argument("--submissions", default=None,
                        help="the class's submissions folder: every job gets a row, in make grade's order")
    parser.add_argument("--source", default=str(SOLUTIONS), help="source assignments (default: solutions/)")
    parser.add_argument("--quiet", action="store_true", help="no summary line")

