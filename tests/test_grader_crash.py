"""A crash belongs to its own job: a grader worker that dies costs only the job it was running, and a
grader killed with SIGKILL takes every worker, sandbox and helper process along and writes nothing after."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

import worker_procs  # noqa: E402
from grader_fixture import ASSIGNMENT, MAX_SCORE, SOURCE, blank_nb, solution_nb, write_submission  # noqa: E402

from autograder.batch import WORKER_MEMORY, died_status  # noqa: E402
from autograder.grade import grade_all, result_path  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _results(out):
    return {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}


def test_died_status_names_the_signal_or_exit_code():
    """A worker's death is reported with its signal or its exit code."""
    assert died_status(-9) == "grader error (worker died: signal 9)"
    assert died_status(3) == "grader error (worker died: exit code 3)"


@pytest.mark.timeout(600)
def test_a_killed_worker_costs_only_its_own_job(tmp_path):
    """SIGKILL of the worker grading 'victim' while 'honest' is graded by another worker: honest keeps
    full marks, victim alone gets 'grader error (worker died: signal 9)' and no final result, and the
    next run grades victim again (full marks) without regrading honest."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    write_submission(subs, "honest", solution_nb())
    write_submission(subs, "victim", solution_nb())
    box = {}
    thread = threading.Thread(target=lambda: box.update(rows=grade_all(
        subs, out, source=SOURCE, workers=2, limits=LIMITS, progress=False)))
    thread.start()
    try:
        victim, = _wait_for(lambda: worker_procs.workers("victim"), 120, "the victim's worker")
        _wait_for(lambda: worker_procs.workers("honest"), 120, "the honest learner's worker")
        # each worker has its own process group and its own memory limit
        assert os.getpgid(victim) == victim
        assert worker_procs.limit(victim, "Max address space") == str(WORKER_MEMORY)
        os.kill(victim, signal.SIGKILL)
    finally:
        thread.join(300)
    rows = {r["learner"]: r for r in box["rows"]}
    assert rows["honest"]["status"] == "graded" and rows["honest"]["score"] == MAX_SCORE, rows
    assert rows["victim"]["status"] == "grader error (worker died: signal 9)", rows
    assert rows["victim"]["score"] == 0 and rows["victim"]["max_score"] == MAX_SCORE
    victim_result = json.loads(result_path(out, "victim", ASSIGNMENT).read_text())
    assert victim_result["final"] is False
    assert victim_result["elapsed_s"] > 0, victim_result["elapsed_s"]  # the time it ran until killed, not 0.0 s
    honest_mtime = result_path(out, "honest", ASSIGNMENT).stat().st_mtime_ns

    again = {r["learner"]: r for r in grade_all(subs, out, source=SOURCE, workers=2, limits=LIMITS,
                                                 progress=False)}
    assert again["victim"]["status"] == "graded" and again["victim"]["score"] == MAX_SCORE, again
    assert again["honest"]["score"] == MAX_SCORE
    assert result_path(out, "honest", ASSIGNMENT).stat().st_mtime_ns == honest_mtime, "honest was regraded"


@pytest.mark.timeout(600)
def test_sigkill_of_the_grader_leaves_no_process_and_no_later_result(tmp_path):
    """SIGKILL of the main grader process alone (not its group) mid-batch: within seconds no worker,
    sandbox or helper process it started is alive, and no result file appears or changes afterwards."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for i in range(4):
        write_submission(subs, f"learner{i}", solution_nb() if i % 2 == 0 else blank_nb())
    cmd = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--source", str(SOURCE),
           "--workers", "2", "--limits", json.dumps({"wall_seconds": 120, "cell_seconds": 30,
                                                     "call_seconds": 30, "cpu_seconds": 60})]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    seen = set()
    try:
        def sandboxes_running():
            below = worker_procs.descendants(proc.pid)
            seen.update(below)
            mine = worker_procs.workers(str(out))
            # two workers, and below them their sandboxes (processes that are not workers)
            return len(mine) == 2 and any(p not in mine for p in below) and below
        _wait_for(sandboxes_running, 120, "two workers with their sandboxes")
        seen.update(worker_procs.descendants(proc.pid))
        before = _results(out)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert seen, "the grader should have started processes"
    _wait_for(lambda: not any(worker_procs.alive(p) for p in seen), 15,
              f"the grader's processes to die: {[worker_procs.cmdline(p)[:4] for p in seen if worker_procs.alive(p)]}")
    assert worker_procs.workers(str(out)) == []
    time.sleep(3)  # a surviving worker would finish its job and write its result within this
    after = _results(out)
    assert after == before, "a result was written after the grader was killed"
    assert not (out / "grades.csv").exists()


@pytest.mark.timeout(600)
def test_ctrl_c_stops_the_workers_and_the_next_run_finishes(tmp_path):
    """SIGINT to the grader mid-job: it exits 130, its workers are killed and write nothing, and the same
    command run again grades every job once."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for i in range(3):
        write_submission(subs, f"learner{i}", solution_nb())
    cmd = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--source", str(SOURCE),
           "--workers", "2", "--limits", json.dumps({"wall_seconds": 120, "cell_seconds": 30,
                                                     "call_seconds": 30, "cpu_seconds": 60})]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = _wait_for(lambda: len(worker_procs.workers(str(out))) == 2 and worker_procs.workers(str(out)),
                            120, "two workers")
        before = _results(out)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "run the same command again" in err, err
    _wait_for(lambda: not any(worker_procs.alive(p) for p in running), 15, "the workers to die")
    time.sleep(3)
    assert _results(out) == before, "a worker wrote a result after Ctrl-C"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(before)} already graded" in done.stdout
    assert sorted(_results(out)) == sorted(result_path(out, f"learner{i}", ASSIGNMENT) for i in range(3))
