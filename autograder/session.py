"""Remote calls: the learner's process started in its sandbox and its setup cells run (``start_learner``),
and the session through which test cells call into it (``Session``, ``Remote`` proxies).

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import textwrap
import time
import types

from . import wire
from .redaction import STATUS_CHARS, _clip
from .sandbox import Sandbox, SandboxError
from .write_back import write_back

MAX_RESTARTS = 3
STDERR_CHARS = 200  # of what a test's calls wrote to stderr, quoted in its failure message
TRUSTED_MODULES = {"numpy", "torch", "tensorflow", "keras", "gradlab", "matplotlib", "sklearn", "scipy",
                   "tqdm", "ipywidgets", "pandas"}
UNSAFE_STDLIB = {"antigravity", "this", "webbrowser", "turtle", "turtledemo", "idlelib", "tkinter", "pydoc",
                 "ensurepip", "venv", "__phello__", "__hello__"}


def _module_allowed(name):
    top = name.split(".")[0]
    return top in TRUSTED_MODULES or (top in sys.stdlib_module_names and top not in UNSAFE_STDLIB)


class SandboxGone(Exception):
    """The learner's process died or timed out; the reason is the row's status."""


class LearnerException(Exception):
    """An exception raised by the learner's code (a non-builtin type, or one we do not re-create)."""

    def __init__(self, type_name, message):
        super().__init__(message)
        self.type_name = type_name


def _learner_exception(error):
    name, message = error.get("type"), error.get("message")
    name = name[:100] if type(name) is str else "Exception"
    message = message[:2000] if type(message) is str else ""
    cls = getattr(builtins, name, None)
    if error.get("builtin") and isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:
            pass
    return LearnerException(name, message)


class Remote:
    """A learner object that lives in the sandbox: calling it runs the learner's code there."""

    __slots__ = ("_session", "_hid", "_label")

    def __init__(self, session, hid, label):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_hid", hid)
        object.__setattr__(self, "_label", label)

    def __call__(self, *args, **kwargs):
        return self._session.request("call", args=args, kwargs=kwargs, target=self._hid,
                                     in_place=self._label in self._session.in_place)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.request("getattr", target=self._hid, name=name)

    def __getitem__(self, key):
        return self._session.request("getitem", target=self._hid, key=key)

    def __len__(self):
        return self._session.request("len", target=self._hid)

    def __iter__(self):
        return iter(self._session.request("iter", target=self._hid))

    def __repr__(self):
        return f"<learner object {self._label}>"


def shipped_source(func):
    """The source of a test-cell function without its decorators, ready to exec in the sandbox."""
    func = getattr(func, "__tg_shipped__", func)
    try:
        src = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise wire.Unsendable(f"cannot find the source of {getattr(func, '__name__', func)!r}") from exc
    tree = ast.parse(src)
    node = tree.body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise wire.Unsendable("only functions defined with def can be sent to the learner's process")
    node.decorator_list = []
    return ast.unparse(node), node.name


