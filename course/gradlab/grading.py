"""What test cells need so that the course's autograder can check learner code from outside.

Under ``nbgrader validate`` or in JupyterLab, a test cell runs in the learner's kernel like any cell.
Under the course's class grader (``python -m autograder grade``) the same test cell runs in the
grader's own, trusted process: the learner's functions become proxies that call into the sandboxed
learner process, and only plain values (numbers, strings, NumPy arrays, torch and TensorFlow tensors,
and lists, tuples and dicts of them) travel back. So a grade never depends on anything the learner's
code can reach.

Some checks must build objects in the learner's process (a torch model and optimizer handed to a
training step the learner repaired). Write them as a function decorated with ``in_learner_process``:
it runs where the learner's code runs, takes the learner's functions as arguments, and returns plain
values that the test cell then compares, in the trusted process, with a reference it computes itself.
Such a function must be self-contained: it imports what it uses and reads no variable of the cell.
"""

from __future__ import annotations

import functools

# Set by the autograder in its trusted process; None everywhere else.
_remote_runner = None


def in_learner_process(func):
    """Run ``func`` in the learner's process when grading; call it directly everywhere else."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _remote_runner is None:
            return func(*args, **kwargs)
        return _remote_runner(func, args, kwargs)

    wrapper.__tg_shipped__ = func
    return wrapper


#: Exercises whose contract is to update their arguments in place (by grade id). Only calls of these are
#: copied back into a test's own variables by the class grader (autograder/write_back.py); any other
#: learner function gets copies, so its changes to its inputs never reach the test.
IN_PLACE_EXERCISES = frozenset({
    "guarded_sgd_step",  # 04: p -= lr * g on the caller's arrays
    "manual_clip_grad_norm_",  # 05: scales each parameter's .grad in place
    "manual_clip_grad_value_",  # 05: clamps each parameter's .grad in place
})


def in_place(func):
    """Declare, in a solution cell, that the exercise ``func`` updates its arguments in place.

    Changes nothing at run time; the class grader reads the decoration from solutions/ (never from a
    submission) and copies such a function's in-place changes back into the test's arguments.
    """
    func.__tg_in_place__ = True
    return func


#: gradlab functions that compute an exercise's answer under another name ("module.function"), by
#: exercise (grade id). The class grader leaves their modules out of that assignment's sandbox, unless
#: the notebook's own cells need the module; then the function is still reachable and the exercise's
#: hidden tests must detect the delegation (``delegates_to``). tests/test_answer_equivalents.py tries
#: every public gradlab function on every exercise's sample inputs, and fails on one that answers an
#: exercise without being listed here.
ANSWER_EQUIVALENTS = {
    "global_norm": ("gradlab.training.grad_norm", "gradlab.tf_models.float64_global_norm",
                    "gradlab.clipping._overflow_safe_norm"),
}


class DelegatedAnswer(Exception):
    """Raised by a function listed in ``ANSWER_EQUIVALENTS`` while ``delegates_to`` watches it."""


_CALLED = []  # what the tripwires recorded (a learner's ``except`` cannot undo it)


def _tripwire(*args, **kwargs):
    import gradlab.grading as grading

    grading._CALLED.append(True)
    raise grading.DelegatedAnswer("this exercise must be written by hand, not delegated to gradlab")


def delegates_to(func, call, names):
    """Which of the functions ``names`` ("module.function") the learner's ``func`` is, or runs while
    ``call()`` runs: an empty list when it computes its answer itself. For an ``@in_learner_process``
    check in a hidden test (run it in the learner's process, where ``func`` lives).

    Each listed function object gets a tripwire code object for the duration of the call, so aliases
    (``global_norm = grad_norm``) and captured references are caught as well as module look-ups.
    """
    import importlib

    hits, swapped = [], []
    try:
        for name in names:
            module, _, attr = name.rpartition(".")
            try:
                target = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                continue
            if target is func or getattr(func, "__wrapped__", None) is target:
                hits.append(name)
            elif getattr(target, "__code__", None) is not None and not target.__code__.co_freevars:
                swapped.append((name, target, target.__code__))
        for _name, target, _ in swapped:
            target.__code__ = _tripwire.__code__
        del _CALLED[:]
        try:
            call()
        except Exception:  # noqa: BLE001 - only whether the answer was delegated matters here
            pass
        if _CALLED:
            hits += [name for name, _, _ in swapped]
    finally:
        for _, target, code in swapped:
            target.__code__ = code
    return sorted(set(hits))
