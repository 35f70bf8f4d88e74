"""Each protection of the sandbox, probed from inside it.

The first tests need root (skipped with a reason otherwise). The ``userns_*`` tests run the sandbox
as an unprivileged user (uid 65534 through ``setpriv`` when these tests run as root, else the user
running them), which gets mode ``userns-chroot`` where user namespaces allow it.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder import wire
from autograder.paths import ROOT
from autograder.sandbox import Limits, Sandbox, detect_mode

root_only = pytest.mark.skipif(detect_mode() != "root",
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
    sb = Sandbox(mine, limits=limits)
    setup = f"PATHS = {paths!r}\nVENV_FILE = {str(Path(sys.prefix) / 'tg-test')!r}\n"
    return _probe_report(sb, setup + PROBE), sb


def _probe_report(sandbox, source):
    """Start ``sandbox``, run ``source`` as its one setup cell and return the JSON it printed after PROBE."""
    sandbox.start()
    try:
        sandbox.send({"op": "setup", "cells": [{"label": "probe", "source": source}]})
        while sandbox.recv(time.monotonic() + 120).get("op") != "ready":
            pass
        text = sandbox.cut_output()["stdout"]
    finally:
        sandbox.close()
    assert "PROBE" in text, text
    return json.loads(text.split("PROBE", 1)[1].splitlines()[0])


@root_only
def test_runs_as_an_unprivileged_user_without_capabilities(probe):
    """The learner's code runs as a non-root uid/gid, with no groups and no effective capabilities."""
    report, sb = probe
    assert report["uid"] == sb.uid >= 1000 and report["gid"] == sb.uid and report["groups"] == []
    assert int(report["caps"], 16) == 0


@root_only
def test_only_its_own_files_are_readable(probe):
    """solutions/, the grader, the gradebook, the output folder and other learners do not exist for it."""
    report, _ = probe
    assert report["own_file"] == "my own data"
    readable = {p for p, ok in report["readable"].items() if ok}
    assert not readable, f"the sandbox could read {readable}"


@root_only
def test_system_and_python_are_read_only(probe):
    """It cannot write to /, /etc, /usr or the virtual environment."""
    report, _ = probe
    assert not any(report["writable"].values()), report["writable"]


@root_only
def test_no_network(probe):
    """Opening a TCP connection fails (no network namespace interfaces)."""
    report, _ = probe
    assert report["net"] != "connected"


@root_only
def test_resource_limits_are_set(probe):
    """CPU, address space, processes, file size, open files and core dumps are limited as configured."""
    report, _ = probe
    lim = report["limits"]
    assert lim["RLIMIT_CPU"][0] == 30 and lim["RLIMIT_AS"][0] == 2 << 30
    assert lim["RLIMIT_NPROC"][0] == 64 and lim["RLIMIT_FSIZE"][0] == 1 << 20
    assert lim["RLIMIT_NOFILE"][0] == 128 and lim["RLIMIT_CORE"] == [0, 0]
    assert report["fsize"] != "wrote", "a file over RLIMIT_FSIZE was written"


@root_only
def test_private_pid_namespace(probe):
    """Only the sandbox's own processes are visible (it is PID 1 of its namespace)."""
    report, _ = probe
    assert report["pids"] and max(report["pids"]) < 50 and 1 in report["pids"]


@root_only
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


@root_only
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


@root_only
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


@root_only
def test_gradlab_modules_answering_the_assignment_are_left_out(tmp_path):
    """With the exercises of 03, gradlab.clipping does not exist in the sandbox; other modules import."""
    sb = Sandbox(tmp_path, limits=Limits(cpu_seconds=60), exercises={"clip_by_value", "clip_by_norm"})
    report = _probe_report(sb, HIDDEN_PROBE)
    assert report["gradlab.clipping"] == "ModuleNotFoundError" and report["from_import"] == "ModuleNotFoundError"
    assert report["gradlab.rnn"] == "imported" and report["gradlab.grading"] == "imported", report
    assert "clipping.py" not in report["dir"] and not report["file"]
    assert not any(n.startswith("clipping.") for n in report["dir"]), report["dir"]
    assert (ROOT / "course" / "gradlab" / "clipping.py").is_file(), "the host's gradlab must be untouched"


