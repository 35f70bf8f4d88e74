"""Progress bars that reach their end: the ``progress=`` of gradlab's trainers. Defined in notebook 03.

A learner waiting on a cell sees a ``tqdm.auto`` bar (a widget in JupyterLab, text elsewhere; never
plain tqdm, which writes to stderr, and nbgrader scores a grade cell with stderr output as 0). A run
that stops early (it diverged) still brings its bar to the end, so a finished cell never shows a
bar stalled part way. ``gradlab.training.train`` / ``train_many`` and ``gradlab.torch_models.fit_rnn``
take ``progress=`` and pass it here; ``gradlab.tf_models.ProgressBar`` does the same for Keras.
"""

from __future__ import annotations

import contextlib


class _Counter:
    """Counts the steps shown on a bar (or on none), so that the bar can be brought to its end."""

    def __init__(self, bar):
        self.bar, self.done = bar, 0

    def update(self, k=1):
        self.done += k
        if self.bar is not None:
            self.bar.update(k)


@contextlib.contextmanager
def progress_bar(progress, total):
    """A progress bar over ``total`` steps, as the trainers' ``progress=`` shows it. Defined in notebook 03.

    ``progress``: False or None (no bar), True or a text (a new ``tqdm.auto`` bar with that label,
    closed on leaving), or an existing bar (advanced, left open: one bar shared by several runs).
    Yields an object with ``update(k)``; on leaving, also after an early stop or an error, the bar is
    advanced to ``total`` so that it never stalls short of its end.
    """
    own = progress is True or isinstance(progress, str)
    if own:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=progress if isinstance(progress, str) else None, leave=False)
    else:
        bar = progress or None
    counter = _Counter(bar)
    try:
        yield counter
    finally:
        if bar is not None:
            bar.update(total - counter.done)  # a run stopped early still reaches its end
            if own:
                bar.close()
