"""The batch: every learner x assignment of a class, one ``grade-one`` subprocess per job.

``grade_all`` finds the learners (``staging.discover``), decides which jobs need grading, runs them
``workers`` at a time, and rebuilds ``OUT/grades.csv`` and the feedback from the result files.

* **Which jobs run.** A job is graded unless its result exists, ran to its end (``final``), and
  records the same hash of the submitted files and of the source notebook as now: so a re-run
  grades the jobs an interrupted run had not finished, regrades a submission that changed (or whose
  solutions/ notebook changed), fills a ``missing`` row once the submission appears, and regrades
  nothing else. ``regrade=True`` forces every job in scope (or those named by ``only``:
  ``LEARNER`` or ``LEARNER/ASSIGNMENT``); ``assignments`` limits the run, and grades.csv, to some
  assignments. A job whose submission is missing or refused (a link, a bad archive, an unsafe
  learner name) is recorded here without a subprocess.
* **One process per job.** Each job runs in its own ``python -m autograder grade-one`` process (its
  own session and process group, ``RLIMIT_AS`` of ``worker_memory``, a parent-death signal of
  SIGKILL set as it starts), under a thread pool of ``workers`` threads. A worker that dies (out of
  memory, killed) costs only its own job: that job's row says ``grader error (worker died: signal
  N)`` (or ``exit code N``) and its result is not ``final``, so the next run grades it again. When
  the batch is interrupted its workers are killed and write nothing; when the grader is killed
  with SIGKILL, its workers (and their sandboxes) die with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from . import feedback
from .export import write_csv
from .job import CSV_FIELDS, failed_result, load_result, record, result_path
from .paths import ROOT, SOLUTIONS, assignments, notebook_path
from .sandbox import ONE_THREAD_ENV, Limits, sweep_scratch
from .staging import discover, source_digest, stage

WORKER_MEMORY = 8 << 30  # RLIMIT_AS of a grader worker (its test cells import NumPy, torch, TensorFlow)
PR_SET_PDEATHSIG = 1


def _log(progress, text):
    if progress:
        print(text, flush=True)


def _wanted(only, learner, assignment):
    """Whether a ``--only`` list (None: everything) names this job."""
    return only is None or any(o in (learner, f"{learner}/{assignment}") for o in only)


def worker_env():
    """The environment of a grader worker: its own computations run on one thread, like its
    sandboxes, so that one worker per core uses one core and workers scale with cores."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.update(ONE_THREAD_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def worker_setup(parent_pid=None, memory_bytes=None):
    """Called first thing in a ``grade-one`` process: die with the grader, cap memory, one thread."""
    import resource

    if parent_pid is not None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the grader died before the death signal was armed
            os._exit(3)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides when to stop
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # BLAS libraries already loaded (NumPy's OpenBLAS)


def died_status(returncode):
    if returncode < 0:
        return f"grader error (worker died: signal {-returncode})"
    return f"grader error (worker died: exit code {returncode})"


