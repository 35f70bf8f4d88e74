"""Notebook 04's explorer: window and threshold of the learner's loss-spike detector -> its alarms."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator

from .base import LEGEND_PT, Explorer, figure_png, log_axis, new_figure, require_callable, style_axes

__all__ = ["SpikeAlarmExplorer"]


class SpikeAlarmExplorer(Explorer):
    """Window and threshold of a loss-spike detector -> its alarms on a few training logs.

    detect_spikes: the notebook's ``detect_spikes(losses (S,), window=..., threshold=...) -> flags (S,)``
    (bool). losses: a dict {label: per-step losses (S,)} (a run that explodes and a healthy one, say; NaN
    losses are left out of the drawing). Controls ``window`` (steps) and ``threshold`` (MADs).
    ``compute(window, threshold)`` returns the flags {label: bool array (S,)} without drawing;
    ``redraw(**overrides)`` draws one frame and returns the same flags. Losses above ``cap`` are drawn on
    the top edge (a log axis cannot show 1e300); alarms are the crosses on finite losses, and the status
    line counts every alarm of each log (NaN losses included) and names the first. Defined in notebook 04.
    """

    COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")
    WINDOW_RANGE = (5, 150)  # steps; the window slider moves one step at a time
    THRESHOLD_RANGE = (1.0, 1000.0)  # MADs; the threshold slider is logarithmic (10^0 to 10^3)

    def __init__(self, detect_spikes, losses, *, window=50, threshold=20.0, cap=1e10):
        require_callable(detect_spikes=detect_spikes)
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

        self.fig = new_figure(6.8, 3.0)
        self.ax = self.fig.subplots()
        self._alarm_lines = {}
        self._curve_lines = {}
        for i, (label, loss) in enumerate(self.losses.items()):
            color = self.COLORS[i % len(self.COLORS)]
            steps = np.arange(loss.size)
            (self._curve_lines[label],) = self.ax.plot(steps, np.minimum(loss, self.cap), color=color, lw=1,
                                                       label=label)
            (self._alarm_lines[label],) = self.ax.plot([], [], ls="none", marker="x", ms=6, color=color)
        self.ax.set_ylim(1e-2, 3 * self.cap)
        top = int(np.floor(np.log10(3 * self.cap)))
        log_axis(self.ax, FixedLocator([10.0 ** k for k in range(-2, top + 1, 2)]))
        self.ax.set_xlim(0, max(loss.size for loss in self.losses.values()))
        self.ax.set_xlabel("SGD step")
        self.ax.set_ylabel("mini-batch loss (log scale)")
        self.ax.grid(True, alpha=0.3)
        self._legend = self.ax.legend(handles=list(self._curve_lines.values()), fontsize=LEGEND_PT,
                                      loc="center right")
        self._title = self.ax.set_title("Alarms (x) with window=150, threshold=1e3 MADs")  # the widest title
        style_axes(self.ax)
        self.fig.tight_layout()  # once: redraws keep the layout, which keeps them fast
        # The curves and axes never change: draw them once, then blit the alarms and the title onto
        # that background at every redraw (a whole figure costs several times more).
        self._dynamic = [*self._alarm_lines.values(), self._title]  # the legend is part of the background
        self._title.set_text("")
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

        self._build_widget({
            "window": w.IntSlider(value=int(window), min=w_lo, max=w_hi, step=1, description="window"),
            "threshold": w.FloatLogSlider(value=float(threshold), base=10, min=np.log10(t_lo), max=np.log10(t_hi),
                                          step=0.1, description="threshold"),
        })

    def compute(self, window, threshold):
        """The detector's flags on every log: {label: bool array (S,), one flag per step}."""
        return {label: np.asarray(self.detect_spikes(loss, window=int(window), threshold=float(threshold)),
                                  dtype=bool)
                for label, loss in self.losses.items()}

    def draw(self, flags, settings):
        """Mark the alarms of ``flags`` and title the frame; returns the status line."""
        counts = []
        for label, loss in self.losses.items():
            f = flags[label]
            steps = np.flatnonzero(f & np.isfinite(loss))
            self._alarm_lines[label].set_data(steps, np.minimum(loss[steps], self.cap))
            first = np.flatnonzero(f)
            counts.append(f"{label}: {int(f.sum())} alarms" + (f", the first at step {first[0]}" if first.size else ""))
        self._title.set_text(f"Alarms (x) with window={int(settings['window'])}, "
                             f"threshold={float(settings['threshold']):.3g} MADs")
        return " | ".join(counts)

    def render(self):
        """Blit the alarms and the title onto the background drawn once."""
        self.fig.canvas.restore_region(self._background)
        for artist in self._dynamic:
            self.ax.draw_artist(artist)
        return figure_png(self.fig, draw=False)
