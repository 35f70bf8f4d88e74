"""A fork server (zygote) per grader worker: the imports paid once per worker, a fresh process per job.

Most of a job's CPU time in the grader's own (trusted) process is importing what its test cells use:
torch alone costs about 2 CPU-s, and ``torch.optim`` / ``torch.testing`` pull in ``torch._dynamo`` and
``torch.distributed.tensor`` (2.5 CPU-s more) the first time they are called. A zygote is started
once per worker thread of the batch, imports NumPy (and torch with those two, when an assignment to
grade uses torch) and then, for each job, ``fork()``s a child that runs ``python -m autograder
grade-one`` as a fresh process would. Nothing of a job ever runs in the zygote itself, so a job's
module-level state is never seen by the next job (each child starts from the zygote's pristine
state and exits); the zygote only forks, waits and reports.

What a job keeps from the one-process-per-job design (``autograder.batch``):

* its own session and process group (``setsid``), the worker's ``RLIMIT_AS`` (inherited from the
  zygote, which is started under ``prlimit``, and set again by ``worker_setup``), and a
  parent-death signal of SIGKILL on the zygote, whose own parent-death signal is on the grader: a
  grader killed with SIGKILL takes its zygotes, their jobs and those jobs' sandboxes along;
* its own exit status: a child that dies (out of memory, a signal) is reported with its status and
  only its job is charged; a zygote that dies is replaced for the next job;
* its CPU time: the zygote reaps each child (``wait4``) and the grader reaps the zygote, so
  ``RUSAGE_CHILDREN`` of the grader counts every job and every sandbox.

TensorFlow is never imported in a zygote: it starts threads as it initialises and is not fork-safe,
so a job that needs it imports it in its own child, as before. A zygote refuses to serve (and the
batch falls back to starting one process per job) when anything it imported left a second thread
running, since ``fork()`` keeps only the calling thread.

Protocol (a Unix socket pair; one JSON object per line): the zygote says ``{"ready": ...}``; each
request is ``{"argv": [...]}`` with the write end of a pipe passed as ``SCM_RIGHTS`` (the child's
stderr); the zygote answers ``{"pid": N}`` once forked and ``{"status": S}`` (``os.waitstatus_to_exitcode``)
once the child is reaped. ``{"entry": "module:function"}`` runs another trusted function instead of
the CLI (tests use it); the channel is the grader's own and no learner code can reach it (a
sandbox is started with ``close_fds`` and only its two pipes).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path

TORCH = ("torch", "torch._dynamo", "torch.distributed.tensor")
ALWAYS = ("numpy", "threadpoolctl", "autograder.grade", "autograder.job", "autograder.trusted")
PR_SET_PDEATHSIG = 1
STDERR_TAIL = 2000
CMDLINE_ROOM = 4096  # bytes of padding on the zygote's command line, for its children's (_set_cmdline)


def preloads(notebooks):
    """What a zygote should import for these source notebooks: NumPy always, torch when one of them
    imports it (in any cell: its test cells run in the child). Never TensorFlow (see the module doc)."""
    mods = list(ALWAYS)
    for nb in notebooks:
        try:
            text = Path(nb).read_text(encoding="utf-8")
        except OSError:
            continue
        if "import torch" in text or "from torch" in text:
            mods += [m for m in TORCH if m not in mods]
            break
    return mods


class ZygoteDied(RuntimeError):
    pass


class Zygote:
    """The grader's end of one zygote (used by one worker thread at a time)."""

    def __init__(self, prefix, env, cwd, preload, parent_pid, memory_bytes):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        try:
            self.proc = subprocess.Popen(
                [*prefix, "-m", "autograder.zygote", str(theirs.fileno()), json.dumps(list(preload)),
                 str(parent_pid), str(memory_bytes or 0), "-" * CMDLINE_ROOM],
                cwd=cwd, env=env, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        self.reader = ours.makefile("rb")
        self.child = None
        ready = self._recv()
        if not ready.get("ready"):
            self.close()
            raise ZygoteDied(f"zygote refused to serve: {ready.get('why', 'no reason given')}")

    def _recv(self):
        line = self.reader.readline(1 << 16)
        if not line.endswith(b"\n"):
            raise ZygoteDied("the zygote closed its channel")
        return json.loads(line)

    def run(self, argv=None, entry=None):
        """Run one job in a fresh child; returns (exit status as ``Popen.returncode`` gives it, stderr tail).
        Raises ZygoteDied when the zygote itself is gone (the job did not run to its end)."""
        r, w = os.pipe()
        try:
            request = json.dumps({"argv": list(argv or []), "entry": entry}).encode() + b"\n"
            try:
                socket.send_fds(self.sock, [request], [w])
            except OSError as exc:
                raise ZygoteDied(f"cannot reach the zygote ({exc})") from exc
        finally:
            os.close(w)
        try:
            started = self._recv()
            self.child = started.get("pid")
            tail = bytearray()
            with os.fdopen(r, "rb", buffering=0) as err:
                r = None
                while chunk := err.read(1 << 16):
                    tail += chunk
                    del tail[:-STDERR_TAIL]
            done = self._recv()
        finally:
            if r is not None:
                os.close(r)
            self.child = None
        return int(done["status"]), tail.decode("utf-8", "replace")

    def kill(self):
        """SIGKILL the zygote and the job running in it (each in its own process group)."""
        for pid in (self.child, self.proc.pid):
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self):
        """Let the zygote exit (end of its channel) and reap it; kill it if it does not go."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.close()
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------ the zygote side


def _threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _set_cmdline(args):
    """Show ``args`` as this process's command line (``/proc/PID/cmdline``, ps), as a process started
    for the job would: written over the zygote's own argument area (copied on fork), which the
    zygote's command line pads to CMDLINE_ROOM bytes. Longer titles are cut."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48, 49 of proc(5)
    except (OSError, IndexError, ValueError):
        return
    room = end - start
    if room <= 1 or not start:
        return
    data = b"\0".join(os.fsencode(a) for a in args)[:room - 1]
    ctypes.memmove(start, data + b"\0" * (room - len(data)), room)


