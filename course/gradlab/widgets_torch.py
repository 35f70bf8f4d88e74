"""Notebook 05's widget: learning rate, ``max_norm`` and spectral radius -> a vanilla RNN retrains.

``RnnClippingExplorer`` follows the protocol of the explorers in ``gradlab.widgets``: build it with
the notebook's ``train_step`` and display ``.widget``; its controls are the attributes ``lr``,
``max_norm`` and ``spectral_radius``, named like the parameters of

* ``compute(lr, max_norm, spectral_radius)``: train the RNN of ``gradlab.torch_models.fit_rnn`` on
  ``recall_first`` for ``num_steps`` SGD steps with that setting and return the run's data (no
  drawing; cached by setting, ``use_cache=False`` retrains);
* ``redraw(lr=..., max_norm=..., spectral_radius=...)``: one frame without a browser (the controls'
  values for arguments left out): compute, update the lines of one persistent matplotlib figure,
  render it to the PNG of an ``ipywidgets.Image``; returns ``compute``'s data. Every slider change
  calls it (the sliders retrain, so they do not update while dragged).

gradlab never holds notebook 05's answers: the training step, with its clipping, is the learner's.
"""

from __future__ import annotations

import math
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from . import torch_models
from .plots import figure_png

MAX_NORMS = (math.inf, 0.05, 0.25, 1.0, 4.0, 16.0)
"""The ``max_norm`` dropdown's choices; ``inf`` is "off" (no clipping)."""
LOSS_RANGE = (1e-3, 1e4)  # losses outside are drawn on the plot's edge
NORM_RANGE = (1e-3, 1e8)
_DPI = 80


def _label(max_norm):
    return "off" if math.isinf(max_norm) else f"{max_norm:g}"


