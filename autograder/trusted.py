"""Grade one submission of one assignment: learner code in the sandbox, test cells here.

The notebook that runs in the sandbox is rebuilt from the SOURCE notebook (solutions/), never from
the submission's structure (``build_plan``): for each code cell of the source,

* a solution cell becomes the submission's code cell with the same nbgrader grade_id (the first
  one); a missing, renamed or retyped cell becomes the released stub (``raise
  NotImplementedError()``) and a note in the feedback;
* a test cell is not run there at all;
* a cell tagged ``slow`` in the source is skipped;
* any other code cell is the source's own content.

The submission's markdown, metadata and kernelspec are ignored.

Test cells then run here, in the grader's trusted process (``run_tests``): each cell's source is
compiled under a fake file name registered in ``linecache`` (so ``inspect.getsource`` works for the
functions it defines); the names it reads but never binds are looked up in the learner's namespace:
callables become ``Remote`` proxies, modules are imported afresh here, plain data is copied,
anything else is a handle. ``gradlab.grading._remote_runner`` ships ``@in_learner_process``
functions to the sandbox by source. A test cell passes when it raises nothing; its points come from
the source's nbgrader metadata.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import inspect
import io
import json
import linecache
import re
import signal
import sys
import textwrap
import threading
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks, wire
from .sandbox import Limits, Sandbox, SandboxError, needed_modules
from .write_back import in_place_exercises, write_back

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
MAX_NOTEBOOK_BYTES = 50 << 20
MAX_RESTARTS = 3
MESSAGE_CHARS = 500
STATUS_CHARS = 200
MAX_NOTES = 50
STDERR_CHARS = 200  # of what a test's calls wrote to stderr, quoted in its failure message
STDERR_FAILS = ("your code wrote to stderr (a warning?) during this test: nbgrader scores that 0. "
                "It wrote: {!r}")
# for a call made by a hidden test, nothing the learner's code produced is shown (its stderr, its exception's
# message, a value it returned): the learner could print or raise the hidden inputs and read them here
STDERR_FAILS_HIDDEN = ("your code wrote to stderr (a warning?) during a hidden test: nbgrader scores that 0 "
                       "(what it wrote is withheld for a hidden test)")
RAISED_HIDDEN = "your code raised {} during a hidden test (its message is withheld for a hidden test)"
HIDDEN_WITHHELD = "[message withheld: a hidden test shows no values]"
MAX_RESULT_BYTES = 1 << 20  # of one job's result JSON
# An exception's type name comes from the learner's process (``type("<any text>", (Exception,), {})``):
# only names that look like a (dotted) identifier are shown, and only after the redaction screen.
TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,60}")
TYPE_WITHHELD = "[exception name withheld]"
TRUSTED_MODULES = {"numpy", "torch", "tensorflow", "keras", "gradlab", "matplotlib", "sklearn", "scipy",
                   "tqdm", "ipywidgets", "pandas"}
UNSAFE_STDLIB = {"antigravity", "this", "webbrowser", "turtle", "turtledemo", "idlelib", "tkinter", "pydoc",
                 "ensurepip", "venv", "__phello__", "__hello__"}


class SubmissionProblem(Exception):
    """The submission cannot be graded at all (not JSON, not a notebook, empty ...)."""


# ------------------------------------------------------------------------------------------------ plan


@dataclass
class TestCell:
    grade_id: str
    source: str
    points: float
    summary: str


@dataclass
class Plan:
    setup: list = field(default_factory=list)  # [{"label", "source", "origin"}]
    tests: list = field(default_factory=list)  # [TestCell]
    notes: list = field(default_factory=list)
    secrets: Secrets = field(default_factory=lambda: Secrets())
    exercises: frozenset = frozenset()  # grade ids of the source's solution cells
    needed: tuple = ()  # gradlab modules the source's own setup cells import (sandbox.needed_modules)
    skipped: dict = field(default_factory=dict)  # setup cell index -> why it is skipped on a restart

    @property
    def max_score(self):
        return sum(t.points for t in self.tests)


def cell_source(cell):
    src = cell.get("source", "")
    if isinstance(src, list):
        if not all(isinstance(s, str) for s in src):
            raise SubmissionProblem("a cell's source is not text")
        return "".join(src)
    if not isinstance(src, str):
        raise SubmissionProblem("a cell's source is not text")
    return src


def released_stub(source):
    """What nbgrader's release leaves of a solution cell: the solution block replaced by the stub."""
    if "### BEGIN SOLUTION" not in source:
        return STUB
    out, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB.splitlines()]
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _norm(text):
    return " ".join(text.split())


