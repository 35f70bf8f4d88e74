"""Each protection of the sandbox, probed from inside it (root only: skipped with a reason otherwise)."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from autograder import wire
from autograder.paths import ROOT
from autograder.sandbox import Limits, Sandbox, detect_mode

pytestmark = pytest.mark.skipif(detect_mode() != "root",
                                reason=f"the full sandbox needs root (mode here: {detect_mode()})")

PROBE = r'''
import json, os, resource, socket
report = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd()}
def can_read(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        return True
    except OSError:
        return False
report["readable"] = {p: can_read(p) for p in PATHS}
report["own_file"] = open("mine.txt").read()
def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
report["writable"] = {p: can_write(p)
                      for p in ("/etc/tg-test", "/usr/tg-test", VENV_FILE, "/tg-test")}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    report["net"] = "connected"
except OSError as exc:
    report["net"] = type(exc).__name__
report["limits"] = {name: resource.getrlimit(getattr(resource, name))
                    for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                                 "RLIMIT_NOFILE", "RLIMIT_CORE")}
with open("/proc/self/status") as f:
    report["caps"] = [l.split()[1] for l in f if l.startswith("CapEff")][0]
report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
try:
    with open("big.bin", "wb") as f:
        f.write(b"x" * (3 << 20))
    report["fsize"] = "wrote"
except OSError as exc:
    report["fsize"] = type(exc).__name__
print("PROBE" + json.dumps(report))
'''


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    mine = tmp / "learner_a"
    other = tmp / "learner_b"
    out = tmp / "out"
    for d in (mine, other, out):
        d.mkdir()
    (mine / "mine.txt").write_text("my own data")
    (other / "theirs.txt").write_text("secret")
    (out / "grades.csv").write_text("secret")
    paths = [str(ROOT / "solutions"), str(ROOT / "autograder"), str(ROOT / ".nbgrader"), str(ROOT / "tests"),
             str(out), str(out / "grades.csv"), str(other), str(other / "theirs.txt"), "/root/.cache",
             str(ROOT.parent / "shared")]
    limits = Limits(cpu_seconds=30, file_bytes=1 << 20, processes=64, open_files=128, memory_bytes=2 << 30)
    sb = Sandbox(mine, limits=limits).start()
    try:
        setup = f"PATHS = {paths!r}\nVENV_FILE = {str(Path(sys.prefix) / 'tg-test')!r}\n"
        sb.send({"op": "setup", "cells": [{"label": "probe", "source": setup + PROBE}]})
        while sb.recv(time.monotonic() + 120).get("op") != "ready":
            pass
        text = sb.cut_output()["stdout"]
    finally:
        sb.close()
    assert "PROBE" in text, text
    return json.loads(text.split("PROBE", 1)[1].splitlines()[0]), sb


def test_runs_as_an_unprivileged_user_without_capabilities(probe):
    """The learner's code runs as a non-root uid/gid, with no groups and no effective capabilities."""
    report, sb = probe
    assert report["uid"] == sb.uid >= 1000 and report["gid"] == sb.uid and report["groups"] == []
    assert int(report["caps"], 16) == 0


def test_only_its_own_files_are_readable(probe):
    """solutions/, the grader, the gradebook, the output folder and other learners do not exist for it."""
    report, _ = probe
    assert report["own_file"] == "my own data"
    readable = {p for p, ok in report["readable"].items() if ok}
    assert not readable, f"the sandbox could read {readable}"


def test_system_and_python_are_read_only(probe):
    """It cannot write to /, /etc, /usr or the virtual environment."""
    report, _ = probe
    assert not any(report["writable"].values()), report["writable"]


def test_no_network(probe):
    """Opening a TCP connection fails (no network namespace interfaces)."""
    report, _ = probe
    assert report["net"] != "connected"


def test_resource_limits_are_set(probe):
    """CPU, address space, processes, file size, open files and core dumps are limited as configured."""
    report, _ = probe
    lim = report["limits"]
    assert lim["RLIMIT_CPU"][0] == 30 and lim["RLIMIT_AS"][0] == 2 << 30
    assert lim["RLIMIT_NPROC"][0] == 64 and lim["RLIMIT_FSIZE"][0] == 1 << 20
    assert lim["RLIMIT_NOFILE"][0] == 128 and lim["RLIMIT_CORE"] == [0, 0]
    assert report["fsize"] != "wrote", "a file over RLIMIT_FSIZE was written"


def test_private_pid_namespace(probe):
    """Only the sandbox's own processes are visible (it is PID 1 of its namespace)."""
    report, _ = probe
    assert report["pids"] and max(report["pids"]) < 50 and 1 in report["pids"]