def _on_chart(values, lo, hi):
    """Finite values squeezed into [lo, hi] (log axes cannot show 1e30); NaN stays NaN (a gap)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), np.nan, np.clip(values, lo, hi))


class RnnClippingExplorer:
    """Retrain notebook 05's vanilla RNN (section 6c) for a learning rate, ``max_norm`` and spectral radius.

    ``train_step(model, optimizer, loss_fn, X, y, max_norm) -> (loss, grad_norm)`` is the notebook's
    training step. Each setting trains ``num_steps`` SGD steps of an ``RNNRegressor`` with
    ``num_hiddens`` units on ``recall_first`` sequences of ``T`` steps (mini-batches of
    ``batch_size``; data, initial weights and batch order fixed by ``seed``), stopping at the first
    non-finite loss. The left plot shows the loss, the right one the gradient norm before clipping
    with the ``max_norm`` line.
    """

    def __init__(self, train_step, *, num_steps=100, T=20, num_hiddens=32, batch_size=64, seed=0,
                 device="cpu", lr=0.1, max_norm=1.0, spectral_radius=1.5):
        if not callable(train_step):
            raise TypeError(f"train_step must be a function (the one you wrote in the notebook), got {train_step!r}")
        import ipywidgets as w

        self.train_step = train_step
        self.num_steps_per_run, self.T, self.num_hiddens = int(num_steps), int(T), int(num_hiddens)
        self.batch_size, self.seed, self.device = int(batch_size), seed, device
        self.data = torch_models.recall_first_data(self.T, seed=seed, device=device)
        self._cache = {}
        self.trainings = 0          # how many runs were trained (a cached setting is not retrained)
        self.last_seconds = None    # duration of the latest redraw

        self.lr = w.FloatLogSlider(value=lr, base=10, min=-2.5, max=0, step=0.25, description="lr",
                                   continuous_update=False, readout_format=".3g")
        self.max_norm = w.Dropdown(options=[(_label(m), m) for m in MAX_NORMS],
                                   value=self._max_norm(max_norm), description="max_norm")
        self.spectral_radius = w.FloatSlider(value=spectral_radius, min=0.5, max=2.5, step=0.1,
                                             description="\u03c1(W_hh)", continuous_update=False)
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self._build_figure()
        for control in (self.lr, self.max_norm, self.spectral_radius):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.lr, self.max_norm, self.spectral_radius]), self.status, self.image])
        self.redraw()

    # ---------------------------------------------------------------------------------- data

    @staticmethod
    def _max_norm(max_norm):
        """A float threshold; "off", None and inf all mean no clipping."""
        if max_norm is None or (isinstance(max_norm, str) and max_norm.strip().lower() == "off"):
            return math.inf
        value = float(max_norm)
        if not value > 0:
            raise ValueError(f"max_norm must be positive (or 'off'), got {max_norm!r}")
        return value

    @staticmethod
    def _check(lr, spectral_radius):
        for name, value in (("lr", lr), ("spectral_radius", spectral_radius)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def compute(self, lr, max_norm, spectral_radius, *, use_cache=True):
        """Train one run (no drawing). Returns a dict: ``loss`` and ``grad_norm`` per step taken,
        ``test_mse``, ``diverged_at`` (the step whose loss was non-finite, or None), ``clipped_share``
        (share of steps whose norm exceeded ``max_norm``) and the setting."""
        lr, spectral_radius, max_norm = float(lr), float(spectral_radius), self._max_norm(max_norm)
        self._check(lr, spectral_radius)
        key = (lr, max_norm, spectral_radius)
        if use_cache and key in self._cache:
            return self._cache[key]
        losses, norms, test_mse = torch_models.fit_rnn(
            self.train_step, max_norm, lr=lr, spectral_radius=spectral_radius, num_steps=self.num_steps_per_run,
            T=self.T, batch_size=self.batch_size, num_hiddens=self.num_hiddens, seed=self.seed,
            device=self.device, data=self.data)
        self.trainings += 1
        diverged = len(losses) > 0 and not math.isfinite(losses[-1])
        result = {"lr": lr, "max_norm": max_norm, "spectral_radius": spectral_radius,
                  "loss": losses, "grad_norm": norms, "test_mse": test_mse,
                  "diverged_at": len(losses) - 1 if diverged else None,
                  "clipped_share": float(np.mean(norms > max_norm)) if len(norms) else 0.0}
        self._cache[key] = result
        return result

    # ---------------------------------------------------------------------------------- drawing

    def _build_figure(self):
        """The figure is built once; a redraw only replaces line data and texts."""
        self.fig = Figure(figsize=(10, 3.4), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax_loss, self.ax_norm = self.fig.subplots(1, 2)
        (self._loss,) = self.ax_loss.plot([], [], color="tab:blue", lw=1.5)
        (self._norm,) = self.ax_norm.plot([], [], color="tab:blue", lw=1.5, label="\u2016g\u2016\u2082 before clipping")
        self._threshold = self.ax_norm.axhline(1.0, ls="--", color="k", lw=1.0, label="max_norm")
        self._nan_lines = [ax.axvline(0, color="tab:red", ls=":", lw=1.2, label="loss Inf/NaN")
                           for ax in (self.ax_loss, self.ax_norm)]
        mean = self.ax_loss.axhline(1.0, color="tab:green", ls=":", lw=1.0, label="predict the mean (MSE 1)")
        for ax, (lo, hi), ylabel in ((self.ax_loss, LOSS_RANGE, "mini-batch MSE (log scale)"),
                                     (self.ax_norm, NORM_RANGE, "\u2016g\u2016\u2082 before clipping (log scale)")):
            ax.set_yscale("log")
            ax.set_xlim(0, self.num_steps_per_run)
            ax.set_ylim(lo / 1.5, hi * 1.5)
            ax.yaxis.set_major_locator(LogLocator(numticks=8))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("SGD step")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="major", alpha=0.3)
        self._legend_handles = {self.ax_loss: (mean, self._nan_lines[0]),
                                self.ax_norm: (self._norm, self._threshold, self._nan_lines[1])}
        self._loss_title = self.ax_loss.set_title("", fontsize=9)
        self._norm_title = self.ax_norm.set_title(
            f"gradient norm (edges: below {NORM_RANGE[0]:.0e}, above {NORM_RANGE[1]:.0e})", fontsize=9)
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.88, wspace=0.25)

    def _on_change(self, _change=None):
        self.redraw()

    def redraw(self, lr=None, max_norm=None, spectral_radius=None):
        """Draw one frame for the given setting (the controls' values for arguments left as None).

        Trains the setting unless it was trained before, updates the figure, puts its PNG in
        ``self.image`` and returns ``compute``'s dict.
        """
        start = time.perf_counter()
        lr = self.lr.value if lr is None else lr
        max_norm = self.max_norm.value if max_norm is None else max_norm
        spectral_radius = self.spectral_radius.value if spectral_radius is None else spectral_radius
        run = self.compute(lr, max_norm, spectral_radius)
        steps = np.arange(len(run["loss"]))
        self._loss.set_data(steps, _on_chart(run["loss"], *LOSS_RANGE))
        self._norm.set_data(steps, _on_chart(run["grad_norm"], *NORM_RANGE))
        clipping = math.isfinite(run["max_norm"])
        self._threshold.set_visible(clipping)
        if clipping:
            self._threshold.set_ydata([run["max_norm"], run["max_norm"]])
        at = run["diverged_at"]
        for line in self._nan_lines:
            line.set_visible(at is not None)
            if at is not None:
                line.set_xdata([at, at])
        for ax, handles in self._legend_handles.items():
            ax.legend(handles=[h for h in handles if h.get_visible()], loc="upper right", fontsize=8)
        setting = (f"lr = {run['lr']:.3g}, max_norm = {_label(run['max_norm'])}, "
                   f"\u03c1 = {run['spectral_radius']:.2g}")
        if at is not None:
            verdict = f"loss Inf/NaN at step {at}: the weights are ruined"
        else:
            verdict = f"held-out MSE {run['test_mse']:.3g} after {len(steps)} steps"
        self._loss_title.set_text(f"loss ({setting})\n{verdict}")
        self.status.value = (f"{verdict}; gradient norm above max_norm on {100 * run['clipped_share']:.0f}% "
                             f"of the steps ({setting})")
        self.image.value = figure_png(self.fig)
        self.last_seconds = time.perf_counter() - start
        return run

