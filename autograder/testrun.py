"""Running one test cell in the trusted process against the learner's session (``run_test``).

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import linecache
import re
import signal
import threading
import warnings
from pathlib import Path

from . import wire
from .plan import free_names
from .redaction import HIDDEN_MARK, TYPE_WITHHELD, _clip, own_words
from .session import LearnerException, Remote, SandboxGone, _module_allowed

STDERR_FAILS = ("your code wrote to stderr (a warning?) during this test: nbgrader scores that 0. "
                "It wrote: {!r}")
# for a call made by a hidden test, nothing the learner's code produced is shown (its stderr, its exception's
# message, a value it returned): the learner could print or raise the hidden inputs and read them here
STDERR_FAILS_HIDDEN = ("your code wrote to stderr (a warning?) during a hidden test: nbgrader scores that 0 "
                       "(what it wrote is withheld for a hidden test)")
RAISED_HIDDEN = "your code raised {} during a hidden test (its message is withheld for a hidden test)"
HIDDEN_WITHHELD = "[message withheld: a hidden test shows no values]"
# once a hidden part has sent anything into the learner's process, that process may have kept it (a hidden
# case's inputs, a shipped function's code) and may show it in any later text: a later test's failure shows
# none of the learner's text either (issue 15, point 8)
STDERR_FAILS_AFTER_HIDDEN = ("your code wrote to stderr (a warning?) during this test: nbgrader scores that 0 "
                             "(what it wrote is withheld: a hidden test has already run in your process)")
RAISED_AFTER_HIDDEN = ("your code raised {} during this test (its message is withheld: a hidden test has "
                       "already run in your process)")
_VERDICT_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


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


def _hidden_failure(test, exc, etype, raised=RAISED_HIDDEN):
    """(error_type, message) for a failure in a test's hidden part (or in any test after a hidden part ran in
    the learner's process: ``raised`` says so), in the test's own words only: no text that the learner's code
    produced (an exception's message, a returned string formatted into a message)."""
    summary = f"The check that failed: {_clip(test.summary, 200)}"
    if getattr(exc, "__tg_learner__", False):
        builtin = isinstance(getattr(builtins, str(etype), None), type) and etype != "LearnerException"
        what = f"a {etype}" if builtin else "an exception"
        return (etype if builtin else TYPE_WITHHELD), f"{raised.format(what)}. {summary}"
    if isinstance(exc, TimeoutError) and str(exc).startswith("test took longer than"):
        return etype, str(exc)
    if isinstance(exc, AssertionError):
        message = str(exc)
        if _raised_by_verdict(exc):
            # its words, not its numbers: a returned array's size, shape or count of wrong entries is the
            # learner's to choose, and could encode a hidden input
            return etype, _VERDICT_NUMBER.sub("N", message)
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
    tainted = session.tainted  # a hidden part ran in this process before this test began
    try:
        with (_alarm(timeout), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink),
              warnings.catch_warnings()):
            warnings.simplefilter("ignore")
            exec(code, ns)
        if session.hidden_from is not None:
            session.tainted = True  # the hidden part ran to its end (requests from it taint it already)
        if session.stderr and not tainted:  # as nbgrader: a test cell with output on stderr scores 0
            return False, None, STDERR_FAILS.format(session.stderr.strip())
        if session.stderr:
            return False, None, STDERR_FAILS_AFTER_HIDDEN
        if session.stderr_hidden:
            return False, None, STDERR_FAILS_HIDDEN
        return True, None, None
    except SandboxGone as exc:
        return False, "SandboxGone", str(exc)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of a test cell fails it
        etype = exc.type_name if isinstance(exc, LearnerException) else type(exc).__name__
        hidden = (getattr(exc, "__tg_hidden__", False) or _raised_in_hidden(exc, filename, session.hidden_from))
        if hidden:
            session.tainted = True
            return (False, *_hidden_failure(test, exc, etype))
        if tainted:
            return (False, *_hidden_failure(test, exc, etype, RAISED_AFTER_HIDDEN))
        return False, etype, str(exc)
    finally:
        session.test_file = session.hidden_from = None
        grading._remote_runner = previous
        sink.close()
