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

The work is split by job, one module each: ``cells`` (a notebook's cells as text), ``redaction``
(what may reach feedback), ``plan`` (the notebook rebuilt from the source, the test cells, their free
names), ``session`` (the learner's process and the remote calls into it), ``testrun`` (one test cell)
and ``results`` (the result JSON); this module grades one submission (``grade``) and re-exports
their names.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import notebooks
from .cells import (  # noqa: F401 - re-exported: trusted.X names every one
    STUB,
    SubmissionProblem,
    _blocks,
    _norm,
    _unparsed,
    cell_source,
    released_stub,
)
from .plan import (  # noqa: F401 - re-exported: trusted.X names every one
    MAX_NOTEBOOK_BYTES,
    Plan,
    TestCell,
    _parses,
    build_plan,
    free_names,
    read_submission,
)
from .redaction import (  # noqa: F401 - re-exported: trusted.X names every one
    _NUM,
    ARRAY_REPR,
    HIDDEN_MARK,
    INTEGER,
    MAX_INTEGER_RUN,
    MESSAGE_CHARS,
    NUMBER_RUN,
    STATUS_CHARS,
    TYPE_NAME,
    TYPE_WITHHELD,
    VALUES_WITHHELD,
    WITHHELD,
    Secrets,
    _clip,
    _quotes_code,
    _run,
    own_words,
    redact,
    safe_type_name,
    test_message,
    words_only,
)
from .results import (  # noqa: F401 - re-exported: trusted.X names every one
    MAX_NOTES,
    MAX_RESULT_BYTES,
    _clean_cell,
    _failed_tests,
    _fit,
    _redact_output,
    _result,
    _size,
)
from .sandbox import Limits, Sandbox
from .session import (  # noqa: F401 - re-exported: trusted.X names every one
    MAX_RESTARTS,
    STDERR_CHARS,
    TRUSTED_MODULES,
    UNSAFE_STDLIB,
    LearnerException,
    Remote,
    SandboxGone,
    Session,
    _learner_exception,
    _module_allowed,
    shipped_source,
    start_learner,
)
from .testrun import (  # noqa: F401 - re-exported: trusted.X names every one
    HIDDEN_WITHHELD,
    RAISED_HIDDEN,
    STDERR_FAILS,
    STDERR_FAILS_HIDDEN,
    _alarm,
    _bindings,
    _hidden_failure,
    _hidden_from,
    _raised_by_verdict,
    _raised_in_hidden,
    run_test,
)
from .write_back import in_place_exercises

_EXIT = re.compile(r"kernel died \((?:exit code -?\d+|signal \w+)\)")


def _withheld_exit(reason):
    """``reason`` without the exit code or signal that the learner's process chose (after a hidden part ran
    there, they could encode what it saw); the grader's own reasons (timeout, limits) stay."""
    return _EXIT.sub("kernel died (its exit code or signal is withheld: a hidden test had run in it)", reason) \
        if type(reason) is str else reason


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

    tainted = False  # whether a hidden part has sent anything into a learner process of this grading run

    def connect(box):
        session = Session(box, limits, deadline)
        session.tainted = tainted  # a restarted process may have kept what the last one saw (in a file)
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
                tainted = tainted or session.tainted
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
                if session.tainted and session.dead:  # an exit code or a signal is the learner's to choose
                    session.dead = _withheld_exit(session.dead)
                    message = _withheld_exit(message)
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
                          "message": test_message(test, message, plan.secrets,
                                                  hidden=tainted or session.tainted or None)})
        if session.dead and status == "graded":
            status = session.dead
    finally:
        sandbox.close()
    return _result(plan, status=status, tests=tests, cells=cells, output=_redact_output(output, plan),
                   protections=protections, not_enforced=not_enforced, elapsed=time.monotonic() - t0,
                   cpu=sum(box.cpu_seconds for box in boxes))
