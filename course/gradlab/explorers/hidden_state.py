"""Notebook 01's explorer: gain, sequence length and hidden size -> the learner's RNN's pulse response."""

from __future__ import annotations

import functools

import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator

from .base import LEGEND_PT, Explorer, log_axis, new_figure, require_callable, style_axes

__all__ = ["pulse_response", "HiddenStateExplorer"]


@functools.lru_cache(maxsize=64)
def _orthogonal(num_hiddens, seed):
    """A random orthogonal (H, H) matrix: every singular value and every |eigenvalue| is 1 (read-only)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(num_hiddens, num_hiddens)))
    q = q * np.sign(np.diag(r))
    q.flags.writeable = False
    return q


def pulse_response(rnn_forward, gain, num_steps, num_hiddens, *, amplitude=1.0, input_size=4, seed=0):
    """Hidden states h: (1, T, H) of an RNN fed one pulse at t = 1 and zeros afterwards.

    rnn_forward: the learner's ``rnn_forward(x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,))
    -> (h (N, T, H), cache)``. ``Wh = gain * Q`` with Q a random orthogonal (H, H) matrix, so ``gain`` is
    both the spectral radius and the largest singular value of Wh; ``h0`` and ``b`` are zero and ``Wx`` ~
    N(0, 1/D), D = ``input_size``. Since |tanh(z)| <= |z| and ||h Q|| = ||h||, every later step multiplies
    the state's norm by at most ``gain``: ||h_t|| <= gain**(t - 1) * ||h_1||, where h_t = h[:, t - 1].
    Defined in notebook 01.
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


class HiddenStateExplorer(Explorer):
    """Gain, sequence length and hidden size -> the response of the learner's RNN to a single pulse.

    rnn_forward: the notebook's ``rnn_forward`` (see ``pulse_response``). Controls ``gain`` (spectral
    radius of Wh), ``num_steps`` (T) and ``num_hiddens`` (H). ``compute(gain, num_steps, num_hiddens)``
    returns the hidden states h: (1, T, H) without drawing; ``redraw(**overrides)`` draws one frame and
    returns the same h. The left panel shows six units over time, the right one ||h_t|| on a log scale
    beside the bound gain**(t - 1) * ||h_1|| and the ceiling sqrt(H) (time steps counted from 1,
    h_t = h[:, t - 1]). Defined in notebook 01.
    """

    UNITS = 6

    def __init__(self, rnn_forward, *, gain=0.9, num_steps=60, num_hiddens=32, max_steps=200, seed=0):
        require_callable(rnn_forward=rnn_forward)
        import ipywidgets as w

        self.rnn_forward = rnn_forward
        self.seed = seed
        self.fig = new_figure(8.4, 3.4)
        self.ax_units, self.ax_norm = self.fig.subplots(1, 2)
        self._unit_lines = [self.ax_units.plot([], [], lw=1.2)[0] for _ in range(self.UNITS)]
        self.ax_units.set_xlabel("time step t (steps)")
        self.ax_units.set_ylabel("hidden state h_t[j] (tanh units)")
        self.ax_units.grid(True, alpha=0.3)
        (self._norm_line,) = self.ax_norm.plot([], [], "o-", ms=2, lw=1.2, label=r"$\|h_t\|$ measured")
        (self._bound_line,) = self.ax_norm.plot([], [], "--", color="tab:red", lw=1.2,
                                                label=r"bound gain$^{t-1}\,\|h_1\|$")
        (self._ceiling_line,) = self.ax_norm.plot([], [], ":", color="gray", lw=1.2,
                                                  label=r"ceiling $\sqrt{H}$ (units at $\pm 1$)")
        # At most 8 labelled decades: the axis may span 300 of them.
        log_axis(self.ax_norm, LogLocator(base=10.0, numticks=8))
        for axis in (self.ax_units.xaxis, self.ax_units.yaxis, self.ax_norm.xaxis):
            axis.set_major_locator(MaxNLocator(nbins=5))  # fewer tick labels to render on each redraw
        self.ax_norm.set_xlabel("time step t (steps)")
        self.ax_norm.set_ylabel(r"$\|h_t\|$ (tanh units, log scale)")
        self.ax_norm.set_title("What is left of the pulse")
        self.ax_norm.grid(True, alpha=0.3)
        self.ax_norm.legend(fontsize=LEGEND_PT, loc="lower left")
        self.ax_units.set_title("Six units after a pulse at t = 1 (gain = 0.00)")
        for ax in (self.ax_units, self.ax_norm):
            style_axes(ax)
        self.fig.tight_layout()  # once: redraws keep the layout, which keeps them fast
        # Fixed title and axis-label positions: matplotlib would otherwise measure every tick label to
        # place them on every redraw. The right panel's tick labels can be as wide as "1e-300".
        self.fig.subplots_adjust(wspace=0.36)
        for ax, label_x in ((self.ax_units, -0.14), (self.ax_norm, -0.2)):
            ax.title.set_y(1.0)
            ax.xaxis.set_label_coords(0.5, -0.13)
            ax.yaxis.set_label_coords(label_x, 0.5)

        self._build_widget({
            "gain": w.FloatSlider(value=gain, min=0.1, max=2.0, step=0.05, description="gain",
                                  readout_format=".2f"),
            "num_steps": w.IntSlider(value=num_steps, min=2, max=max_steps, description="T"),
            "num_hiddens": w.IntSlider(value=num_hiddens, min=2, max=128, step=2, description="num_hiddens"),
        })

    def compute(self, gain, num_steps, num_hiddens):
        """The hidden states h: (1, T, H) of the pulse response, without drawing."""
        return pulse_response(self.rnn_forward, float(gain), int(num_steps), int(num_hiddens), seed=self.seed)

    def draw(self, h, settings):
        """Put h: (1, T, H) on the figure; returns the status line."""
        gain = float(settings["gain"])
        num_steps, num_hiddens = h.shape[1], h.shape[2]
        t = np.arange(1, num_steps + 1)
        for j, line in enumerate(self._unit_lines):
            line.set_data(t, h[0, :, j] if j < num_hiddens else np.full(num_steps, np.nan))
        self.ax_units.set_xlim(1, max(num_steps, 2))
        peak = float(np.max(np.abs(h[0, :, : len(self._unit_lines)])))
        self.ax_units.set_ylim(-1.1 * peak - 1e-12, 1.1 * peak + 1e-12)
        self.ax_units.set_title(f"Six units after a pulse at t = 1 (gain = {gain:.2f})")
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
        return (f"||h_T|| / ||h_1|| = {ratio:.3g} after T - 1 = {num_steps - 1} steps "
                f"(gain^(T-1) = {gain ** (num_steps - 1):.3g})")
