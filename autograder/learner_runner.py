"""The process that runs a learner's code, inside the sandbox.

Started by ``autograder.sandbox`` as ``python learner_runner.py REQUEST_FD RESPONSE_FD`` (run as a plain
file, next to a copy of ``wire.py``). It talks to the grader's trusted process over a dedicated pipe
pair, never over stdin/stdout, which the learner's code may write to.

1. Setup: receive the cells to run (the learner's solution cells and the source notebook's other
   non-test, non-slow code cells), execute them one by one in an IPython ``InteractiveShell`` (so
   learner magics and input/AST transformers only ever touch this process), record each cell's
   error and go on. Before each cell a ``cell`` message tells the grader which one runs, so that a
   cell that hangs or kills the process can be skipped on a restart.
2. Flush and point stdout at /dev/null and stderr at a memory file, then send ``ready`` with the
   per-cell results. The grader stops recording output at that moment: shipped test functions (hidden-test source) only
   arrive afterwards, so nothing the learner's code prints later can reach the feedback.
3. Serve requests until ``bye`` or end of file: ``describe`` names, ``call`` a learner object,
   ``getattr``/``getitem``/``len``/``iter``/``repr`` on one, and ``run`` a shipped test function.
   Values travel through ``wire`` (JSON, no pickle); objects that do not travel stay here as handles.
   A reply during which the learner's code wrote to stderr carries the start of it (``stderr``):
   nbgrader scores such a test 0, and so does the grader.

Nothing in this process is trusted: the grader checks every value it sends back.
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import traceback
import types

if __package__:  # imported as autograder.learner_runner (tests, tools)
    from . import wire
else:  # run as a plain file in the sandbox, next to a copy of wire.py
    import wire

MAX_MESSAGE = 2000  # characters of an exception message sent back
MAX_ITEMS = 100_000  # items of an ``iter`` request
MAX_TYPE_NAME = 100  # characters of an exception's type name
MAX_STDERR = 300  # characters of what a request wrote to stderr, sent back with its reply

_compile, _exec, _str, _type = compile, exec, str, type  # before any learner code runs
from hashlib import sha256 as _sha256  # noqa: E402


def _error(exc):
    name = _str(_type(exc).__name__)[:MAX_TYPE_NAME]
    try:
        message = _str(exc)
    except BaseException:  # a learner exception whose __str__ raises
        message = "<unprintable>"
    builtin = _type(exc).__module__ == "builtins" and isinstance(exc, Exception)
    return {"type": name, "message": message[:MAX_MESSAGE], "builtin": bool(builtin)}


class Server:
    """Learner objects by handle, and the request handlers."""

    def __init__(self, namespace, req_fd, resp_fd, stderr_fd=None):
        self.ns = namespace
        self.stderr_fd = stderr_fd  # fd 2 after setup: a memory file read (and emptied) after each request
        self.req_fd, self.resp_fd = req_fd, resp_fd
        self.objects = {}
        self.ids = {}
        self.shipped = {}

    # -- values ------------------------------------------------------------------------------------

    def handle(self, obj):
        key = id(obj)
        hid = self.ids.get(key)
        if hid is None or self.objects.get(hid) is not obj:
            hid = len(self.objects) + 1
            self.objects[hid] = obj
            self.ids[key] = hid
        return hid

    def _fallback(self, obj):
        return {"$h": self.handle(obj)}

    def encode(self, value):
        return wire.encode(value, fallback=self._fallback)

    def _hook(self, tag, payload):
        if tag == "$h":
            if _type(payload) is not int or payload not in self.objects:
                raise wire.WireError(f"unknown handle {payload!r}")
            return self.objects[payload]
        if tag == "$fn":
            return self.load_function(payload["source"], payload["name"])
        if tag == "$ref":
            import importlib

            return getattr(importlib.import_module(payload["module"]), payload["name"])
        raise wire.WireError(f"unexpected tag {tag}")

    def decode(self, data):
        return wire.decode(data, hook=self._hook)

    def load_function(self, source, name):
        """The shipped test function ``name`` defined by ``source``, compiled once. Kept by a digest of its
        source, not by the source: nothing here holds a shipped function's text after it is compiled
        (the grader withholds all learner text once a hidden part ran here, whatever this process kept)."""
        key = (_sha256(source.encode("utf-8", "surrogatepass")).hexdigest(), name)
        if key not in self.shipped:
            namespace = {"__builtins__": builtins, "__name__": "__tg_shipped__"}
            _exec(_compile(source, "<grader>", "exec"), namespace)
            self.shipped[key] = namespace[name]
        return self.shipped[key]

    # -- requests ----------------------------------------------------------------------------------

    def describe(self, names):
        out = {}
        for name in names:
            if name not in self.ns:
                out[name] = {"kind": "missing"}
                continue
            obj = self.ns[name]
            if isinstance(obj, types.ModuleType):
                out[name] = {"kind": "module", "name": _str(getattr(obj, "__name__", ""))}
            elif callable(obj):
                out[name] = {"kind": "callable", "handle": self.handle(obj)}
            else:
                try:
                    out[name] = {"kind": "value", "value": wire.encode(obj)}
                except Exception:
                    out[name] = {"kind": "other", "handle": self.handle(obj)}
        return out

    def _call(self, func, req):
        args = self.decode(req.get("args", []))
        kwargs = self.decode(req.get("kwargs", {"$d": {}}))
        if _type(args) is not list or _type(kwargs) is not dict:
            raise wire.WireError("args must be a list and kwargs a dict")
        value = func(*args, **kwargs)
        reply = {"value": self.encode(value)}
        try:
            reply["args"] = self.encode(args)
            reply["kwargs"] = self.encode(kwargs)
        except Exception:
            pass
        return reply

    def dispatch(self, req):
        op = req.get("op")
        if op == "describe":
            return {"value": self.describe(req["names"])}
        if op == "run":
            return self._call(self.load_function(req["source"], req["name"]), req)
        target = self._hook("$h", req.get("target"))
        if op == "call":
            return self._call(target, req)
        if op == "getattr":
            return {"value": self.encode(getattr(target, req["name"]))}
        if op == "getitem":
            return {"value": self.encode(target[self.decode(req["key"])])}
        if op == "len":
            return {"value": len(target)}
        if op == "iter":
            items = []
            for item in target:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise ValueError(f"more than {MAX_ITEMS} items")
            return {"value": self.encode(items)}
        if op == "repr":
            return {"value": repr(target)[:MAX_MESSAGE]}
        raise ValueError(f"unknown request {op!r}")

    def take_stderr(self):
        """What the learner's code wrote to stderr during the last request (its start), then emptied.

        nbgrader scores a test cell that writes to stderr 0 (a warning, plain tqdm, a library's log),
        so the grader must know; only the first MAX_STDERR characters travel.
        """
        if self.stderr_fd is None:
            return ""
        for stream in (sys.stderr, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            size = os.fstat(self.stderr_fd).st_size
            if not size:
                return ""
            head = os.pread(self.stderr_fd, MAX_STDERR * 4, 0)
            os.ftruncate(self.stderr_fd, 0)
            os.lseek(self.stderr_fd, 0, os.SEEK_SET)
        except OSError:
            return ""
        return head.decode("utf-8", "replace")[:MAX_STDERR] or " "

    def serve(self):
        while True:
            try:
                req = wire.recv(self.req_fd)
            except wire.PeerClosed:
                return 0
            if req.get("op") == "bye":
                return 0
            try:
                reply = {"ok": True, **self.dispatch(req)}
            except BaseException as exc:  # noqa: BLE001 - learner code may raise anything, SystemExit too
                reply = {"ok": False, "error": _error(exc)}
            written = self.take_stderr()
            if written:
                reply["stderr"] = written
            try:
                wire.send(self.resp_fd, reply)
            except wire.PeerClosed:
                return 0
            except wire.WireError as exc:
                wire.send(self.resp_fd, {"ok": False, "error": _error(exc)})


def make_shell():
    """An IPython shell with no colours, no history file, matplotlib on Agg."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor", history_length=0)
    try:
        shell.history_manager.enabled = False
    except Exception:
        pass
    return shell