# -- without root: the sandbox of an unprivileged user (mode userns-chroot) ------------------------

NOBODY = 65534
# Left out of the venv built for uid 65534 (not needed by the runner or gradlab's top level; large).
HEAVY = {"torch", "torchgen", "functorch", "tensorflow", "tensorboard", "tensorboard_data_server", "keras",
         "playwright", "scipy", "sympy", "sklearn", "clang", "triton", "jax", "jaxlib", "nvidia"}

NPROC_PROBE = r'''
import json, subprocess
children = []
try:
    for _ in range(LIMIT + 16):
        children.append(subprocess.Popen(["sleep", "30"]))
    started = "all"
except OSError as exc:
    started = type(exc).__name__
count = len(children)
for c in children:
    c.kill()
    c.wait()
print("PROBE" + json.dumps({"started": started, "count": count}))
'''

USERNS_DRIVER = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from autograder import wire
from autograder.sandbox import Limits, Sandbox, detect_mode
args = json.loads(sys.argv[2])
report = {"mode": detect_mode(), "host_uid": os.getuid()}
report["outside"] = {p: os.access(p, os.R_OK) for p in args["paths"]}
limits = Limits(cpu_seconds=30, file_bytes=1 << 20, processes=args["nproc"], open_files=128,
                memory_bytes=2 << 30)