def _send(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _child(sock, err_fd, request, zygote_pid):
    """In the forked child: become a job process of its own, run the job, exit with its status."""
    rc = 1
    try:
        os.setsid()
        sock.close()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(err_fd, 2)
        os.close(devnull)
        os.close(err_fd)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != zygote_pid:  # the zygote died before the death signal was armed
            os._exit(3)
        argv = [str(a) for a in request.get("argv") or []]
        entry = request.get("entry")
        if entry:
            _set_cmdline([sys.executable, "-m", "autograder", *argv])
            module, _, name = str(entry).partition(":")
            func = getattr(importlib.import_module(module), name)
            rc = func(*argv)
        else:
            from autograder.__main__ import main

            argv = [*argv, "--parent-pid", str(zygote_pid)]
            sys.argv = ["python -m autograder", *argv]
            _set_cmdline([sys.executable, "-m", "autograder", *argv])
            rc = main(argv)
        rc = rc if isinstance(rc, int) else 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            rc = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            rc = 1
    except BaseException:  # noqa: BLE001 - reported like a crashed process: status 1 and a traceback
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(rc)


def serve(fd, preload, parent_pid, memory_bytes):
    from autograder.batch import worker_setup

    sock = socket.socket(fileno=fd)
    worker_setup(parent_pid or None, memory_bytes or None)
    try:
        for name in preload:
            importlib.import_module(name)
        if "autograder.trusted" in preload:  # every gradlab module parsed once here, not in every job
            from autograder.sandbox import answer_modules

            answer_modules({"\0 no exercise"})
    except Exception as exc:  # noqa: BLE001 - no zygote then: the batch starts one process per job
        _send(sock, {"ready": False, "why": f"import failed: {type(exc).__name__}: {exc}"[:300]})
        return 1
    if _threads() != 1:
        _send(sock, {"ready": False, "why": f"{_threads()} threads after the imports (fork keeps one)"})
        return 1
    _send(sock, {"ready": True, "pid": os.getpid(), "preloaded": list(preload)})
    me = os.getpid()
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 1)
        except OSError:
            return 0
        if not msg:
            return 0  # the grader closed the channel (or is gone)
        if len(fds) != 1:
            for f in fds:
                os.close(f)
            return 2
        err_fd = fds[0]
        request = json.loads(msg)
        pid = os.fork()
        if pid == 0:
            _child(sock, err_fd, request, me)
        os.close(err_fd)
        _send(sock, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(sock, {"status": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
