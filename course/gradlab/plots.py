"""Small plotting helpers for the notebooks, and notebook 01's hidden-state explorer.

Every figure drawn here has a title and labelled axes with units, so that notebooks stay short:

* ``plot_loss_curve(ax, losses, ...)``: a training curve on a log scale, with an optional held-out
  curve and a dashed "predict the mean" baseline.
* ``plot_hidden_states(ax, h, ...)``: the trajectories of a few hidden units over time.
* ``pulse_response(rnn_forward, gain, num_steps, num_hiddens)``: the hidden states of an RNN whose
  input is a single pulse at t = 1 followed by silence, with an orthogonal recurrent matrix scaled by
  ``gain`` (so gain is both its spectral radius and its largest singular value).
* ``HiddenStateExplorer(rnn_forward)``: sliders for the gain, the sequence length and the number of
  hidden units -> the pulse response, redrawn live (notebook 01's widget).

Nothing here answers an exercise: the explorer takes the learner's ``rnn_forward`` as an argument.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_loss_curve", "plot_hidden_states", "pulse_response", "HiddenStateExplorer"]

_DPI = 80


def plot_loss_curve(ax, losses, *, test_steps=None, test_losses=None, baseline=None,
                    title="Training loss", ylabel="loss (mean squared error, target units squared)",
                    label="training loss (one mini-batch)", log=True):
    """Draw a loss curve (one value per step) on ``ax``; returns ``ax``.

    ``test_steps``/``test_losses`` add a held-out curve; ``baseline`` a dashed horizontal line (the
    loss of predicting the mean, say). Non-finite losses are left out of the drawing: the curve simply
    stops where training diverged. On the log scale the view is limited to [1e-150, 1e150] (beyond that
    matplotlib's tick computation overflows); larger losses leave the top of the plot.
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


@functools.lru_cache(maxsize=64)
def _orthogonal(num_hiddens, seed):
    """A random orthogonal (H, H) matrix: every singular value and every |eigenvalue| is 1 (read-only)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(num_hiddens, num_hiddens)))
    q = q * np.sign(np.diag(r))
    q.flags.writeable = False
    return q


def pulse_response(rnn_forward, gain, num_steps, num_hiddens, *, amplitude=1.0, input_size=4, seed=0):
    """Hidden states (1, T, H) of an RNN fed one pulse at t = 1 and zeros afterwards.

    ``Wh = gain * Q`` with Q a random orthogonal matrix, so ``gain`` is both the spectral radius and the
    largest singular value of Wh; ``h0`` and ``b`` are zero and ``Wx`` ~ N(0, 1/D). Since
    |tanh(z)| <= |z| and ||h Q|| = ||h||, every later step multiplies the state's norm by at most
    ``gain``: ||h_t|| <= gain**(t - 1) * ||h_1||, where h_t = h[:, t - 1].
    """
    if not callable(rnn_forward):
        raise TypeError(f"rnn_forward must be a function (the one you wrote in the notebook), got {rnn_forward!r}")
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain!r}")
    if int(num_steps) != num_steps or num_steps < 1 or int(num_hiddens) != num_hiddens or num_hiddens < 1:
        raise ValueError(f"num_steps and num_hiddens must be positive integers, got {num_steps!r}, {num_hiddens!r}")
    num_steps, num_hiddens = int(num_steps), int(num_hiddens)
    rng = np.random.default_rng(seed + 1)
    Wx = rng.normal(0.0, 1.0 / np.sqrt(input_size), size=(input_size, num_hiddens))
    X = np.zeros((1, num_steps, input_size))
    X[0, 0] = amplitude * rng.normal(size=input_size) / np.sqrt(input_size)
    h, _ = rnn_forward(X, np.zeros((1, num_hiddens)), Wx, gain * _orthogonal(num_hiddens, seed),
                       np.zeros(num_hiddens))
    return np.asarray(h)


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


class HiddenStateExplorer:
    """Gain, sequence length and hidden size -> the response of the learner's RNN to a single pulse.

    Build it with the notebook's ``rnn_forward``; display ``.widget``. ``redraw(gain=..., num_steps=...,
    num_hiddens=...)`` draws one frame without a browser and returns the hidden states (1, T, H). The
    left panel shows a few units over time, the right one ||h_t|| on a log scale beside the bound
    gain**(t - 1) * ||h_1|| (time steps counted from 1, h_t = h[:, t - 1]).
    """

    def __init__(self, rnn_forward, *, gain=0.9, num_steps=60, num_hiddens=32, max_steps=200, seed=0):
        if not callable(rnn_forward):
            raise TypeError(f"rnn_forward must be a function (the one you wrote in the notebook), got {rnn_forward!r}")
        import ipywidgets as w

        self.rnn_forward = rnn_forward
        self.seed = seed
        self.gain = w.FloatSlider(value=gain, min=0.1, max=2.0, step=0.05, description="gain",
                                  readout_format=".2f")
        self.num_steps = w.IntSlider(value=num_steps, min=2, max=max_steps, description="T")
        self.num_hiddens = w.IntSlider(value=num_hiddens, min=2, max=128, step=2, description="num_hiddens")
        self.image = w.Image(format="png")
        self.status = w.HTML()

        self.fig = Figure(figsize=(10.0, 3.8), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax_units, self.ax_norm = self.fig.subplots(1, 2)
        self._unit_lines = [self.ax_units.plot([], [], lw=1.2)[0] for _ in range(6)]
        self.ax_units.set_xlabel("time step t (steps)")
        self.ax_units.set_ylabel("hidden state h_t[j] (tanh units)")
        self.ax_units.grid(True, alpha=0.3)
        (self._norm_line,) = self.ax_norm.plot([], [], "o-", ms=2, lw=1.2, label=r"$\|h_t\|$ measured")
        (self._bound_line,) = self.ax_norm.plot([], [], "--", color="tab:red", lw=1.2,
                                                label=r"bound gain$^{t-1}\,\|h_1\|$")
        (self._ceiling_line,) = self.ax_norm.plot([], [], ":", color="gray", lw=1.2,
                                                  label=r"ceiling $\sqrt{H}$ (every unit at $\pm 1$)")
        self.ax_norm.set_yscale("log")
        self.ax_norm.set_xlabel("time step t (steps)")
        self.ax_norm.set_ylabel(r"$\|h_t\|$ (tanh units, log scale)")
        self.ax_norm.set_title("What is left of the pulse")
        self.ax_norm.grid(True, alpha=0.3)
        self.ax_norm.legend(fontsize=8, loc="lower left")
        self.ax_units.set_title("Six hidden units after a pulse at t = 1 (gain = 0.00)")
        self.fig.tight_layout()  # once: redraws keep the layout, which keeps them fast

        for control in (self.gain, self.num_steps, self.num_hiddens):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.gain, self.num_steps, self.num_hiddens]), self.status, self.image])
        self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def redraw(self, gain=None, num_steps=None, num_hiddens=None):
        """Draw one frame (the controls' values for arguments left as None); returns h (1, T, H)."""
        gain = self.gain.value if gain is None else float(gain)
        num_steps = self.num_steps.value if num_steps is None else int(num_steps)
        num_hiddens = self.num_hiddens.value if num_hiddens is None else int(num_hiddens)
        h = pulse_response(self.rnn_forward, gain, num_steps, num_hiddens, seed=self.seed)
        t = np.arange(1, num_steps + 1)
        for j, line in enumerate(self._unit_lines):
            line.set_data(t, h[0, :, j] if j < num_hiddens else np.full(num_steps, np.nan))
        self.ax_units.set_xlim(1, max(num_steps, 2))
        peak = float(np.max(np.abs(h[0, :, : len(self._unit_lines)])))
        self.ax_units.set_ylim(-1.1 * peak - 1e-12, 1.1 * peak + 1e-12)
        self.ax_units.set_title(f"Six hidden units after a pulse at t = 1 (gain = {gain:.2f})")
        norms = np.linalg.norm(h[0], axis=1)
        bound = norms[0] * gain ** (t - 1.0)
        self._norm_line.set_data(t, np.where(norms > 0, norms, np.nan))
        self._bound_line.set_data(t, np.where(bound > 0, bound, np.nan))
        ceiling = np.sqrt(num_hiddens)
        self._ceiling_line.set_data([1, max(num_steps, 2)], [ceiling, ceiling])
        shown = np.concatenate([norms[norms > 0], bound[(bound > 0) & np.isfinite(bound)]])
        lo = max(shown.min(), 1e-300) if shown.size else 1e-3
        self.ax_norm.set_ylim(lo / 3.0, ceiling * 3.0)  # the state can never be longer than sqrt(H)
        self.ax_norm.set_xlim(1, max(num_steps, 2))
        ratio = norms[-1] / norms[0] if norms[0] > 0 else float("nan")
        self.status.value = (f"||h_T|| / ||h_1|| = {ratio:.3g} after T - 1 = {num_steps - 1} steps "
                             f"(gain^(T-1) = {gain ** (num_steps - 1):.3g})")
        self.image.value = _png(self.fig)
        return h