def test_wall_clock_kill_takes_the_whole_namespace(tmp_path):
    """kill() ends the learner process and any child it started, even one that ignores signals."""
    sb = Sandbox(tmp_path, limits=Limits(cpu_seconds=30)).start()
    try:
        sb.send({"op": "setup", "cells": [{"label": "spawn", "source":
                 "import subprocess, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "subprocess.Popen(['sleep', '300'], start_new_session=True)\nwhile True: pass"}]})
        with pytest.raises(wire.Timeout):
            while True:
                sb.recv(time.monotonic() + 3)
        init = sb._find_ns_init()
        assert init
        sb.kill("timeout")
        assert sb.wait() < 0 and sb.exit_reason() == "timeout"
        time.sleep(0.5)
        assert not _alive(Path(f"/proc/{init}"))
        leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == sb.uid and _alive(p)]
        assert not leftovers, "processes of the sandbox survived the kill"
    finally:
        sb.close()


def _alive(proc_dir):
    try:
        return (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _uid(proc_dir):
    try:
        return os.stat(proc_dir).st_uid
    except OSError:
        return None


def test_protections_are_reported():
    """The sandbox says which protections it applies and, with root, that nothing is missing."""
    sb = Sandbox()
    text = " ".join(sb.protections)
    for word in ("network", "uid", "chroot", "CPU time", "memory", "processes", "file size", "wall clock", "output"):
        assert word in text
    assert sb.not_enforced == []
    assert Sandbox(mode="rlimits").not_enforced, "without root, what is missing must be said"


ORPHAN_SCRIPT = r'''
import sys, time
sys.path.insert(0, sys.argv[1])
from autograder.sandbox import Limits, Sandbox
sb = Sandbox(sys.argv[2], limits=Limits(cpu_seconds=30)).start()
sb.send({"op": "setup", "cells": [{"label": "sleeper", "source":
         "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\nwhile True: time.sleep(0.1)"}]})
print(sb.uid, flush=True)
time.sleep(300)
'''


def _processes_of(uid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_a_killed_grader_takes_its_sandboxes_along(tmp_path):
    """SIGKILL the process that started a sandbox: the learner's process and its children die too."""
    import signal
    import subprocess

    grader = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(ROOT), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    uid = int(grader.stdout.readline())
    deadline = time.monotonic() + 30
    while len(_processes_of(uid)) < 2 and time.monotonic() < deadline:  # the learner and its `sleep`
        time.sleep(0.1)
    assert len(_processes_of(uid)) >= 2, "the learner's cell did not start"
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 10
    while _processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_of(uid), f"left running after the grader was killed: {_processes_of(uid)}"


HIDDEN_PROBE = r'''
import importlib, json, os, sys
import gradlab
report = {"dir": sorted(os.listdir(os.path.dirname(gradlab.__file__)))}
for name in ("gradlab.clipping", "gradlab.rnn", "gradlab.grading"):
    try:
        importlib.import_module(name)
        report[name] = "imported"
    except ImportError as exc:
        report[name] = type(exc).__name__
try:
    from gradlab.clipping import clip_by_value
    report["from_import"] = "imported"
except ImportError as exc:
    report["from_import"] = type(exc).__name__
report["file"] = os.path.exists(os.path.join(os.path.dirname(gradlab.__file__), "clipping.py"))
print("PROBE" + json.dumps(report))
'''


def test_gradlab_modules_answering_the_assignment_are_left_out(tmp_path):
    """With the exercises of 03, gradlab.clipping does not exist in the sandbox; other modules import."""
    sb = Sandbox(tmp_path, limits=Limits(cpu_seconds=60), exercises={"clip_by_value", "clip_by_norm"}).start()
    try:
        sb.send({"op": "setup", "cells": [{"label": "probe", "source": HIDDEN_PROBE}]})
        while sb.recv(time.monotonic() + 120).get("op") != "ready":
            pass
        text = sb.cut_output()["stdout"]
    finally:
        sb.close()
    assert "PROBE" in text, text
    report = json.loads(text.split("PROBE", 1)[1].splitlines()[0])
    assert report["gradlab.clipping"] == "ModuleNotFoundError" and report["from_import"] == "ModuleNotFoundError"
    assert report["gradlab.rnn"] == "imported" and report["gradlab.grading"] == "imported", report
    assert "clipping.py" not in report["dir"] and not report["file"]
    assert not any(n.startswith("clipping.") for n in report["dir"]), report["dir"]
    assert (ROOT / "course" / "gradlab" / "clipping.py").is_file(), "the host's gradlab must be untouched"
