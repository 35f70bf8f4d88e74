"""The Dask backend on one machine: a scheduler and two workers as separate processes on loopback ports
grade a small class; one worker is killed while it grades, and grades.csv still equals the local run's.
Workers that grade against other solutions/ or in a weaker sandbox are refused."""

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, SOURCE, blank_nb, solution_nb, with_cell, write_submission  # noqa: E402

from autograder import dask_backend  # noqa: E402
from autograder.batch import grade_all  # noqa: E402
from autograder.job import load_result, result_path  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

pytest.importorskip("distributed")
from distributed import Client  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)
DASK = str(ROOT / ".venv" / "bin" / "dask")
LEARNERS = ("alice", "bob", "cara", "dev")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    env["JUPYTER_CONFIG_PATH"] = str(ROOT / "autograder")
    return env


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two workers (separate processes, 127.0.0.1 only), all killed at the end."""
    procs = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name, *args):
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([DASK, *args], cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        procs.append(proc)
        return proc

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        workers = {name: start(name, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                               "--no-dashboard", "--name", name) for name in ("w1", "w2")}
        client = Client(address, timeout=60, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=60)
            yield {"address": address, "workers": workers, "client": client, "logs": logs}
        finally:
            client.close()
    finally:
        for proc in reversed(procs):
            _kill(proc)


@pytest.fixture
def klass(tmp_path):
    subs = tmp_path / "submitted"
    half = with_cell("clip_norm", "def clip_norm(g, max_norm):\n    return g\n")
    for i, learner in enumerate(LEARNERS):
        write_submission(subs, learner, [solution_nb(), blank_nb(), half][i % 3])
    (subs / "gus" / "elsewhere").mkdir(parents=True)  # missing: recorded without a task
    grade_all(subs, tmp_path / "local", source=SOURCE, workers=2, limits=LIMITS, progress=False)
    return subs, (tmp_path / "local" / "grades.csv").read_text()


def _rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def _worker_processing(client, name):
    info = client.scheduler_info()["workers"]
    addr = next((a for a, w in info.items() if w.get("name") == name), None)
    return bool(addr and client.processing().get(addr))


def _children_of(pid, seen=None):
    """Live grade-one processes of that worker: started with ``--parent-pid PID`` by it, or forked from its
    zygote (``--parent-pid`` of the zygote, whose own parent is the worker). ``seen`` collects them."""
    zygotes = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if b"autograder.zygote" in args and parent == pid:
                zygotes.add(int(entry))
    needles = [f"--parent-pid\0{p}\0".encode() for p in (pid, *zygotes)]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if any(n in text for n in needles):
                found.append(int(entry))
    if seen is not None:
        seen.update(found, zygotes)
    return found


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_batch_costs_nothing(cluster, klass, tmp_path):
    subs, local_csv = klass
    local = _rows(local_csv)
    assert {r["status"] for r in local} == {"graded", "missing"}
    assert {r["score"] for r in local} == {"8", "0", "6"}
    out = tmp_path / "dask"
    cmd = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--source", str(SOURCE),
           "--scheduler", cluster["address"], "--timeout", "120"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    victim = cluster["workers"]["w1"]
    killed_busy, below_victim = False, set()
    t0 = t_kill = time.monotonic()
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed_busy:
            if _worker_processing(cluster["client"], "w1") and _children_of(victim.pid, below_victim):
                os.killpg(victim.pid, signal.SIGKILL)  # while its grade-one process is grading
                victim.wait(timeout=10)
                killed_busy = True
                t_kill = time.monotonic()
            else:
                time.sleep(0.05)
        assert killed_busy, "worker w1 never graded a job"
        out_text, _ = proc.communicate(timeout=180)
    finally:
        _kill(proc)
    lines = out_text.decode().splitlines()
    print("\n".join(lines), f"\nkilled at {t_kill - t0:.1f} s, done at {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, "\n".join(lines[-30:])
    assert any("sandbox mode(s) root" in ln for ln in lines)
    time.sleep(0.5)
    assert _children_of(victim.pid) == []  # its grade-one process (and its zygote) died with it
    alive = [p for p in below_victim if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"]
    assert below_victim and not alive, (below_victim, alive)
    dask_csv = (out / "grades.csv").read_text()
    assert dask_csv == local_csv
    rows = _rows(dask_csv)
    assert len({(r["learner"], r["assignment"]) for r in rows}) == len(rows) == len(LEARNERS) + 1
    done = [ln for ln in lines if ln.startswith("[")]
    assert len(done) == len(LEARNERS) + 1  # one progress line (one write) per job
    for learner in LEARNERS:
        result = load_result(result_path(out, learner, ASSIGNMENT))
        assert result["final"] is True and result["status"] == "graded"
        assert result["worker"].endswith(", root")
    pids = {load_result(result_path(out, lrn, ASSIGNMENT))["worker"].split(",")[0] for lrn in LEARNERS}
    assert f"pid {cluster['workers']['w2'].pid}" in pids
    assert pids <= {f"pid {cluster['workers']['w2'].pid}", f"pid {victim.pid}"}
    # The same command again: everything is final, nothing is sent.
    again = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"{len(LEARNERS) + 1} already graded" in again.stdout
    assert (out / "grades.csv").read_text() == local_csv


class _FakeClient:
    def __init__(self, infos):
        self.infos = infos

    def run(self, fn, *args):
        return self.infos


def test_client_refuses_other_solutions_and_weak_sandboxes():
    digest = dask_backend.tree_digest(SOURCE)
    ok = {"digest": digest, "mode": "root", "pid": 1}
    assert dask_backend.check_workers(_FakeClient({"tcp://a": ok}), "x", digest, False) == {"tcp://a": ok}
    with pytest.raises(SystemExit, match="tcp://b: its solutions/ differ"):
        dask_backend.check_workers(_FakeClient({"tcp://a": ok, "tcp://b": ok | {"digest": "0" * 64}}), "x",
                                   digest, True)
    weak = {"tcp://a": ok, "tcp://c": ok | {"mode": "userns-chroot"}}
    with pytest.raises(SystemExit, match="tcp://c: sandbox mode userns-chroot is weaker than root"):
        dask_backend.check_workers(_FakeClient(weak), "x", digest, False)
    assert dask_backend.check_workers(_FakeClient(weak), "x", digest, True) == weak
    with pytest.raises(SystemExit, match="no workers"):
        dask_backend.check_workers(_FakeClient({}), "x", digest, False)


def test_a_task_on_a_weak_or_different_worker_is_refused_there(monkeypatch, tmp_path):
    digest = dask_backend.tree_digest(SOURCE)
    ref = dask_backend._source_ref(SOURCE)
    assert not Path(ref).is_absolute()  # inside the checkout: each worker finds its own copy
    folder = tmp_path / "staged"
    folder.mkdir()
    (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(solution_nb()), encoding="utf-8")
    payload = dask_backend.pack(folder, ASSIGNMENT)
    monkeypatch.setattr(dask_backend, "probe", lambda ref: {"digest": digest, "mode": "rlimits", "pid": 7})
    reply = dask_backend.grade_task(payload, "alice", ASSIGNMENT, ref, digest, LIMITS.__dict__, 8 << 30, False)
    assert reply["refused"] == "worker refused: sandbox mode rlimits is weaker than root" and "result" not in reply
    reply = dask_backend.grade_task(payload, "alice", ASSIGNMENT, ref, "0" * 64, LIMITS.__dict__, 8 << 30, True)
    assert reply["refused"] == "worker refused: its solutions/ differ from the client's"


def test_tree_digest_changes_with_a_file_of_solutions(tmp_path):
    import shutil

    copy = tmp_path / "solutions"
    shutil.copytree(SOURCE, copy)
    before = dask_backend.tree_digest(copy)
    assert before == dask_backend.tree_digest(SOURCE)
    nb = copy / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb.write_bytes(nb.read_bytes() + b" ")
    assert dask_backend.tree_digest(copy) != before


def test_allow_weak_sandbox_needs_a_scheduler(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path), "--out", str(tmp_path / "o"),
                           "--allow-weak-sandbox"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--allow-weak-sandbox is for --scheduler" in proc.stderr


def test_make_grade_passes_the_scheduler():
    dry = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=subs", "OUT=out", "SCHEDULER=tcp://127.0.0.1:8786"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    line = next(ln for ln in dry.stdout.splitlines() if "autograder grade " in ln)
    assert line.split()[-6:] == ["grade", "subs", "--out", "out", "--scheduler", "tcp://127.0.0.1:8786"], line
    plain = subprocess.run(["make", "-n", "grade"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--scheduler" not in plain.stdout