class Session:
    """One sandboxed learner process and the requests the test cells make to it."""

    def __init__(self, sandbox, limits, deadline):
        self.sandbox = sandbox
        self.limits = limits
        self.deadline = deadline
        self.dead = None  # the reason, once the learner process is gone
        self.in_place = frozenset()  # exercises whose calls are written back (write_back.in_place_exercises)
        self.stderr = ""  # the start of what the learner's code wrote to stderr since the test began
        self.stderr_hidden = False  # whether some of it was written during a call made by a hidden test
        # once a hidden part has sent anything into the learner's process (its inputs, a shipped function), the
        # process may hold them and show them later in any text it produces: from then on no later test's
        # feedback carries learner-produced text (``testrun.run_test``); ``trusted.grade`` carries it to a
        # restarted process, which may have kept them in a file
        self.tainted = False
        self.test_file, self.hidden_from = None, None  # the running test cell's file name, its hidden part's line

    def _called_from_hidden(self):
        """Whether the request being made comes (through any depth of calls) from a hidden test's line."""
        if self.hidden_from is None:
            return False
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.test_file and frame.f_lineno >= self.hidden_from:
                return True
            frame = frame.f_back
        return False

    def _fallback(self, obj):
        if isinstance(obj, Remote):
            if obj._session is not self:
                raise wire.Unsendable("a learner object from another submission")
            return {"$h": obj._hid}
        shipped = getattr(obj, "__tg_shipped__", None)
        from_test = isinstance(obj, types.FunctionType) and obj.__code__.co_filename.startswith("<test ")
        if isinstance(obj, types.FunctionType) and (shipped is not None or from_test):
            source, name = shipped_source(obj)
            return {"$fn": {"source": source, "name": name}}
        module, name = getattr(obj, "__module__", None), getattr(obj, "__name__", None)
        if isinstance(module, str) and isinstance(name, str) and callable(obj) and _module_allowed(module):
            try:
                if getattr(importlib.import_module(module), name) is obj:
                    return {"$ref": {"module": module, "name": name}}
            except Exception:
                pass
        t = type(obj)
        raise wire.Unsendable(f"a {t.__module__}.{t.__qualname__} cannot be sent to the learner's process "
                              "(see docs/AUTHORING.md: what travels)")

    def _hook(self, tag, payload):
        if tag == "$h" and type(payload) is int:
            return Remote(self, payload, f"#{payload}")
        raise wire.WireError(f"{tag} is not accepted from the learner's process")

    def _fail(self, reason):
        if self.dead is None:
            self.dead = reason
            self.sandbox.kill(reason)
        raise SandboxGone(self.dead)

    def request(self, op, args=None, kwargs=None, raw=False, in_place=False, **fields):
        """Send one request; returns the decoded value (``raw``: as sent) or raises the learner's exception."""
        if self.dead:
            raise SandboxGone(self.dead)
        message = {"op": op, **{k: v for k, v in fields.items() if k != "key"}}
        if "key" in fields:
            message["key"] = wire.encode(fields["key"], self._fallback)
        if args is not None:
            message["args"] = wire.encode(list(args), self._fallback)
            message["kwargs"] = wire.encode(dict(kwargs or {}), self._fallback)
        hidden = self._called_from_hidden()
        if hidden:
            self.tainted = True  # before anything is sent
        now = time.monotonic()
        if now >= self.deadline:
            self._fail("timeout")
        deadline = min(self.deadline, now + self.limits.call_seconds)
        try:
            self.sandbox.send(message, deadline)
            reply = self.sandbox.recv(deadline, limit=wire.reply_limit(op))
        except wire.Timeout:
            self._fail("timeout")
        except wire.PeerClosed:
            self._fail(self.sandbox.exit_reason())
        except wire.WireError as exc:
            self._fail(_clip(f"protocol error ({exc})", STATUS_CHARS))
        written = reply.get("stderr")
        if type(written) is str and written:
            if hidden:
                self.stderr_hidden = True
            elif not self.stderr:
                self.stderr = written[:STDERR_CHARS]
        if reply.get("ok") is not True:
            error = _learner_exception(reply.get("error") if isinstance(reply.get("error"), dict) else {})
            error.__tg_learner__, error.__tg_hidden__ = True, hidden
            raise error
        if raw:
            return reply.get("value")
        value = wire.decode(reply.get("value"), hook=self._hook)
        if args is not None and in_place:  # only an in-place exercise's call (autograder/write_back.py)
            try:
                back_args = wire.decode(reply.get("args"), hook=self._hook)
                back_kwargs = wire.decode(reply.get("kwargs"), hook=self._hook)
            except wire.WireError:
                back_args = back_kwargs = None
            write_back(args, kwargs, back_args, back_kwargs)
        return value

    def run_shipped(self, func, args, kwargs):
        """``gradlab.grading._remote_runner``: run an @in_learner_process function in the sandbox."""
        source, name = shipped_source(func)
        return self.request("run", args=args, kwargs=kwargs, source=source, name=name)

    def describe(self, names):
        value = self.request("describe", raw=True, names=list(names))
        if type(value) is not dict:
            raise SandboxGone("protocol error (describe)")
        return value


def start_learner(plan, files, limits, uid, deadline, mode=None):
    """Start the sandbox and run the setup cells; a cell that hangs or kills it is skipped on a restart.

    Returns (sandbox or None, cell results, output, incidents). The cells skipped are remembered in
    ``plan.skipped``, so that a later restart (after a test ended the process) skips them too.
    """
    skipped = plan.skipped
    incidents = []
    output = {"stdout": "", "stderr": ""}
    for _attempt in range(MAX_RESTARTS + 1):
        cells = [
            {"label": c["label"], "source": f"raise RuntimeError({skipped[i]!r})" if i in skipped else c["source"]}
            for i, c in enumerate(plan.setup)
        ]
        sandbox = Sandbox(files, limits=limits, uid=uid, mode=mode, exercises=plan.exercises, keep=plan.needed)
        try:
            sandbox.start()
        except SandboxError as exc:
            return None, [], output, [str(exc)]
        current, cell_deadline, timed_out = None, deadline, None
        try:
            sandbox.send({"op": "setup", "cells": cells}, min(deadline, time.monotonic() + 30))
            while True:
                msg = sandbox.recv(min(deadline, cell_deadline), limit=wire.setup_limit(len(cells)))
                if msg.get("op") == "cell" and type(msg.get("index")) is int and 0 <= msg["index"] < len(cells):
                    current = msg["index"]
                    cell_deadline = time.monotonic() + limits.cell_seconds
                elif msg.get("op") == "ready":
                    output = sandbox.cut_output()
                    results = msg.get("cells") if isinstance(msg.get("cells"), list) else []
                    return sandbox, results[:len(cells)], output, incidents  # as many as the plan ran
        except wire.Timeout:
            reason = "timeout"
            sandbox.kill(reason)
            timed_out = (f"timed out after {limits.cell_seconds:g} s" if time.monotonic() < deadline
                         else f"timed out: the job's {limits.wall_seconds:g} s ran out")
        except wire.PeerClosed:
            reason = sandbox.exit_reason()
        except wire.WireError as exc:
            reason = _clip(f"protocol error ({exc})", STATUS_CHARS)
            sandbox.kill(reason)
        output = sandbox.output()
        sandbox.close()
        incidents.append(reason)
        if current is None or current in skipped or time.monotonic() >= deadline:
            return None, [], output, incidents
        label = plan.setup[current]["label"]
        if timed_out:
            skipped[current] = f"{timed_out}; skipped by the grader, and the notebook run again without it"
            plan.notes.append(f"Cell '{label}' {timed_out}; it was skipped and the notebook run again without it.")
        else:
            skipped[current] = (f"skipped by the grader: on a first run this cell ended the learner process "
                                f"({reason})")
            plan.notes.append(f"Cell '{label}' ended your notebook's process ({reason}); it was skipped and "
                              "the notebook run again without it.")
    return None, [], output, incidents