def _blocks(source, begin, end):
    """(inside, outside): the lines between the markers, and the others (markers dropped)."""
    inside, outside, on = [], [], False
    for line in source.splitlines():
        if begin in line:
            on = True
        elif end in line:
            on = False
        else:
            (inside if on else outside).append(line)
    return "\n".join(inside), "\n".join(outside)


def _unparsed(source):
    try:
        return ast.unparse(ast.parse(source))
    except SyntaxError:
        return ""


class Secrets:
    """Hidden-test and solution text, as 20-character shingles that never occur in the released text.

    ``found_in(text)`` is true when ``text`` quotes any 20 consecutive characters (whitespace
    collapsed) of hidden tests or solutions, in their source form or as ``ast.unparse`` writes them
    (the form in which test functions are shipped to the learner's process).
    """

    K = 20

    def __init__(self, source_nb=None):
        self.grams = set()
        secret, public = [], []
        for cell in (source_nb or {}).get("cells", []):
            src = cell_source(cell)
            hidden, visible = _blocks(src, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
            solution, outside = _blocks(visible, "### BEGIN SOLUTION", "### END SOLUTION")
            secret += [hidden, solution]
            public += [outside, _unparsed(outside)]
            if hidden:
                secret.append(_unparsed(src.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", "")))
        for text in secret:
            self.grams |= self._shingles(text)
        for text in public:
            flat = _norm(text)
            for i in range(len(flat) - self.K + 1):
                self.grams.discard(flat[i:i + self.K])

    def _shingles(self, text):
        flat = _norm(text)
        return {flat[i:i + self.K] for i in range(len(flat) - self.K + 1)}

    def found_in(self, text):
        flat = _norm(text or "")
        return any(flat[i:i + self.K] in self.grams for i in range(len(flat) - self.K + 1))


def redact(text, secrets):
    """``text``, unless it quotes hidden-test or solution source."""
    if text and secrets.found_in(text):
        return "[message withheld: it quotes grader test or solution code]"
    return text


WITHHELD = "[message withheld: it quotes grader test or solution code]"
HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
_NUM = r"(?<![\w.])[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)(?![\w.])"
NUMBER_RUN = re.compile(rf"{_NUM}(?:[\s,;:\[\]()]+{_NUM}){{3,}}")  # four numbers or more in a row
ARRAY_REPR = re.compile(r"\b(?:array|tensor|Tensor|tf\.Tensor)\((?:[^()]|\([^()]*\))*\)?")
VALUES_WITHHELD = "[values withheld]"
INTEGER = re.compile(r"[-+]?\d+")
MAX_INTEGER_RUN = 6  # a shape or a few indices, e.g. "N, T, D, H = (2, 5, 3, 4)", may stay


def _run(match):
    numbers = re.findall(_NUM, match.group(0))
    if len(numbers) <= MAX_INTEGER_RUN and all(INTEGER.fullmatch(n) for n in numbers):
        return match.group(0)
    return VALUES_WITHHELD


def words_only(text):
    """``text`` with array reprs and runs of four or more numbers (but short runs of integers, such as
    a shape) replaced by a placeholder."""
    text = ARRAY_REPR.sub(VALUES_WITHHELD, text)
    return NUMBER_RUN.sub(_run, text)


def own_words(source, message):
    """The words of the ``assert ..., msg`` of ``source`` that raised ``message``, or None.

    A plain string message is returned as written; an f-string's formatted values become "...",
    so that what is left is what the test's author wrote for the learner, and no value.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is None:
            continue
        msg = node.msg
        if isinstance(msg, ast.Constant) and type(msg.value) is str and msg.value == message:
            return msg.value
        if isinstance(msg, ast.JoinedStr):
            parts = [(re.escape(v.value), v.value) if isinstance(v, ast.Constant) else (".*?", "...")
                     for v in msg.values]
            if re.fullmatch("".join(p for p, _ in parts), message, re.S):
                return "".join(w for _, w in parts)
    return None


def test_message(test, message, secrets):
    """A test's failure message fit for feedback.

    Clipped, then, for a test cell with hidden tests, reduced to its words (``words_only``: no array
    and no run of numbers, whatever the test's own message says); then screened (``redact``). A
    message withheld by the screen still gives a hint: the failing assertion's own words where it
    has some (``own_words``, values left out), else the test's docstring line.
    """
    if message is None:
        return None
    hidden = HIDDEN_MARK in test.source
    clipped = _clip(message)
    text = words_only(clipped) if hidden else clipped
    if not secrets.found_in(clipped) and not secrets.found_in(text):
        return text
    long_or_odd = type(message) is not str or len(message) > 20_000  # a lazy regex over megabytes: skip
    words = None if long_or_odd else own_words(test.source, message)
    if words is not None:
        words = _clip(words_only(words) if hidden else words)
        if not _quotes_code(words, secrets):
            return f"{words} [the rest of this message is withheld]" if words != text else words
    return f"{WITHHELD}. The check that failed: {_clip(test.summary, 200)}"


def _quotes_code(words, secrets):
    """Whether ``words`` (from an assertion's message) hold code: an assertion message is text, so
    anything with brackets, operators or a call in it is treated as code."""
    return bool(re.search(r"[(){}\[\]=<>]|\bdef\b|\blambda\b", words)) and secrets.found_in(words)


def safe_type_name(name, secrets):
    """An exception type name fit for feedback: an identifier that quotes no secret, else a placeholder."""
    if name is None:
        return None
    if type(name) is not str or not TYPE_NAME.fullmatch(name) or secrets.found_in(name):
        return TYPE_WITHHELD
    return name


def read_submission(path):
    """The submission notebook as a dict, or SubmissionProblem saying why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise SubmissionProblem("missing notebook")
    if path.is_symlink():
        raise SubmissionProblem("invalid notebook (a symbolic link)")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionProblem("invalid notebook (empty file)")
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionProblem(f"invalid notebook (larger than {MAX_NOTEBOOK_BYTES >> 20} MiB)")
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SubmissionProblem("invalid notebook (malformed JSON)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionProblem("invalid notebook (no list of cells)")
    return nb


def build_plan(source_nb, submission_nb):
    """The cells to run in the sandbox and the test cells to run here (see the module docstring)."""
    plan = Plan(secrets=Secrets(source_nb))
    plan.exercises = frozenset(notebooks.grade_id(c) for c in source_nb.get("cells", [])
                               if notebooks.is_solution(c) and notebooks.grade_id(c))
    by_id, seen_dupes = {}, set()
    for cell in (submission_nb or {}).get("cells", []):
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata")
        nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if not isinstance(gid, str):
            continue
        if gid in by_id:
            seen_dupes.add(gid)
            continue
        by_id[gid] = cell
    for index, cell in enumerate(source_nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        gid = notebooks.grade_id(cell) or f"cell {index}"
        src = cell_source(cell)
        if notebooks.is_test(cell):
            doc = ast.get_docstring(ast.parse(src)) if _parses(src) else None
            summary = (doc or gid).strip().splitlines()[0] if (doc or gid).strip() else gid
            points = float(notebooks.nbgrader_meta(cell).get("points", 0) or 0)
            plan.tests.append(TestCell(gid, src, points, summary))
        elif notebooks.is_solution(cell):
            theirs = by_id.get(gid)
            learner_src = None
            if theirs is None:
                plan.notes.append(f"Exercise cell '{gid}' was not found in your notebook (deleted, or its "
                                  "grade_id changed); it was graded as left blank.")
            elif theirs.get("cell_type") != "code":
                plan.notes.append(f"Exercise cell '{gid}' is no longer a code cell; it was graded as left blank.")
            else:
                try:
                    learner_src = cell_source(theirs)
                except SubmissionProblem:
                    plan.notes.append(f"Exercise cell '{gid}' has unreadable source; graded as left blank.")
            if gid in seen_dupes:
                plan.notes.append(f"Exercise cell '{gid}' appears more than once; only the first one was used.")
            origin = "learner" if learner_src is not None else "stub"
            plan.setup.append({"label": gid, "source": learner_src if learner_src is not None
                               else released_stub(src), "origin": origin})
        elif notebooks.is_slow(cell):
            continue
        else:
            plan.setup.append({"label": gid, "source": src, "origin": "course"})
    plan.needed = tuple(needed_modules([c["source"] for c in plan.setup if c["origin"] == "course"] + [
        released_stub(cell_source(c)) for c in source_nb.get("cells", []) if notebooks.is_solution(c)]))
    return plan


def _parses(src):
    try:
        ast.parse(src)
        return True
    except SyntaxError:
        return False


# ------------------------------------------------------------------------------------------ free names


def free_names(source):
    """Names the cell reads but never binds anywhere, builtins excluded, in order of appearance."""
    tree = ast.parse(source)
    bound, loaded = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    out = []
    for name in loaded:
        if name not in bound and not hasattr(builtins, name) and name not in out:
            out.append(name)
    return out


def _module_allowed(name):
    top = name.split(".")[0]
    return top in TRUSTED_MODULES or (top in sys.stdlib_module_names and top not in UNSAFE_STDLIB)


# ---------------------------------------------------------------------------------------------- remote


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
        hidden = self._called_from_hidden()
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


# ----------------------------------------------------------------------------------------------- setup


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


# ----------------------------------------------------------------------------------------------- tests


@contextlib.contextmanager
def _alarm(seconds):
    """Raise TimeoutError in the main thread after ``seconds`` (a guard on trusted test code)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _raise(*_):
        raise TimeoutError(f"test took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _bindings(session, description, names):
    ns = {}
    for name in names:
        info = description.get(name)
        if not isinstance(info, dict):
            continue
        kind = info.get("kind")
        if kind in ("callable", "other") and type(info.get("handle")) is int:
            ns[name] = Remote(session, info["handle"], name)
        elif kind == "module" and isinstance(info.get("name"), str) and _module_allowed(info["name"]):
            try:
                ns[name] = importlib.import_module(info["name"])
            except Exception:
                pass
        elif kind == "value":
            try:
                ns[name] = wire.decode(info.get("value"), hook=session._hook)
            except wire.WireError:
                pass
    return ns


def _hidden_from(source):
    """The line (1-based) where a test cell's hidden part begins, or None."""
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip() == HIDDEN_MARK:
            return number
    return None


def _raised_in_hidden(exc, filename, hidden_from):
    """Whether ``exc`` was raised while a hidden line of the test cell ``filename`` was running."""
    if hidden_from is None:
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename and tb.tb_lineno >= hidden_from:
            return True
        tb = tb.tb_next
    return False


def _raised_by_verdict(exc):
    """Whether the innermost frame of ``exc`` is gradlab.verdict's (a comparison that fails in words)."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and Path(last.tb_frame.f_code.co_filename).name == "verdict.py" \
        and Path(last.tb_frame.f_code.co_filename).parent.name == "gradlab"


def _hidden_failure(test, exc, etype):
    """(error_type, message) for a failure in a test's hidden part, in the test's own words only: no text
    that the learner's code produced (an exception's message, a returned string formatted into a message)."""
    summary = f"The check that failed: {_clip(test.summary, 200)}"
    if getattr(exc, "__tg_learner__", False):
        builtin = isinstance(getattr(builtins, str(etype), None), type) and etype != "LearnerException"
        what = f"a {etype}" if builtin else "an exception"
        return (etype if builtin else TYPE_WITHHELD), f"{RAISED_HIDDEN.format(what)}. {summary}"
    if isinstance(exc, TimeoutError) and str(exc).startswith("test took longer than"):
        return etype, str(exc)
    if isinstance(exc, AssertionError):
        message = str(exc)
        if _raised_by_verdict(exc):
            return etype, message
        long_or_odd = len(message) > 20_000
        words = None if long_or_odd or not message else own_words(test.source, message)
        if words:
            return etype, words if words == message else f"{words} [the rest of this message is withheld]"
    return etype, f"{HIDDEN_WITHHELD}. {summary}" if str(exc) else summary


def run_test(test, session, description, timeout):
    """Execute one test cell here; returns (passed, error_type, message)."""
    filename = f"<test {test.grade_id}>"
    linecache.cache[filename] = (len(test.source), None, test.source.splitlines(True), filename)
    ns = {"__builtins__": builtins, "__name__": "__tg_test__"}
    try:
        code = compile(test.source, filename, "exec")
    except SyntaxError:
        return False, "GraderError", "this test cell is not plain Python"
    names = free_names(test.source)
    ns.update(_bindings(session, description, names))
    import gradlab.grading as grading

    previous = grading._remote_runner
    grading._remote_runner = session.run_shipped
    sink = io.StringIO()
    session.stderr, session.stderr_hidden = "", False
    session.test_file, session.hidden_from = filename, _hidden_from(test.source)
    try:
        with (_alarm(timeout), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")
            exec(code, ns)
        if session.stderr:  # as nbgrader: a test cell with output on stderr scores 0
            return False, None, STDERR_FAILS.format(session.stderr.strip())
        if session.stderr_hidden:
            return False, None, STDERR_FAILS_HIDDEN
        return True, None, None
    except SandboxGone as exc:
        return False, "SandboxGone", str(exc)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of a test cell fails it
        etype = exc.type_name if isinstance(exc, LearnerException) else type(exc).__name__
        hidden = (getattr(exc, "__tg_hidden__", False) or _raised_in_hidden(exc, filename, session.hidden_from))
        if hidden:
            return (False, *_hidden_failure(test, exc, etype))
        return False, etype, str(exc)
    finally:
        session.test_file = session.hidden_from = None
        grading._remote_runner = previous
        sink.close()


def _result(plan, *, status, tests, cells=(), output=None, notes=(), protections=(), not_enforced=(),
            elapsed=0.0, cpu=0.0):
    score = sum(t["score"] for t in tests)
    return _fit({
        "score": round(score, 6),
        "max_score": round(plan.max_score, 6),
        "status": redact(_clip(str(status), STATUS_CHARS), plan.secrets),
        "tests": tests,
        "cells": list(cells),
        "notes": [redact(_clip(str(n)), plan.secrets) for n in (list(plan.notes) + list(notes))[:MAX_NOTES]],
        "output": output or {"stdout": "", "stderr": ""},
        "protections": list(protections),
        "not_enforced": list(not_enforced),
        "elapsed_s": round(elapsed, 3),
        "sandbox_cpu_s": round(cpu, 3),
    })


def _size(data):
    return len(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def _fit(result, limit=None):
    """``result`` cut down, if need be, until its JSON is at most ``limit`` bytes (MAX_RESULT_BYTES).

    Every part is already bounded (tests and cells by the plan, each string clipped, output by the
    sandbox); this is the last guard, shortening first the learner's output, then cell and test
    messages, then dropping cell entries.
    """
    limit = limit or MAX_RESULT_BYTES
    if _size(result) <= limit:
        return result
    result["notes"] = [*result["notes"], "This result was cut down to stay within the grader's size limit."]
    for chars in (4000, 500, 0):
        result["output"] = {k: _clip(v, chars) for k, v in result["output"].items()}
        if _size(result) <= limit:
            return result
    for chars in (100, 0):
        for entry in result["cells"] + result["tests"]:
            if entry.get("message"):
                entry["message"] = _clip(entry["message"], chars)
        if _size(result) <= limit:
            return result
    while result["cells"] and _size(result) > limit:
        result["cells"] = result["cells"][: len(result["cells"]) // 2]
    return result


def _failed_tests(plan, reason):
    return [{"grade_id": t.grade_id, "summary": t.summary, "points": t.points, "score": 0.0, "passed": False,
             "error_type": None, "message": redact(_clip(reason), plan.secrets)} for t in plan.tests]


def _clip(text, n=MESSAGE_CHARS):
    """``text`` (anything: it may come from the learner's process) as a string of at most ``n`` characters
    and a marker; clipped before it is screened, so screening costs no more than the clipped text."""
    if type(text) is not str:
        text = "" if text is None else f"[{type(text).__name__}]"
    return text if len(text) <= n else text[:n] + " [...]"


def grade(source_path, submission_path, files=None, *, limits=None, uid=None, mode=None):
    """Grade one notebook against the source notebook at ``source_path``; returns the result dict.

    ``files`` is the folder copied into the sandbox as the learner's working directory (default: the
    notebook's folder). Never raises for anything a submission can do.

    A test that ends the learner's process (``os._exit`` in a call, a crash, a call past its time
    limit) fails, and the notebook is run again (at most MAX_RESTARTS times, within the wall clock)
    for the tests after it. Only the first run's output and cell results are kept: what a restarted
    run prints may already quote test code shipped to the process that ended.
    """
    limits = limits or Limits()
    t0 = time.monotonic()
    source_nb = notebooks.read(source_path)
    try:
        submission = read_submission(submission_path)
    except SubmissionProblem as exc:
        plan = build_plan(source_nb, None)
        return _result(plan, status=str(exc), tests=_failed_tests(plan, "not graded: " + str(exc)),
                       elapsed=time.monotonic() - t0)
    plan = build_plan(source_nb, submission)
    files = Path(files) if files is not None else Path(submission_path).parent
    deadline = t0 + limits.wall_seconds
    sandbox, cells, output, incidents = start_learner(plan, files, limits, uid, deadline, mode)
    status = incidents[0] if incidents else "graded"
    for index, cell in enumerate(cells):
        err = cell.get("error") if isinstance(cell, dict) else None
        if isinstance(err, dict) and err.get("type") == "MemoryError" and status == "graded":
            status = "memory limit"
        course_cell = index < len(plan.setup) and plan.setup[index]["origin"] == "course"
        if (course_cell and isinstance(err, dict) and err.get("type") in ("ModuleNotFoundError", "ImportError")
                and "gradlab" in str(err.get("message", "")) and status == "graded"):
            # the course's own cell cannot import the course's own modules: the grader's environment
            # is at fault, never the learner (docs/GRADING.md, the sandbox)
            status = f"grader error (a course cell cannot import gradlab: {str(err.get('message'))[:80]})"
    probe = Sandbox(limits=limits, uid=uid, mode=mode, exercises=plan.exercises, keep=plan.needed)
    protections, not_enforced = probe.protections, probe.not_enforced
    cells = [_clean_cell(c, plan, i) for i, c in enumerate(cells) if isinstance(c, dict)]
    for i, why in plan.skipped.items():  # said by the grader, not by what the re-run reported for that cell
        if i < len(cells):
            cells[i].update(ok=False, error_type="TimeoutError" if why.startswith("timed out") else "ProcessEnded",
                            message=why)
    if sandbox is None:
        reason = status if status != "graded" else "sandbox failed to start"
        return _result(plan, status=reason, tests=_failed_tests(plan, f"not run: {reason}"), cells=cells,
                       output=_redact_output(output, plan), protections=protections,
                       not_enforced=not_enforced, elapsed=time.monotonic() - t0)
    names = sorted({n for t in plan.tests if _parses(t.source) for n in free_names(t.source)})
    tests, boxes, restarts = [], [sandbox], 0

    def connect(box):
        session = Session(box, limits, deadline)
        session.in_place = in_place_exercises(source_nb)
        try:
            description = session.describe(names) if names else {}
        except (SandboxGone, Exception) as exc:
            description = {}
            if not session.dead:
                session.dead = f"protocol error ({type(exc).__name__})"
        return session, description

    session, description = connect(sandbox)
    try:
        for test in plan.tests:
            if (session.dead and tests and restarts < MAX_RESTARTS
                    and time.monotonic() < deadline - limits.cell_seconds / 4):
                restarts += 1
                sandbox.close()
                fresh, _cells, _output, _incidents = start_learner(plan, files, limits, uid, deadline, mode)
                if fresh is not None:  # its cells and output are not kept (see the docstring)
                    sandbox = fresh
                    boxes.append(fresh)
                    session, description = connect(sandbox)
            if session.dead:
                passed, etype, message = False, "SandboxGone", session.dead
                message = f"not run: the learner process ended ({message})"
            else:
                passed, etype, message = run_test(test, session, description,
                                                  max(1.0, deadline - time.monotonic()))
                if etype == "SandboxGone":
                    message = f"the learner process ended during this test ({message})"
                    if status == "graded":
                        status = session.dead
                    plan.notes.append(f"Your code ended the notebook's process during the test "
                                      f"'{test.grade_id}' ({session.dead})" + (
                                          "; the notebook was run again for the tests after it."
                                          if test is not plan.tests[-1] else "."))
            if etype == "SandboxGone":
                etype = None
            tests.append({"grade_id": test.grade_id, "summary": test.summary, "points": test.points,
                          "score": test.points if passed else 0.0, "passed": passed,
                          "error_type": safe_type_name(etype, plan.secrets),
                          "message": test_message(test, message, plan.secrets)})
        if session.dead and status == "graded":
            status = session.dead
    finally:
        sandbox.close()
    return _result(plan, status=status, tests=tests, cells=cells, output=_redact_output(output, plan),
                   protections=protections, not_enforced=not_enforced, elapsed=time.monotonic() - t0,
                   cpu=sum(box.cpu_seconds for box in boxes))


def _clean_cell(cell, plan, index):
    """A setup cell's result as the learner's process reported it, screened; the label is ours."""
    label = plan.setup[index]["label"] if index < len(plan.setup) else f"cell {index}"
    out = {"label": _clip(str(label), 100), "ok": cell.get("ok") is True}
    err = cell.get("error")
    if isinstance(err, dict):
        out["error_type"] = safe_type_name(_clip(err.get("type"), 100), plan.secrets) or TYPE_WITHHELD
        out["message"] = redact(_clip(err.get("message")), plan.secrets)
    elif not out["ok"]:
        out["error_type"], out["message"] = TYPE_WITHHELD, ""
    return out


def _redact_output(output, plan):
    """Learner output with every line that quotes hidden-test or solution source withheld."""
    out = {}
    for name, text in (output or {}).items():
        out[name] = "\n".join("[line withheld: it quotes grader test or solution code]"
                              if plan.secrets.found_in(line) else line for line in str(text).split("\n"))
    return out
