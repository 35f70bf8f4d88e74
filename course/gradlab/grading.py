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