sb = Sandbox(args["mine"], limits=limits, exercises={"clip_by_value", "clip_by_norm"})
report["protections"], report["not_enforced"], report["uid"] = sb.protections, sb.not_enforced, sb.uid
if report["mode"] == "userns-chroot":
    setup = f"PATHS = {args['paths']!r}\nVENV_FILE = {os.path.join(sys.prefix, 'tg-test')!r}\n"
    cells = [{"label": "probe", "source": setup + args["probe"]}, {"label": "hidden", "source": args["hidden"]},
             {"label": "nproc", "source": f"LIMIT = {args['nproc']}\n" + args["nproc_probe"]}]
    with sb:
        sb.send({"op": "setup", "cells": cells})
        while True:
            msg = sb.recv(time.monotonic() + 120)
            if msg.get("op") == "ready":
                break
        report["cells"] = msg["cells"]
        report["stdout"] = sb.cut_output()["stdout"]
    # The wall clock: kill() takes the whole PID namespace, even a child in a session of its own.
    sb = Sandbox(args["mine"], limits=limits).start()
    try:
        sb.send({"op": "setup", "cells": [{"label": "spawn", "source":
                 "import subprocess, time\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                 "while True: time.sleep(0.05)"}]})
        try:
            while True:
                sb.recv(time.monotonic() + 3)
        except wire.Timeout:
            pass
        init = sb._find_ns_init()
        ns = os.readlink(f"/proc/{init}/ns/pid")
        def members():
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if os.readlink(f"/proc/{pid}/ns/pid") == ns:
                        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
                        found.append((int(pid), state))
                except OSError:
                    pass
            return [pid for pid, state in found if state not in ("Z", "X")]
        report["before_kill"] = len(members())
        sb.kill("timeout")
        report["exit_reason"] = sb.exit_reason()
        deadline = time.monotonic() + 5
        while members() and time.monotonic() < deadline:
            time.sleep(0.1)
        report["after_kill"] = members()
    finally:
        sb.close()
print("DRIVER" + json.dumps(report))
'''


def _as_nobody(cmd, **kw):
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd],
                          capture_output=True, text=True, **kw)


def _nobody_python(base):
    """A virtual environment uid 65534 can run (this one's interpreter may sit under /root): the same
    Python version's system interpreter, with this venv's packages hard-linked in (less the heavy ones)."""
    want = "{}.{}".format(*sys.version_info[:2])
    candidates = [f"/usr/bin/python{want}", f"/usr/local/bin/python{want}", shutil.which(f"python{want}")]
    check = f"import sys, venv; assert '%d.%d' % sys.version_info[:2] == {want!r}"
    python = next((c for c in candidates if c and _as_nobody([c, "-c", check], timeout=60).returncode == 0), None)
    if python is None:
        pytest.skip(f"no Python {want} that uid {NOBODY} can run (tried {candidates})")
    venv = base / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    if _as_nobody([str(venv / "bin" / "python"), "-c", "pass"], timeout=60).returncode:
        pytest.skip(f"uid {NOBODY} cannot run a virtual environment of {python}")
    here = Path(sys.prefix) / "lib" / f"python{want}" / "site-packages"
    there = venv / "lib" / f"python{want}" / "site-packages"
    entries = [str(e) for e in sorted(here.iterdir()) if e.name not in HEAVY and not e.name.startswith("nvidia")]
    linked = subprocess.run(["cp", "-al", "--", *entries, str(there)], capture_output=True, text=True)
    if linked.returncode != 0:
        pytest.skip(f"cannot hard-link this venv's packages into {there}: {linked.stderr.strip()[:300]}")
    runs = _as_nobody([str(venv / "bin" / "python"), "-c", "import IPython, gradlab"], timeout=120)
    if runs.returncode:
        pytest.skip(f"the venv built for uid {NOBODY} cannot import IPython and gradlab: {runs.stderr[-300:]}")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def userns_report():
    """Run USERNS_DRIVER as an unprivileged user; returns its report and the sentinel paths."""
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("needs unshare and setpriv (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="tg-userns-test-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK)
                                 else None))
    try:
        base.chmod(0o755)
        if os.geteuid() == 0:
            if _as_nobody(["test", "-r", str(ROOT / "autograder" / "sandbox.py")], timeout=30).returncode:
                pytest.skip(f"uid {NOBODY} cannot read the repository at {ROOT}")
            python, prefix = _nobody_python(base), ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                                    "--clear-groups"]
        else:
            python, prefix = Path(sys.executable), []
        mine, other, out = base / "learner_a", base / "learner_b", base / "out"
        for d in (mine, other, out):
            d.mkdir()
        (mine / "mine.txt").write_text("my own data")
        (other / "theirs.txt").write_text("secret")
        (out / "grades.csv").write_text("secret")
        (base / "sentinel.txt").write_text("secret")
        for path in (base, *base.rglob("*")):
            if "venv" not in path.relative_to(base).parts:
                path.chmod(0o755 if path.is_dir() else 0o644)
        paths = [str(ROOT / "solutions"), str(ROOT / "autograder"), str(ROOT / "tests"), str(out / "grades.csv"),
                 str(other / "theirs.txt"), str(base / "sentinel.txt"), str(mine), "/root/.cache"]
        args = {"mine": str(mine), "paths": paths, "probe": PROBE, "hidden": HIDDEN_PROBE, "nproc": 64,
                "nproc_probe": NPROC_PROBE}
        done = subprocess.run([*prefix, "env", "-i", "PATH=/usr/bin:/bin", str(python), "-c", USERNS_DRIVER,
                               str(ROOT), json.dumps(args)], capture_output=True, text=True, timeout=300, cwd=base)
        assert "DRIVER" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(done.stdout.split("DRIVER", 1)[1].splitlines()[0])
        report["probes"] = [json.loads(line[5:]) for line in report.get("stdout", "").splitlines()
                            if line.startswith("PROBE")]
        yield report, {"sentinel": str(base / "sentinel.txt"), "paths": paths}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _chroot_report(userns_report):
    report, where = userns_report
    if report["mode"] != "userns-chroot":
        pytest.skip(f"user namespaces cannot build the chroot here (mode as uid {report['host_uid']}: "
                    f"{report['mode']}); files are then NOT hidden, as not_enforced says")
    assert all(c["ok"] for c in report["cells"]), report["cells"]
    assert len(report["probes"]) == 3, report["stdout"]
    return report, where


def test_userns_reports_the_truth(userns_report):
    """protections/not_enforced match the mode: with the chroot, only what a user namespace cannot
    give is missing (a uid of its own on the host, RLIMIT_NPROC per uid, dropping groups)."""
    report, _ = userns_report
    assert report["host_uid"] != 0
    protections, missing = " ".join(report["protections"]), " ".join(report["not_enforced"])
    if report["mode"] == "userns-chroot":
        for words in ("network: none", "chroot on a tmpfs", "private PID", "gradlab.clipping", "CPU time",
                      "memory", "file size", "wall clock", "output", f"uid/gid {report['uid']}"):
            assert words in protections, words
        assert "grading user" in missing and "escape the chroot" in missing and "RLIMIT_NPROC" in missing
        assert "groups" in missing
        for topic in ("files:", "network:", "gradlab:", "disk:"):
            assert not any(m.startswith(topic) for m in report["not_enforced"]), (topic, report["not_enforced"])
    else:
        assert missing.startswith(("files:", "network:")) and "solutions/" in missing and "gradlab.clipping" in missing


def test_userns_only_its_own_files_are_readable(userns_report):
    """solutions/, the grader, another learner, OUT and a sentinel next to the submission do not exist
    in there, although the grading user can read them outside; its own files can be read."""
    report, where = _chroot_report(userns_report)
    probe = report["probes"][0]
    assert report["outside"][where["sentinel"]], "the sentinel must be readable outside, or this proves nothing"
    assert probe["own_file"] == "my own data"
    readable = {p for p, ok in probe["readable"].items() if ok}
    assert not readable, f"the sandbox could read {readable}"
    assert not any(probe["writable"].values()), probe["writable"]


def test_userns_runs_as_its_own_uid_without_capabilities(userns_report):
    """Inside, the learner is the sandbox's uid (not root of the namespace), with no capabilities."""
    report, _ = _chroot_report(userns_report)
    probe = report["probes"][0]
    assert probe["uid"] == report["uid"] == probe["gid"] and probe["uid"] != 0
    assert int(probe["caps"], 16) == 0
    assert probe["pids"] and max(probe["pids"]) < 50 and 1 in probe["pids"]


def test_userns_no_network(userns_report):
    report, _ = _chroot_report(userns_report)
    assert report["probes"][0]["net"] != "connected"


def test_userns_limits_still_apply(userns_report):
    """The rlimits are set, a file over RLIMIT_FSIZE is not written, RLIMIT_NPROC stops forks."""
    report, _ = _chroot_report(userns_report)
    probe, nproc = report["probes"][0], report["probes"][2]
    lim = probe["limits"]
    assert lim["RLIMIT_CPU"][0] == 30 and lim["RLIMIT_AS"][0] == 2 << 30
    assert lim["RLIMIT_NPROC"][0] == 64 and lim["RLIMIT_FSIZE"][0] == 1 << 20
    assert lim["RLIMIT_NOFILE"][0] == 128 and lim["RLIMIT_CORE"] == [0, 0]
    assert probe["fsize"] != "wrote", "a file over RLIMIT_FSIZE was written"
    assert nproc["started"] == "BlockingIOError" and nproc["count"] < 64, nproc


def test_userns_gradlab_modules_answering_the_assignment_are_left_out(userns_report):
    report, _ = _chroot_report(userns_report)
    hidden = report["probes"][1]
    assert hidden["gradlab.clipping"] == "ModuleNotFoundError" and hidden["from_import"] == "ModuleNotFoundError"
    assert hidden["gradlab.rnn"] == "imported" and hidden["gradlab.grading"] == "imported", hidden
    assert "clipping.py" not in hidden["dir"] and not hidden["file"]


def test_userns_wall_clock_kill_takes_the_whole_namespace(userns_report):
    report, _ = _chroot_report(userns_report)
    assert report["before_kill"] >= 2, "the learner and its sleep should have been running"
    assert report["exit_reason"] == "timeout" and report["after_kill"] == [], report
