"""``make grade``: grade a whole class, in parallel, one sandbox per submission.

Input is nbgrader's layout ``SUBMISSIONS/<learner>/<assignment>/<assignment>.ipynb`` (with any files
the learner's notebook reads), or ``SUBMISSIONS/<learner>.zip`` holding the same layout (with or
without the ``<learner>/`` level). The assignments are those of the source folder (solutions/).

One job per learner and assignment. Each job writes ``OUT/results/<learner>/<assignment>.json``
atomically (temporary file, then rename); a job whose result exists is not run again, so a batch
that was killed finishes the rest when it is started again. ``OUT/grades.csv`` and
``OUT/feedback/<learner>/<assignment>/<assignment>.html`` are then rebuilt from the result files.
Every job gets a row whatever happens to it: a missing assignment (status ``missing``), a broken
notebook, a crash, a timeout, even a crash of the grader's own worker process.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import stat
import sys
import tempfile
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path

from . import feedback
from .paths import SOLUTIONS, assignments, notebook_path
from .sandbox import ONE_THREAD_ENV, Limits, sweep_scratch

CSV_FIELDS = ("learner", "assignment", "score", "max_score", "status")
ZIP_MAX_MEMBERS = 10_000
ZIP_MAX_BYTES = 200 << 20
ZIP_MAX_RATIO = 200


class ZipProblem(Exception):
    """A zip submission that is refused (unsafe paths, links, too large, not a zip)."""


def discover(submissions):
    """{learner: folder or zip file}; a folder wins over a zip of the same name."""
    learners = {}
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise SystemExit(f"error: submissions folder {submissions} does not exist")
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            learners[entry.name] = entry
        elif entry.is_file() and entry.suffix.lower() == ".zip" and entry.stem not in learners:
            learners.setdefault(entry.stem, entry)
    return learners


def extract_assignment(zip_path, learner, assignment, dest):
    """Extract ``assignment``'s folder from a learner's zip into ``dest`` safely; returns ``dest``.

    Refuses absolute paths, ``..``, links, more than ZIP_MAX_MEMBERS entries, more than ZIP_MAX_BYTES
    uncompressed (counted while extracting, not trusted from the header) and suspicious ratios.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipProblem(f"not a valid zip file ({exc.__class__.__name__})") from None
    total = 0
    with zf:
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ZipProblem(f"more than {ZIP_MAX_MEMBERS} files in the zip")
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise ZipProblem(f"unsafe path in zip: {info.filename!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ZipProblem(f"symbolic link in zip: {info.filename!r}")
            if len(parts) >= 2 and parts[0] == learner and parts[1] == assignment:
                rel = parts[2:]
            elif parts and parts[0] == assignment:
                rel = parts[1:]
            else:
                continue
            if info.is_dir() or not rel:
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > (1 << 20) and ratio > ZIP_MAX_RATIO:
                raise ZipProblem(f"compression ratio too high for {info.filename!r} (zip bomb?)")
            target = dest.joinpath(*rel)
            if dest.resolve() not in target.resolve().parents:
                raise ZipProblem(f"unsafe path in zip: {info.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > ZIP_MAX_BYTES:
                        raise ZipProblem(f"more than {ZIP_MAX_BYTES >> 20} MiB once unzipped (zip bomb?)")
                    out.write(chunk)
    return dest


def _failed(source_nb, status):
    """A result with every test of the assignment failed and ``status`` as the reason."""
    from . import trusted
    from .notebooks import read

    plan = trusted.build_plan(read(source_nb), None)
    return trusted._result(plan, status=status, tests=trusted._failed_tests(plan, f"not graded: {status}"))


def result_path(out, learner, assignment):
    return Path(out) / "results" / learner / f"{assignment}.json"


def _write_json(path, data):
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


def grade_job(job):
    """Worker: grade one learner x assignment and write its result file. Never raises."""
    learner, assignment, src, source_root, out, limits, mode = job
    source_nb = notebook_path(assignment, source_root)
    t0 = time.monotonic()
    try:
        from . import trusted

        with tempfile.TemporaryDirectory(prefix=f"tg-job-{os.getpid()}-") as tmp:
            folder = None
            if src is not None and Path(src).is_file():
                folder = extract_assignment(src, learner, assignment, Path(tmp) / assignment)
                if not any(folder.iterdir()):
                    folder = None
            elif src is not None and (Path(src) / assignment).is_dir():
                folder = Path(src) / assignment
            if folder is None:
                result = _failed(source_nb, "missing")
            else:
                result = trusted.grade(source_nb, folder / f"{assignment}.ipynb", files=folder,
                                       limits=limits, mode=mode)
    except ZipProblem as exc:
        result = _failed(source_nb, f"invalid zip ({exc})")
    except Exception as exc:  # noqa: BLE001 - a bad submission never stops the batch
        result = _failed(source_nb, f"grader error ({type(exc).__name__}: {str(exc)[:200]})")
        # _failed screens the status (trusted._result): the message may quote what the learner sent
    result.update(learner=learner, assignment=assignment, elapsed_s=round(time.monotonic() - t0, 3))
    _write_json(result_path(out, learner, assignment), result)
    return {k: result[k] for k in CSV_FIELDS} | {"elapsed_s": result["elapsed_s"]}


def _worker_init():
    """A worker's own computations (the test cells' references: NumPy, torch, TensorFlow) run on one
    thread, like its sandboxes: one worker per core then uses one core, and workers scale with cores."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.update(ONE_THREAD_ENV)  # read by torch and TensorFlow when a test cell first imports them
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # BLAS libraries already loaded (NumPy's OpenBLAS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop


def write_csv(out, rows):
    """OUT/grades.csv, written atomically; one row per learner x assignment."""
    path = Path(out) / "grades.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:g}" if k in ("score", "max_score") else row[k]) for k in CSV_FIELDS})
    tmp = path.with_name(f".grades.csv.tmp{os.getpid()}")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _log(progress, text):
    if progress:
        print(text, flush=True)


def grade_all(submissions, out, *, source=SOLUTIONS, workers=None, limits=None, mode=None, progress=True):
    """Grade every learner x assignment; returns the rows of grades.csv (see the module docstring)."""
    out = Path(out).resolve()
    source = Path(source).resolve()
    submissions = Path(submissions).resolve()
    if out == submissions or submissions in out.parents or out in submissions.parents:
        raise SystemExit("error: --out must not be inside the submissions folder (nor contain it)")
    ids = assignments(source)
    if not ids:
        raise SystemExit(f"error: no assignments (NN_topic folders) in {source}")
    learners = discover(submissions)
    jobs = [(learner, a) for learner in learners for a in ids]
    todo = [(learner, a) for learner, a in jobs if load_result(result_path(out, learner, a)) is None]
    workers = max(1, int(workers or os.cpu_count() or 1))
    limits = limits or Limits()
    _log(progress, f"grading {len(learners)} learner(s) x {len(ids)} assignment(s): {len(jobs)} job(s), "
                   f"{len(jobs) - len(todo)} already graded, {workers} worker(s)")
    out.mkdir(parents=True, exist_ok=True)
    swept = sweep_scratch()
    if swept:
        _log(progress, f"removed {len(swept)} scratch folder(s) left by a grader that was killed")
    payload = {(learner, a): (learner, a, str(learners[learner]), str(source), str(out), limits, mode)
               for learner, a in todo}
    crashes = {}
    done = len(jobs) - len(todo)
    pending = list(todo)
    ctx = multiprocessing.get_context("spawn")
    while pending:
        with ProcessPoolExecutor(min(workers, len(pending)), mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(grade_job, payload[key]): key for key in pending}
            pending = []
            try:
                remaining = set(futures)
                while remaining:
                    finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        key = futures[fut]
                        try:
                            row = fut.result()
                        except BrokenProcessPool:
                            crashes[key] = crashes.get(key, 0) + 1
                            if crashes[key] >= 2:
                                learner, a = key
                                result = _failed(notebook_path(a, source), "grader error (worker process crashed)")
                                result.update(learner=learner, assignment=a)
                                _write_json(result_path(out, learner, a), result)
                                row = {k: result[k] for k in CSV_FIELDS} | {"elapsed_s": 0}
                            else:
                                pending.append(key)
                                continue
                        done += 1
                        _log(progress, f"[{done}/{len(jobs)}] {row['learner']} {row['assignment']}: "
                                       f"{row['score']:g}/{row['max_score']:g} {row['status']} "
                                       f"({row.get('elapsed_s', 0):.1f} s)")
            except KeyboardInterrupt:
                for fut in futures:
                    fut.cancel()
                raise
    rows = []
    for learner, a in jobs:
        result = load_result(result_path(out, learner, a))
        if result is None:  # cannot happen unless the file was removed meanwhile
            result = _failed(notebook_path(a, source), "grader error (result lost)")
            result.update(learner=learner, assignment=a)
        feedback.write(result, out)
        rows.append({k: result[k] for k in CSV_FIELDS})
    csv_path = write_csv(out, rows)
    _log(progress, f"wrote {csv_path} and {out / 'feedback'}")
    return rows


def main(args):
    """CLI entry (see ``python -m autograder grade --help``)."""
    limits = Limits()
    overrides = {}
    if args.timeout:
        overrides["wall_seconds"] = float(args.timeout)
    if overrides:
        limits = Limits(**(asdict(limits) | overrides))
    try:
        rows = grade_all(args.submissions, args.out, source=args.source, workers=args.workers, limits=limits,
                         progress=not args.quiet)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to finish the remaining submissions", file=sys.stderr)
        return 130
    graded = sum(r["status"] == "graded" for r in rows)
    print(f"{len(rows)} row(s): {graded} graded, {len(rows) - graded} with another status")
    return 0


def add_arguments(parser):
    parser.add_argument("submissions", help="folder of <learner>/<assignment>/<assignment>.ipynb or <learner>.zip")
    parser.add_argument("--out", default="grades", help="output folder (grades.csv, feedback/, results/)")
    parser.add_argument("--workers", type=int, default=None, help="parallel submissions (default: one per core)")
    parser.add_argument("--source", default=str(SOLUTIONS), help="source assignments (default: solutions/)")
    parser.add_argument("--timeout", type=float, default=None, help="wall-clock seconds per submission")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
