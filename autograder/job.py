"""One job: one learner and one assignment, staged, graded in its sandbox, its result file written.

``grade_one`` is what ``python -m autograder grade-one SUBMISSIONS LEARNER ASSIGNMENT --out DIR`` runs
(the batch runs it as one subprocess per job; a cluster engine can run it as one task per job). The
result is written to ``OUT/results/<learner>/<assignment>.json`` atomically (temporary file, then
rename) once the job has run to its end, never before: a job whose process dies leaves no result.
Each result records the hash of the submitted files it graded (``submission_hash``) and of the
source notebook (``source_hash``), so that the batch regrades it when either changes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path

from .paths import SOLUTIONS, notebook_path
from .staging import discover, source_digest, stage

CSV_FIELDS = ("learner", "assignment", "score", "max_score", "status")


def result_path(out, learner, assignment):
    return Path(out) / "results" / learner / f"{assignment}.json"


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_result(path):
    """The result stored at ``path``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(k in data for k in CSV_FIELDS):
        return None
    return data


def failed_result(source_nb, status):
    """A result with every test of the assignment failed and ``status`` as the reason."""
    from . import trusted
    from .notebooks import read

    plan = trusted.build_plan(read(source_nb), None)
    return trusted._result(plan, status=status, tests=trusted._failed_tests(plan, f"not graded: {status}"))


def record(out, learner, assignment, result, *, submission_hash, source_hash, final=True):
    """Complete ``result`` with the job's identity and hashes and write it; returns its CSV row."""
    result.update(learner=learner, assignment=assignment, submission_hash=submission_hash,
                  source_hash=source_hash, final=final)
    write_json(result_path(out, learner, assignment), result)
    return {k: result[k] for k in CSV_FIELDS} | {"elapsed_s": result.get("elapsed_s", 0)}


def find_learner(submissions, learner):
    """The ``staging.Learner`` called ``learner`` in ``submissions``, or None."""
    return discover(submissions).learners.get(learner)


def grade_one(submissions, learner, assignment, out, *, source=SOLUTIONS, limits=None, mode=None, entry=None):
    """Stage, grade and record one job; returns its CSV row. Never raises for a submission's doing.

    ``entry`` is the learner's ``staging.Learner`` when the caller has already found it.
    """
    from .sandbox import scratch_dir

    source_nb = notebook_path(assignment, source)
    source_hash = source_digest(source_nb)
    t0 = time.monotonic()
    entry = entry if entry is not None else find_learner(submissions, learner)
    tmp = scratch_dir("job")
    digest = None
    try:
        if entry is None:
            staged = stage_missing()
        else:
            staged = stage(entry, assignment, tmp / assignment)
        digest = staged.digest
        if staged.status is not None:
            result = failed_result(source_nb, staged.status)
        else:
            from . import trusted

            result = trusted.grade(source_nb, staged.folder / f"{assignment}.ipynb", files=staged.folder,
                                   limits=limits, mode=mode)
    except Exception as exc:  # noqa: BLE001 - a bad submission never stops the batch
        result = failed_result(source_nb, f"grader error ({type(exc).__name__}: {str(exc)[:200]})")
        # failed_result screens the status (trusted._result): the message may quote what the learner sent
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["elapsed_s"] = round(time.monotonic() - t0, 3)
    # CPU-seconds of this job's own (trusted) process; with sandbox_cpu_s, where a job's cost goes (bench/)
    used = resource.getrusage(resource.RUSAGE_SELF)
    result["grader_cpu_s"] = round(used.ru_utime + used.ru_stime, 3)
    # A grader error is the grader's (or its machine's) fault, not the submission's: the row says so, and
    # the result is not final, so the next run grades the job again instead of keeping the error.
    final = not str(result.get("status", "")).startswith("grader error")
    return record(out, learner, assignment, result, submission_hash=digest or "unknown", source_hash=source_hash,
                  final=final)


def stage_missing():
    from .staging import Staged, _digest_of_status

    return Staged(None, "missing", _digest_of_status("missing"))
