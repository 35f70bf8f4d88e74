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
* ``SpikeAlarmExplorer(detect_spikes, losses)``: sliders for the window and the threshold of a loss-spike
  detector -> its alarms on a few training logs, redrawn live (notebook 04's widget).

Nothing here answers an exercise: the explorers take the learner's ``rnn_forward`` or ``detect_spikes``
as an argument.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

__all__ = ["plot_loss_curve", "plot_hidden_states", "pulse_response", "HiddenStateExplorer",
           "SpikeAlarmExplorer"]

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


class HiddenStateExplorer:
    """Gain, sequence length and hidden size -> the response of the learner's RNN to a single pulse.

    Build it with the notebook's ``rnn_forward``; display ``.widget``. ``compute(gain, num_steps,
    num_hiddens)`` returns the hidden states (1, T, H) without drawing; ``redraw(gain=..., num_steps=...,
    num_hiddens=...)`` draws one frame without a browser and returns the same states. The
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
        # At most 8 labelled decades and no minor ticks, in plain text: the axis may span 300 decades,
        # and a tick (with its mathtext label) per decade made a redraw cost 200 ms.
        self.ax_norm.yaxis.set_major_locator(LogLocator(base=10.0, numticks=8))
        self.ax_norm.yaxis.set_major_formatter(FuncFormatter(_power_of_ten_label))
        self.ax_norm.yaxis.set_minor_locator(NullLocator())
        for axis in (self.ax_units.xaxis, self.ax_units.yaxis, self.ax_norm.xaxis):
            axis.set_major_locator(MaxNLocator(nbins=5))  # fewer tick labels to render on each redraw
        self.ax_norm.set_xlabel("time step t (steps)")
        self.ax_norm.set_ylabel(r"$\|h_t\|$ (tanh units, log scale)")
        self.ax_norm.set_title("What is left of the pulse")
        self.ax_norm.grid(True, alpha=0.3)
        self.ax_norm.legend(fontsize=8, loc="lower left")
        self.ax_units.set_title("Six hidden units after a pulse at t = 1 (gain = 0.00)")
        self.fig.tight_layout()  # once: redraws keep the layout, which keeps them fast
        # Fixed title and axis-label positions: matplotlib would otherwise measure every tick label to
        # place them on every redraw (a third of a redraw's time).
        # The right panel's tick labels can be as wide as "1e-300": room for them beside the left panel.
        self.fig.subplots_adjust(wspace=0.32)
        for ax, label_x in ((self.ax_units, -0.12), (self.ax_norm, -0.17)):
            ax.title.set_y(1.0)
            ax.xaxis.set_label_coords(0.5, -0.11)
            ax.yaxis.set_label_coords(label_x, 0.5)

        for control in (self.gain, self.num_steps, self.num_hiddens):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.gain, self.num_steps, self.num_hiddens]), self.status, self.image])
        self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def compute(self, gain, num_steps, num_hiddens):
        """The hidden states (1, T, H) of the pulse response, without drawing."""
        return pulse_response(self.rnn_forward, float(gain), int(num_steps), int(num_hiddens), seed=self.seed)

    def redraw(self, gain=None, num_steps=None, num_hiddens=None):
        """Draw one frame (the controls' values for arguments left as None); returns h (1, T, H)."""
        gain = self.gain.value if gain is None else float(gain)
        num_steps = self.num_steps.value if num_steps is None else int(num_steps)
        num_hiddens = self.num_hiddens.value if num_hiddens is None else int(num_hiddens)
        h = self.compute(gain, num_steps, num_hiddens)
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
        self.image.value = figure_png(self.fig)
        return h


def figure_png(fig, *, draw=True):
    """``fig`` as PNG bytes for a widget's ``Image``: drawn (unless ``draw=False``: already blitted) and
    encoded with fast compression, several times quicker than ``savefig``'s default; every explorer uses it."""
    from PIL import Image

    if not hasattr(fig.canvas, "buffer_rgba"):  # a bare Figure: give it an Agg canvas to draw on
        FigureCanvasAgg(fig)
        draw = True
    if draw:
        fig.canvas.draw()
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _power_of_ten_label(value, _pos=None):
    """A log-axis tick label such as 1e-2, 1 or 1e10 in plain text (no mathtext parsed on every redraw)."""
    exponent = int(round(np.log10(value)))
    return "1" if exponent == 0 else f"1e{exponent}"


class SpikeAlarmExplorer:
    """Window and threshold of a loss-spike detector -> its alarms on a few training logs (notebook 04).

    Build it with the notebook's ``detect_spikes(losses, window=..., threshold=...)`` and ``losses``, a
    dict {label: sequence of per-step losses} (a run that explodes and a healthy one, say; NaN losses are
    left out of the drawing); display ``.widget``. ``compute(window, threshold)`` returns the detector's
    flags {label: bool array} without drawing; ``redraw(window=..., threshold=...)`` draws one frame
    without a browser and returns the same flags. Losses above ``cap`` are drawn on the top edge (a log
    axis cannot show 1e300); alarms are the crosses on finite losses, and the status line above the plot
    counts every alarm of each log (NaN losses included) and names the first.
    """

    COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")
    WINDOW_RANGE = (5, 150)  # steps; the window slider moves one step at a time
    THRESHOLD_RANGE = (1.0, 1000.0)  # MADs; the threshold slider is logarithmic (10^0 to 10^3)

    def __init__(self, detect_spikes, losses, *, window=50, threshold=20.0, cap=1e10):
        if not callable(detect_spikes):
            raise TypeError(f"detect_spikes must be a function (the one you wrote in the notebook), "
                            f"got {detect_spikes!r}")
        if not isinstance(losses, dict) or not losses:
            raise TypeError("losses must be a non-empty dict {label: sequence of losses}")
        import ipywidgets as w

        self.detect_spikes = detect_spikes
        self.losses = {str(k): np.asarray(v, dtype=float) for k, v in losses.items()}
        for label, loss in self.losses.items():
            if loss.ndim != 1 or loss.size == 0:
                raise ValueError(f"losses[{label!r}] must be a non-empty 1-d sequence, got shape {loss.shape}")
        self.cap = float(cap)
        # The sliders' ranges: a window below 5 holds too few losses for a median (notebook 04's
        # detector waits for min_history=5), a threshold below 1 MAD fires on noise. A starting value
        # outside them is refused rather than silently moved to the nearest end.
        w_lo, w_hi = self.WINDOW_RANGE
        t_lo, t_hi = self.THRESHOLD_RANGE
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not w_lo <= window <= w_hi:
            raise ValueError(f"window must be a whole number of steps from {w_lo} to {w_hi}, got {window!r}")
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number))
                or not t_lo <= float(threshold) <= t_hi):
            raise ValueError(f"threshold must be a number of MADs from {t_lo:g} to {t_hi:g}, got {threshold!r}")
        self.window = w.IntSlider(value=int(window), min=w_lo, max=w_hi, step=1, description="window")
        self.threshold = w.FloatLogSlider(value=float(threshold), base=10, min=np.log10(t_lo), max=np.log10(t_hi),
                                          step=0.1, description="threshold")
        self.image = w.Image(format="png")
        self.status = w.HTML()

        self.fig = Figure(figsize=(8.0, 3.4), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.subplots()
        self._alarm_lines = {}
        self._curve_lines = {}
        for i, (label, loss) in enumerate(self.losses.items()):
            color = self.COLORS[i % len(self.COLORS)]
            steps = np.arange(loss.size)
            (self._curve_lines[label],) = self.ax.plot(steps, np.minimum(loss, self.cap), color=color, lw=1,
                                                       label=label)
            (self._alarm_lines[label],) = self.ax.plot([], [], ls="none", marker="x", ms=6, color=color)
        self.ax.set_yscale("log")
        self.ax.set_ylim(1e-2, 3 * self.cap)
        top = int(np.floor(np.log10(3 * self.cap)))
        self.ax.yaxis.set_major_locator(FixedLocator([10.0 ** k for k in range(-2, top + 1, 2)]))
        self.ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten_label))
        self.ax.yaxis.set_minor_locator(NullLocator())
        self.ax.set_xlim(0, max(loss.size for loss in self.losses.values()))
        self.ax.set_xlabel("SGD step")
        self.ax.set_ylabel("mini-batch loss (log scale)")
        self.ax.grid(True, alpha=0.3)
        self._legend = self.ax.legend(handles=list(self._curve_lines.values()), fontsize=8, loc="center right")
        self._title = self.ax.set_title("Alarms (x) with window=150, threshold=1e3 MADs")  # the widest title
        self.fig.tight_layout()  # once: redraws keep the layout, which keeps them fast
        # The curves and axes never change: draw them once, then blit the alarms, legend and title onto
        # that background at every redraw (a whole figure costs several times more).
        self._dynamic = [*self._alarm_lines.values(), self._title]  # the legend is part of the background
        self._title.set_text("")
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

        for control in (self.window, self.threshold):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.window, self.threshold]), self.status, self.image])
        self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def compute(self, window, threshold):
        """The detector's flags on every log: {label: bool array of one flag per step}."""
        return {label: np.asarray(self.detect_spikes(loss, window=int(window), threshold=float(threshold)),
                                  dtype=bool)
                for label, loss in self.losses.items()}

    def redraw(self, window=None, threshold=None):
        """Draw one frame (the controls' values for arguments left as None); returns the flags."""
        window = self.window.value if window is None else int(window)
        threshold = self.threshold.value if threshold is None else float(threshold)
        flags = self.compute(window, threshold)
        counts = []
        for label, loss in self.losses.items():
            f = flags[label]
            steps = np.flatnonzero(f & np.isfinite(loss))
            self._alarm_lines[label].set_data(steps, np.minimum(loss[steps], self.cap))
            first = np.flatnonzero(f)
            counts.append(f"{label}: {int(f.sum())} alarms" + (f", the first at step {first[0]}" if first.size else ""))
        self._title.set_text(f"Alarms (x) with window={window}, threshold={threshold:.3g} MADs")
        self.status.value = " | ".join(counts)
        self.fig.canvas.restore_region(self._background)
        for artist in self._dynamic:
            self.ax.draw_artist(artist)
        self.image.value = figure_png(self.fig, draw=False)
        return flags