def run_cells(shell, cells, resp_fd):
    """Execute each cell, recording its error; a ``cell`` message goes out before each one."""
    results = []
    for index, cell in enumerate(cells):
        wire.send(resp_fd, {"op": "cell", "index": index})
        entry = {"label": cell.get("label", f"cell {index}"), "ok": True}
        if cell.get("source", "").strip():
            try:
                result = shell.run_cell(cell["source"], store_history=False)
                exc = result.error_before_exec or result.error_in_exec
            except BaseException as err:  # noqa: BLE001
                exc = err
            if exc is not None:
                entry.update(ok=False, error=_error(exc))
        sys.stdout.flush()
        sys.stderr.flush()
        results.append(entry)
    return results


def main(argv):
    req_fd, resp_fd = int(argv[1]), int(argv[2])
    for fd in (req_fd, resp_fd):
        os.set_inheritable(fd, False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: a failed write, not a kill
    home = os.environ.get("HOME")
    if home and os.path.isdir(home):
        os.chdir(home)
    sys.path.insert(0, os.getcwd())
    setup = wire.recv(req_fd)
    shell = make_shell()
    results = run_cells(shell, setup.get("cells", []), resp_fd)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:  # stderr goes on being written, to a memory file, so that a test knows its calls wrote there
        os.dup2(os.memfd_create("stderr", os.MFD_CLOEXEC), 2)
        stderr_fd = 2
    except (AttributeError, OSError):
        os.dup2(devnull, 2)
        stderr_fd = None
    wire.send(resp_fd, {"op": "ready", "cells": results})
    return Server(shell.user_ns, req_fd, resp_fd, stderr_fd).serve()


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except wire.PeerClosed:
        code = 0
    except BaseException:
        traceback.print_exc()
        code = 70
    sys.stdout.flush()
    os._exit(code)