class _Runner:
    """Starts one worker per job and kills every live one on request."""

    def __init__(self, submissions, out, source, limits, mode, worker_memory, preload=None, kept=None):
        # setpriv and prlimit (util-linux, which the sandbox needs too) arm the death signal and the
        # memory limit before Python starts; the worker sets both again itself (worker_setup).
        wrap = []
        if shutil.which("setpriv"):
            wrap += ["setpriv", "--pdeathsig", "KILL", "--"]
        if shutil.which("prlimit"):
            wrap += ["prlimit", f"--as={worker_memory}", "--"]
        self.wrap, self.worker_memory = wrap, worker_memory
        self.args = ["grade-one", str(submissions)]
        self.base = [*wrap, sys.executable, "-m", "autograder", *self.args]
        self.tail = ["--out", str(out), "--source", str(source), "--limits", json.dumps(asdict(limits)),
                     "--worker-memory", str(worker_memory), "--quiet"]
        if mode:
            self.tail += ["--mode", mode]
        self.env = worker_env()
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = False
        # preload: the modules of a zygote per worker thread (autograder.zygote); None: one fresh process per job
        self.preload = None if os.environ.get("TG_GRADER_ZYGOTE") == "0" else preload
        # kept: a threading.local that keeps each thread's zygote after this runner (a cluster worker's tasks)
        self.local = kept if kept is not None else threading.local()
        self.kept = kept is not None
        self.zygotes = set()
        self.zygote_refused = None

    def _zygote(self):
        """This thread's zygote (started on its first job), or None when zygotes are off or refused."""
        from .zygote import Zygote, ZygoteDied

        if self.preload is None or self.zygote_refused:
            return None
        z = getattr(self.local, "zygote", None)
        key = (tuple(self.wrap), self.worker_memory, tuple(self.preload), tuple(sorted(self.env.items())))
        if z is not None and (getattr(self.local, "key", None) != key or z.proc.poll() is not None):
            self._drop_zygote(z)
            z = None
        if z is None:
            try:
                z = Zygote([*self.wrap, sys.executable], self.env, ROOT, self.preload, os.getpid(),
                           self.worker_memory)
            except (OSError, ZygoteDied) as exc:
                self.zygote_refused = str(exc)
                return None
            with self.lock:
                if self.stopping:
                    z.kill()
                    z.close()
                    return None
                if not self.kept:
                    self.zygotes.add(z)
            self.local.zygote, self.local.key = z, key
        return z

    def _drop_zygote(self, z):
        with self.lock:
            self.zygotes.discard(z)
        self.local.zygote = None
        z.kill()
        z.close()

    def run(self, learner, assignment):
        """Run one job to its end; returns (returncode, stderr tail, elapsed), or None when stopped."""
        from .zygote import ZygoteDied

        z = self._zygote()
        if z is not None:
            t0 = time.monotonic()
            try:
                returncode, err = z.run([*self.args, learner, assignment, *self.tail])
            except ZygoteDied as exc:  # the zygote went (killed): this job is charged, the next gets a new one
                self._drop_zygote(z)
                returncode, err = -signal.SIGKILL, str(exc)
            if self.stopping:
                return None
            return returncode, err[-2000:], time.monotonic() - t0
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(self.base + [learner, assignment] + self.tail
                                    + ["--parent-pid", str(os.getpid())], cwd=ROOT, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
            self.procs.add(proc)
        t0 = time.monotonic()
        try:
            _, err = proc.communicate()
        finally:
            with self.lock:
                self.procs.discard(proc)
        if self.stopping:
            return None
        return proc.returncode, err.decode("utf-8", "replace")[-2000:], time.monotonic() - t0

    def stop(self):
        with self.lock:
            self.stopping = True
            for proc in self.procs:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            for z in self.zygotes:
                z.kill()

    def close(self):
        """Let the zygotes exit and reap them (their jobs' CPU time then counts in RUSAGE_CHILDREN)."""
        with self.lock:
            zygotes, self.zygotes = list(self.zygotes), set()
        for z in zygotes:
            z.close()


def _grade_on_cluster(scheduler, learners, todo, source, limits, worker_memory, allow_weak, progress):
    """Yields (learner, assignment, result) for each job of ``todo`` graded on a Dask cluster; the
    result carries ``submission_hash`` (the client's) and ``final``."""
    from .dask_backend import grade_on_cluster
    from .sandbox import scratch_dir

    tmp = scratch_dir("job")
    try:
        jobs, digests = [], {}
        for learner, a in todo:
            staged = stage(learners[learner], a, tmp / learner / a)
            digests[(learner, a)] = staged.digest
            jobs.append((learner, a, staged.folder))
        for learner, a, reply in grade_on_cluster(scheduler, jobs, source, limits, worker_memory,
                                                  allow_weak=allow_weak, log=lambda t: _log(progress, t)):
            result = reply.get("result")
            if isinstance(result, dict) and result.get("final") is True and "error" not in reply:
                result = {k: v for k, v in result.items() if k not in ("learner", "assignment")}
                result.update(submission_hash=digests[(learner, a)], final=True,
                              worker=f"pid {reply.get('pid')}, {reply.get('mode')}")
            else:
                status = (reply.get("error") or reply.get("refused")
                          or (died_status(reply["returncode"]) if reply.get("returncode") else
                              "grader error (worker wrote no result)"))
                result = failed_result(notebook_path(a, source), status)
                result.update(submission_hash="unfinished", final=False,
                              worker_stderr_tail=str(reply.get("stderr_tail", ""))[-2000:])
                if isinstance(reply.get("elapsed_s"), (int, float)):
                    result["elapsed_s"] = round(float(reply["elapsed_s"]), 3)  # until the worker died
            yield learner, a, result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_paths(submissions, out, source, assignment=None):
    """(out, source, submissions) resolved, or SystemExit with a message for an instructor's slip: a
    missing folder, OUT inside the submissions (or holding them), a source without assignments, or an
    assignment the source does not have."""
    out, source, submissions = Path(out).resolve(), Path(source).resolve(), Path(submissions).resolve()
    if not submissions.is_dir():
        raise SystemExit(f"error: submissions folder {submissions} does not exist")
    if out == submissions or submissions in out.parents or out in submissions.parents:
        raise SystemExit("error: --out must not be inside the submissions folder (nor contain it)")
    if not source.is_dir():
        raise SystemExit(f"error: source folder {source} does not exist (--source: the course's solutions/)")
    ids = assignments(source)
    if not ids:
        raise SystemExit(f"error: no assignments (NN_topic folders) in {source}")
    if assignment is not None and assignment not in ids:
        raise SystemExit(f"error: no assignment {assignment} in {source} (there are: {', '.join(ids)})")
    return out, source, submissions


def grade_all(submissions, out, *, source=SOLUTIONS, workers=None, limits=None, mode=None, progress=True,
              regrade=False, only=None, assignments_only=None, worker_memory=None, scheduler=None,
              allow_weak_sandbox=False):
    """Grade every learner x assignment; returns the rows of grades.csv (see the module docstring).
    With ``scheduler`` (a Dask scheduler's address) the jobs run on that cluster (``dask_backend``)."""
    out, source, submissions = check_paths(submissions, out, source)
    ids = assignments(source)
    if assignments_only:
        unknown = sorted(set(assignments_only) - set(ids))
        if unknown:
            raise SystemExit(f"error: no assignment {', '.join(unknown)} in {source} (there are: {', '.join(ids)})")
        ids = [a for a in ids if a in set(assignments_only)]
    limits = limits or Limits()
    worker_memory = int(worker_memory or WORKER_MEMORY)
    if worker_memory < limits.memory_bytes:
        raise SystemExit("error: the worker memory limit must be at least the sandbox's memory limit")
    found = discover(submissions)
    learners = found.learners
    if only is not None:
        unknown = sorted({o.split("/", 1)[0] for o in only} - set(learners))
        if unknown:
            raise SystemExit(f"error: --only names no learner of {submissions}: {', '.join(unknown)}")
    for name, why in found.ignored:
        _log(progress, f"ignored {ascii(name)[1:-1]}: {why}")
    jobs = [(learner, a) for learner in learners for a in ids]
    source_hashes = {a: source_digest(notebook_path(a, source)) for a in ids}
    out.mkdir(parents=True, exist_ok=True)
    swept = sweep_scratch()
    if swept:
        _log(progress, f"removed {len(swept)} scratch folder(s) left by a grader that was killed")

    todo, recorded, fresh = [], [], 0
    for learner, a in jobs:
        staged = stage(learners[learner], a)
        old = load_result(result_path(out, learner, a))
        current = (old is not None and old.get("final") is True and old.get("submission_hash") == staged.digest
                   and old.get("source_hash") == source_hashes[a])
        if current and not (regrade and _wanted(only, learner, a)):
            fresh += 1
        elif staged.status is not None:
            result = failed_result(notebook_path(a, source), staged.status)
            recorded.append(record(out, learner, a, result, submission_hash=staged.digest,
                                   source_hash=source_hashes[a]))
        else:
            todo.append((learner, a))
    workers = max(1, int(workers or os.cpu_count() or 1))
    _log(progress, f"grading {len(learners)} learner(s) x {len(ids)} assignment(s): {len(jobs)} job(s), "
                   f"{fresh} already graded, {len(recorded)} recorded without grading (missing or refused), "
                   f"{len(todo)} to grade, "
                   + (f"on the Dask cluster {scheduler}" if scheduler else f"{workers} worker(s)"))
    done = fresh
    for row in recorded:
        done += 1
        _log(progress, f"[{done}/{len(jobs)}] {row['learner']} {row['assignment']}: {row['status']}")
    if todo and scheduler:
        for learner, a, result in _grade_on_cluster(scheduler, learners, todo, source, limits, worker_memory,
                                                    allow_weak_sandbox, progress):
            final = result.get("final") is True
            result = {k: v for k, v in result.items() if k != "final"}
            record(out, learner, a, result, submission_hash=result.pop("submission_hash"),
                   source_hash=source_hashes[a], final=final)
            done += 1
            _log(progress, f"[{done}/{len(jobs)}] {learner} {a}: {result['score']:g}/{result['max_score']:g} "
                           f"{result['status']} ({result.get('elapsed_s', 0):.1f} s, {result.get('worker', '?')})")
        todo = []
    if todo:
        if mode is None:
            from .sandbox import detect_mode

            mode = detect_mode()  # probed once here rather than in every worker
        from .zygote import preloads

        preload = preloads(notebook_path(a, source) for a in sorted({a for _, a in todo}))
        runner = _Runner(submissions, out, source, limits, mode, worker_memory, preload=preload)
        pool = ThreadPoolExecutor(min(workers, len(todo)), thread_name_prefix="tg-worker")
        try:
            futures = {pool.submit(runner.run, learner, a): (learner, a) for learner, a in todo}
            for fut in as_completed(futures):
                learner, a = futures[fut]
                outcome = fut.result()
                if outcome is None:
                    continue
                returncode, err, elapsed = outcome
                result = load_result(result_path(out, learner, a)) if returncode == 0 else None
                if result is None or result.get("final") is not True:
                    status = died_status(returncode) if returncode != 0 else "grader error (worker wrote no result)"
                    result = failed_result(notebook_path(a, source), status)
                    result["worker_stderr_tail"] = err
                    result["elapsed_s"] = round(elapsed, 3)  # the time it ran until it died
                    record(out, learner, a, result, submission_hash="unfinished", source_hash=source_hashes[a],
                           final=False)
                done += 1
                _log(progress, f"[{done}/{len(jobs)}] {learner} {a}: {result['score']:g}/{result['max_score']:g} "
                               f"{result['status']} ({result.get('elapsed_s', 0):.1f} s)")
        except BaseException:
            runner.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            runner.close()
            raise
        pool.shutdown(wait=True)
        runner.close()
    rows = []
    for learner, a in jobs:
        result = load_result(result_path(out, learner, a))
        if result is None:  # cannot happen unless the file was removed meanwhile
            result = failed_result(notebook_path(a, source), "grader error (result lost)")
            result.update(learner=learner, assignment=a)
        feedback.write(result, out)
        rows.append({k: result[k] for k in CSV_FIELDS})
    csv_path = write_csv(out, rows)
    _log(progress, f"wrote {csv_path} and {out / 'feedback'}")
    return rows
