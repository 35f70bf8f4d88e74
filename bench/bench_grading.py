"""Grading cost: CPU-seconds per full-course submission, and parallel efficiency across cores.

* ``grade_cpu_per_submission``: ``python -m autograder grade`` (one worker) on one learner who submits
  the solution notebook of every assignment present in solutions/; CPU-seconds of the grader and
  every process it started (zygote, job processes, sandboxes and their setup tools), from
  ``RUSAGE_CHILDREN`` and, where the bench may make one (root), from a ``cpuacct`` cgroup of its own,
  which also counts processes never waited for; the larger of the two is the value. The row says
  how the time splits (sandboxes, the jobs' grader processes, the rest). Budget: 30 CPU-s.
* ``grade_cpu_vs_nbgrader``: the same submission graded by ``nbgrader autograde`` (our config, a
  temporary course: ``generate_assignment`` first, untimed), CPU-seconds of it and its kernels, from
  this same process's ``RUSAGE_CHILDREN``; the row is our grader's CPU-seconds over nbgrader's, with
  every protection on (sandbox, rebuilt notebook, tests in the trusted process). Budget: 1.0x.
  nbgrader runs every cell (``slow`` ones too, which our grader leaves out: that is the point of
  the tag); in quick mode the fixture's ``slow`` cell (a 10-minute sleep) is left out of nbgrader's
  copy too, so the smoke test stays short and the ratio there is only a check of the machinery.
* ``grade_parallel_efficiency``: K submissions graded with 1 worker (T1) and with N = cores workers
  (TN); efficiency = T1 / (N * TN). Budget: 80 %.
* ``grade_dask_efficiency``: the same K submissions through the Dask backend (``--scheduler``): a
  scheduler and N one-thread workers on 127.0.0.1, started before the timing; efficiency =
  T1 / (N * T_dask), its ratio to the local pool's efficiency (TN / T_dask). Budget: 0.9x the local
  pool. Skipped without the cluster extra.

``quick=True`` uses the grader tests' small fixture assignment and tiny counts (a smoke test).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "solutions"


CPUACCT = Path("/sys/fs/cgroup/cpuacct")
COUNTED = {"rusage": 0.0, "cgroup": None}  # the last _run: RUSAGE_CHILDREN, and the cgroup's count where there is one


class _Cgroup:
    """A cgroup v1 ``cpuacct`` group of its own for one command, where this user may make one (root): it
    counts the CPU time of every process in it, reaped or not (a sandbox in its own PID namespace, an
    orphan), a check on ``RUSAGE_CHILDREN``, which counts only processes that were waited for."""

    def __init__(self):
        self.path = None
        try:
            path = CPUACCT / f"tg-bench-{os.getpid()}-{time.monotonic_ns()}"
            path.mkdir()
            self.path = path
        except OSError:
            pass

    def join(self):  # in the child, before exec
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self):
        return None if self.path is None else int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self):
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:  # processes still leaving it
                    time.sleep(0.1)


def _run(cmd, cwd, env=None):
    """Run ``cmd``; returns (wall seconds, CPU seconds of it and every process it started). Both counts are
    kept in COUNTED; the larger one is returned, so that a process RUSAGE_CHILDREN misses still counts."""
    group = _Cgroup()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              preexec_fn=group.join if group.path is not None else None)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        time.sleep(0.2)
        in_group = group.seconds()
    finally:
        group.remove()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    COUNTED.update(rusage=cpu, cgroup=in_group)
    return wall, max(cpu, in_group or 0.0)


def _grade(source, subs, out, workers, scheduler=None):
    """Run the grader CLI (on a Dask cluster with ``scheduler``); returns (wall seconds, CPU seconds of it
    and its children)."""
    return _run([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--source", str(source),
                 "--workers", str(workers), "--quiet"] + (["--scheduler", scheduler] if scheduler else []), ROOT)


def _cpu_of(cmd, cwd, env):
    return _run(cmd, cwd, env)[1]


def _split(out):
    """CPU-seconds of the jobs' sandboxes and of their own grader processes, summed over the result files."""
    sandbox = trusted = 0.0
    for path in Path(out).glob("results/*/*.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        sandbox += float(result.get("sandbox_cpu_s") or 0)
        trusted += float(result.get("grader_cpu_s") or 0)
    return sandbox, trusted


def _counted():
    rusage, group = COUNTED["rusage"], COUNTED["cgroup"]
    return (f"RUSAGE_CHILDREN {rusage:.1f}" + (f", cgroup cpuacct {group:.1f}" if group is not None
                                               else ", no cgroup to check it against"))


def _without_slow_cells(path):
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if "slow" not in c.get("metadata", {}).get("tags", [])]
    Path(path).write_text(json.dumps(nb, indent=1), encoding="utf-8")


