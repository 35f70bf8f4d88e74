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
