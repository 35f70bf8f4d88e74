"""Small plotting helpers for the notebooks.

Every figure drawn here has a title and labelled axes with units, so that notebooks stay short:

* ``plot_loss_curve(ax, losses, ...)``: a training curve on a log scale, with an optional held-out
  curve and a dashed "predict the mean" baseline.
* ``plot_hidden_states(ax, h, ...)``: the trajectories of a few hidden units over time.
* ``pulse_response(rnn_forward, gain, num_steps, num_hiddens)``: the hidden states of an RNN whose
  input is a single pulse at t = 1 followed by silence, with an orthogonal recurrent matrix scaled by
  ``gain`` (so gain is both its spectral radius and its largest singular value).
* ``HiddenStateExplorer`` and ``SpikeAlarmExplorer``: notebook 01's and 04's widgets, defined in
  ``gradlab.explorers.hidden_state`` and ``gradlab.explorers.spike_alarm`` (imported here too).

Nothing here answers an exercise: ``pulse_response`` and the explorers take the learner's
``rnn_forward`` or ``detect_spikes`` as an argument.
"""

from __future__ import annotations

import numpy as np

# The explorers live in gradlab.explorers; notebook 01's pulse response and explorer, and notebook 04's
# explorer, stay importable from here (tests/test_gradlab_plots.py and notebook 01's experiment use them).
from .explorers.hidden_state import HiddenStateExplorer, _orthogonal, pulse_response  # noqa: F401
from .explorers.spike_alarm import SpikeAlarmExplorer  # noqa: F401

__all__ = ["plot_loss_curve", "plot_hidden_states", "pulse_response", "HiddenStateExplorer",
           "SpikeAlarmExplorer"]


def plot_loss_curve(ax, losses, *, test_steps=None, test_losses=None, baseline=None,
                    title="Training loss", ylabel="loss (mean squared error, target units squared)",
                    label="training loss (one mini-batch)", log=True):
    """Draw a loss curve (one value per step) on ``ax``; returns ``ax``.

    ``test_steps``/``test_losses`` add a held-out curve; ``baseline`` a dashed horizontal line (the
    loss of predicting the mean, say). Non-finite losses are left out of the drawing: the curve simply
    stops where training diverged. On the log scale the view is limited to [1e-150, 1e150] (beyond that
    matplotlib's tick computation overflows); larger losses leave the top of the plot.
    Defined in notebook 01.
    """
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-d sequence, got shape {losses.shape}")
    steps = np.arange(losses.size)
    finite = np.isfinite(losses)
    ax.plot(steps[finite], losses[finite], lw=0.8, alpha=0.6, label=label)
    if test_losses is not None:
        if test_steps is None or len(test_steps) != len(test_losses):
            raise ValueError("test_steps and test_losses must be given together, with the same length")
        ax.plot(test_steps, test_losses, "o-", ms=3, lw=1.5, label="held-out loss")
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="tab:red", lw=1.2, label=f"predict the mean: {baseline:.3g}")
    if log:
        shown = losses[finite & (losses > 0)]
        if test_losses is not None:
            t = np.asarray(test_losses, dtype=float)
            shown = np.concatenate([shown, t[np.isfinite(t) & (t > 0)]])
        if shown.size:  # explicit limits, set first: autoscaling a diverging run's 1e300 losses overflows
            ax.set_ylim(max(shown.min(), 1e-150) / 2, min(shown.max(), 1e150) * 2)
        ax.set_yscale("log")
    ax.set_xlabel("SGD step (mini-batches seen)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_hidden_states(ax, h, *, units=6, title="Hidden-state trajectories", sequence=0):
    """Plot ``h[sequence, :, j]`` against time for the first ``units`` hidden units; returns ``ax``.

    ``h`` has shape (N, T, H), as ``rnn_forward`` returns it; ``h[:, t - 1]`` is h_t, t = 1, ..., T.
    Defined in notebook 01 (its hidden-state trajectories).
    """
    h = np.asarray(h)
    if h.ndim != 3:
        raise ValueError(f"h must have shape (N, T, H), got {h.shape}")
    for j in range(min(units, h.shape[2])):
        ax.plot(np.arange(1, h.shape[1] + 1), h[sequence, :, j], lw=1.2, label=f"unit {j}")
    ax.set_xlabel("time step t (steps)")
    ax.set_ylabel("hidden state h_t[j] (tanh units, in [-1, 1])")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return ax
