"""The grader's zygote (autograder/zygote.py): a fork server per worker keeps every protection of one
fresh process per job: no job sees another's module-level state, a crash is charged to its own job
only, a grader killed with SIGKILL leaves no process, CPU time is counted, and a zygote that could not
fork safely (a thread left running by an import) refuses, so the batch starts one process per job."""

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

import worker_procs  # noqa: E402

from autograder.batch import _Runner, worker_env  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402
from autograder.zygote import TORCH, Zygote, ZygoteDied, preloads  # noqa: E402

MEMORY = 6 << 30


def _env():
    env = worker_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    return env


def _zygote(preload=("numpy", "autograder.sandbox")):
    return Zygote([sys.executable], _env(), ROOT, preload, os.getpid(), MEMORY)


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(120)
def test_no_job_sees_the_module_state_another_job_left(tmp_path):
    """A job changes a preloaded module, sys.modules, the environment and a global of the grader's own
    code; the next job of the same zygote (and a third, after a crash) sees none of it, in a process of
    its own."""
    z = _zygote()
    try:
        assert z.run([str(tmp_path / "sees0")], entry="zygote_jobs:sees_state") == (0, "")
        assert z.run([str(tmp_path / "left")], entry="zygote_jobs:leave_state") == (0, "")
        status, err = z.run([str(tmp_path / "sees1")], entry="zygote_jobs:sees_state")
        assert (status, (tmp_path / "sees1").read_text()) == (0, ""), err
        assert int((tmp_path / "left").read_text()) not in (os.getpid(), z.proc.pid)
        assert z.run([str(tmp_path / "x")], entry="zygote_jobs:crash")[0] == -signal.SIGKILL
        assert z.run([str(tmp_path / "sees2")], entry="zygote_jobs:sees_state")[0] == 0
    finally:
        z.close()
    assert z.proc.returncode == 0


@pytest.mark.timeout(120)
def test_a_crash_in_one_child_is_charged_to_that_job_only(tmp_path):
    """A child killed by SIGKILL reports signal 9 and its stderr for its own job; the zygote goes on
    and the next job runs in it normally; an exit code and an uncaught exception are reported as a
    process's would be."""
    z = _zygote()
    try:
        zygote_pid = z.proc.pid
        status, err = z.run([str(tmp_path / "x")], entry="zygote_jobs:crash")
        assert status == -signal.SIGKILL and "about to die" in err
        assert z.run(["7"], entry="zygote_jobs:exit_code") == (7, "")
        status, err = z.run(["not a number"], entry="zygote_jobs:exit_code")
        assert status == 1 and "ValueError" in err
        assert z.run([str(tmp_path / "ok")], entry="zygote_jobs:sees_state") == (0, "")
        assert z.proc.pid == zygote_pid and z.proc.poll() is None
    finally:
        z.close()


@pytest.mark.timeout(120)
def test_a_job_has_its_own_session_limits_title_and_counted_cpu(tmp_path):
    """A job runs in its own session, under the worker's memory limit, shows a command line of its
    own (so ps and the crash tests see a grade-one process), and its CPU time reaches the grader's
    RUSAGE_CHILDREN once the zygote is reaped."""
    z = _zygote()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        assert z.run([str(tmp_path / "t"), "grade-one", "someone"], entry="zygote_jobs:title") == (0, "")
        args = [a for a in (tmp_path / "t").read_bytes().split(b"\0") if a]
        assert b"grade-one" in args and b"someone" in args, args
        assert worker_procs.limit(z.proc.pid, "Max address space") == str(MEMORY)
        burn = textwrap.dedent("""
            import time
            t = time.process_time()
            while time.process_time() - t < 1.0:
                pass
        """)
        script = tmp_path / "burn.py"
        script.write_text(burn)
        assert z.run([str(script)], entry="runpy:run_path")[0] == 0
    finally:
        z.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) >= 1.0


@pytest.mark.timeout(120)
def test_sigkill_of_the_grader_leaves_no_zygote_job_or_grandchild(tmp_path):
    """A grader process with a zygote whose job started a grandchild: SIGKILL of the grader alone (not
    its group) takes the zygote, the job and the grandchild along within seconds."""
    pids = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]
        from autograder.batch import worker_env
        from autograder.zygote import Zygote
        env = worker_env()
        env["PYTHONPATH"] = os.pathsep.join([{str(ROOT)!r}, {str(HERE)!r}])
        z = Zygote([sys.executable], env, {str(ROOT)!r}, ["numpy"], os.getpid(), 0)
        print(z.proc.pid, flush=True)
        z.run([{str(pids)!r}], entry="zygote_jobs:linger")
    """)
    grader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        zygote = int(grader.stdout.readline())
        _wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, 60, "the job and its grandchild")
        job, grandchild = map(int, pids.read_text().split())
        assert all(worker_procs.alive(p) for p in (zygote, job, grandchild))
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        _wait_for(lambda: not any(worker_procs.alive(p) for p in (zygote, job, grandchild)), 15,
                  "the zygote, its job and the job's child to die")
    finally:
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_a_zygote_with_a_thread_left_running_refuses_and_the_batch_starts_processes(tmp_path):
    """fork() keeps one thread: a preload that leaves a thread running makes the zygote refuse, and
    the batch's runner then starts one fresh process per job (it reports no zygote)."""
    with pytest.raises(ZygoteDied, match="threads after the imports"):
        _zygote(preload=("numpy", "zygote_threaded"))
    with pytest.raises(ZygoteDied, match="import failed"):
        _zygote(preload=("no_such_module_here",))
    runner = _Runner(tmp_path, tmp_path / "out", tmp_path, Limits(), "rlimits", MEMORY,
                     preload=["zygote_threaded"])
    runner.env = _env()
    try:
        assert runner._zygote() is None and "threads" in runner.zygote_refused
    finally:
        runner.close()


def test_preload_torch_only_where_an_assignment_uses_it_and_never_tensorflow(tmp_path):
    numpy_only, with_torch, with_tf = (tmp_path / n for n in ("a.ipynb", "b.ipynb", "c.ipynb"))
    numpy_only.write_text('{"cells": [{"source": "import numpy as np"}]}')
    with_torch.write_text('{"cells": [{"source": "import torch"}]}')
    with_tf.write_text('{"cells": [{"source": "import tensorflow as tf"}]}')
    assert not set(TORCH) & set(preloads([numpy_only, with_tf]))
    assert set(TORCH) <= set(preloads([numpy_only, with_torch]))
    assert not any("tensorflow" in m or "keras" in m for m in preloads([with_torch, with_tf]))


@pytest.mark.timeout(180)
def test_torch_is_preloaded_in_the_zygote_and_seen_by_its_jobs(tmp_path):
    """The point of it: a job forked from a zygote that preloaded torch starts with torch imported."""
    z = _zygote(preload=["numpy", *TORCH])
    try:
        assert z.run([str(tmp_path / "p")], entry="zygote_jobs:preloaded") == (0, "")
        assert (tmp_path / "p").read_text() == "torch"
    finally:
        z.close()
