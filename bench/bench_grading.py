"""Grading cost: CPU-seconds per full-course submission, and parallel efficiency across cores.

* ``grade_cpu_per_submission``: ``python -m autograder grade`` on one learner who submits the
  solution notebook of every assignment present in solutions/; CPU-seconds of the grader and all
  its children (workers, sandboxes), from ``RUSAGE_CHILDREN``. Budget: 30 CPU-s.
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


def _grade(source, subs, out, workers, scheduler=None):
    """Run the grader CLI (on a Dask cluster with ``scheduler``); returns (wall seconds, CPU seconds of it
    and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
                           "--source", str(source), "--workers", str(workers), "--quiet"]
                          + (["--scheduler", scheduler] if scheduler else []),
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"grader failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cpu_of(cmd, cwd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
        label = "fixture" if source == FIXTURE else f"{len(assignments(source))} assignments"
        rows.append({"name": f"grade_cpu_per_submission ({label})", "value": round(cpu, 2), "unit": "CPU-s",
                     "peer": None, "ratio": round(cpu / 30.0, 3), "budget": "<= 30 CPU-s", "ok": cpu <= 30.0})
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