def _nbgrader_autograde(source, root, quick):
    """CPU-seconds of ``nbgrader autograde`` for one learner's solution of every assignment of ``source``."""
    from autograder.paths import assignments, nbgrader_env

    root = Path(root)
    env = nbgrader_env(TG_COURSE_ROOT=root, TG_RELEASE_DIR=root / "release", TG_GRADEBOOK=root / "gradebook.db")
    cpu = 0.0
    for a in assignments(source):
        shutil.copytree(Path(source) / a, root / "solutions" / a)
        if quick:
            _without_slow_cells(root / "solutions" / a / f"{a}.ipynb")
        shutil.copytree(root / "solutions" / a, root / "submitted" / "learner000" / a)
        _cpu_of(["nbgrader", "generate_assignment", a, "--force"], root, env)  # setup, not grading
        cpu += _cpu_of(["nbgrader", "autograde", a, "--force"], root, env)
    return cpu


def _submissions(source, root, learners):
    from autograder.paths import assignments

    subs = Path(root)
    for i in range(learners):
        for a in assignments(source):
            shutil.copytree(Path(source) / a, subs / f"learner{i:03d}" / a)
    return subs


def _dask_row(source, many, out, k, cores, t1, tn):
    """grade_dask_efficiency: the K submissions on a loopback Dask cluster of ``cores`` workers."""
    import importlib.util

    from bench.common import error_row

    name = f"grade_dask_efficiency ({k} submissions, {cores} Dask workers)"
    if importlib.util.find_spec("distributed") is None:
        return error_row(name, "needs the cluster extra (dask, distributed)", skipped=True)
    from bench.local_dask import loopback_cluster

    with loopback_cluster(cores) as address:
        td, _ = _grade(source, many, out, cores, scheduler=address)
    eff = t1 / (cores * td)
    return {"name": name, "value": round(100 * eff, 1), "unit": "%",
            "peer": f"local pool of {cores} workers: {100 * t1 / (cores * tn):.1f} %", "ratio": round(tn / td, 3),
            "budget": ">= 0.9x local pool", "ok": tn / td >= 0.9}


def run(quick: bool = False) -> list[dict]:
    """Bench rows (see bench/__main__.py for the row format)."""
    from autograder.paths import SOLUTIONS, assignments

    source = FIXTURE if quick or not SOLUTIONS.is_dir() or not assignments(SOLUTIONS) else SOLUTIONS
    cores = os.cpu_count() or 1
    k = 2 * cores if quick else 8 * cores  # a class-sized batch: per-worker start-up costs weigh little
    rows = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-grade-") as tmp:
        tmp = Path(tmp)
        one = _submissions(source, tmp / "one", 1)
        _, cpu = _grade(source, one, tmp / "out-one", 1)
        counted = _counted()
        sandbox, trusted = _split(tmp / "out-one")
        label = "fixture" if source == FIXTURE else f"{len(assignments(source))} assignments"
        rows.append({"name": f"grade_cpu_per_submission ({label})", "value": round(cpu, 2), "unit": "CPU-s",
                     "peer": f"counted by {counted}; sandboxes {sandbox:.1f}, the jobs' grader processes "
                             f"{trusted:.1f}, the rest (batch, zygotes' imports) {cpu - sandbox - trusted:.1f}",
                     "ratio": round(cpu / 30.0, 3), "budget": "<= 30 CPU-s", "ok": cpu <= 30.0})
        peer = _nbgrader_autograde(source, tmp / "nbgrader", quick)
        rows.append({"name": f"grade_cpu_vs_nbgrader ({label})", "value": round(cpu / peer, 3), "unit": "x",
                     "peer": f"nbgrader autograde {peer:.1f} CPU-s, ours {cpu:.1f} CPU-s"
                             + (" (slow cells left out of both)" if quick else ""),
                     "ratio": round(cpu / peer, 3), "budget": "<= 1.0x", "ok": cpu <= peer})
        many = _submissions(source, tmp / "many", k)
        t1, _ = _grade(source, many, tmp / "out-1", 1)
        tn, _ = _grade(source, many, tmp / "out-n", cores)
        eff = t1 / (cores * tn)
        rows.append({"name": f"grade_parallel_efficiency ({k} submissions, {cores} workers)",
                     "value": round(100 * eff, 1), "unit": "%", "peer": "1 worker", "ratio": round(t1 / tn, 3),
                     "budget": ">= 80 %", "ok": eff >= 0.8})
        rows.append(_dask_row(source, many, tmp / "out-dask", k, cores, t1, tn))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
