"""Notebook 05's explorer: learning rate, ``max_norm`` and spectral radius -> a vanilla RNN retrains."""

from __future__ import annotations

import math

import numpy as np

from .. import torch_models
from .base import LEGEND_PT, Explorer, new_figure, require_callable, training_axes

__all__ = ["RnnClippingExplorer", "MAX_NORMS"]

MAX_NORMS = (math.inf, 0.05, 0.25, 1.0, 4.0, 16.0)
"""The ``max_norm`` dropdown's choices; ``inf`` is "off" (no clipping)."""
LOSS_RANGE = (1e-3, 1e4)  # losses outside are drawn on the plot's edge
NORM_RANGE = (1e-3, 1e8)


def _label(max_norm):
    return "off" if math.isinf(max_norm) else f"{max_norm:g}"


def _on_chart(values, lo, hi):
    """Finite values squeezed into [lo, hi] (log axes cannot show 1e30); NaN stays NaN (a gap)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), np.nan, np.clip(values, lo, hi))


class RnnClippingExplorer(Explorer):
    """Retrain notebook 05's vanilla RNN (section 6c) for a learning rate, ``max_norm`` and spectral radius.

    train_step: the notebook's ``train_step(model, optimizer, loss_fn, X (B, T, 1), y (B, 1), max_norm)
    -> (loss, grad_norm)`` floats. Each setting trains ``num_steps`` SGD steps of an ``RNNRegressor``
    with ``num_hiddens`` units on ``recall_first`` sequences of ``T`` steps (mini-batches of
    ``batch_size``; data, initial weights and batch order fixed by ``seed``), stopping at the first
    non-finite loss. Controls ``lr``, ``max_norm`` (``MAX_NORMS``; inf is off) and ``spectral_radius``
    (they retrain, so they do not update while dragged). ``compute(lr, max_norm, spectral_radius)``
    returns the run's dict without drawing (cached by setting; ``use_cache=False`` retrains);
    ``redraw(**overrides)`` draws the loss (left) and the gradient norm before clipping with the
    ``max_norm`` line (right) and returns the same dict. Defined in notebook 05.
    """

    def __init__(self, train_step, *, num_steps=100, T=20, num_hiddens=32, batch_size=64, seed=0,
                 device="cpu", lr=0.1, max_norm=1.0, spectral_radius=1.5):
        require_callable(train_step=train_step)
        import ipywidgets as w

        self.train_step = train_step
        self.num_steps_per_run, self.T, self.num_hiddens = int(num_steps), int(T), int(num_hiddens)
        self.batch_size, self.seed, self.device = int(batch_size), seed, device
        self.data = torch_models.recall_first_data(self.T, seed=seed, device=device)
        self._cache = {}
        self.trainings = 0          # how many runs were trained (a cached setting is not retrained)
        self._build_figure()
        self._build_widget({
            "lr": w.FloatLogSlider(value=lr, base=10, min=-2.5, max=0, step=0.25, description="lr",
                                   continuous_update=False, readout_format=".3g"),
            "max_norm": w.Dropdown(options=[(_label(m), m) for m in MAX_NORMS],
                                   value=self._max_norm(max_norm), description="max_norm"),
            "spectral_radius": w.FloatSlider(value=spectral_radius, min=0.5, max=2.5, step=0.1,
                                             description="\u03c1(W_hh)", continuous_update=False),
        })

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
        """Train one run (no drawing). Returns a dict: ``loss`` (S,) and ``grad_norm`` (S,) per step
        taken, ``test_mse``, ``diverged_at`` (the step whose loss was non-finite, or None),
        ``clipped_share`` (share of steps whose norm exceeded ``max_norm``; None when clipping is off)
        and the setting."""
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
        clipping = math.isfinite(max_norm)
        result = {"lr": lr, "max_norm": max_norm, "spectral_radius": spectral_radius,
                  "loss": losses, "grad_norm": norms, "test_mse": test_mse,
                  "diverged_at": len(losses) - 1 if diverged else None,
                  "clipped_share": (float(np.mean(norms > max_norm)) if len(norms) else 0.0) if clipping else None}
        self._cache[key] = result
        return result

    # ---------------------------------------------------------------------------------- drawing

    def _build_figure(self):
        """The figure is built once; a redraw only replaces line data and texts."""
        self.fig = new_figure(8.6, 3.2)
        self.ax_loss, self.ax_norm = self.fig.subplots(1, 2)
        (self._loss,) = self.ax_loss.plot([], [], color="tab:blue", lw=1.5, label="mini-batch MSE")
        (self._norm,) = self.ax_norm.plot([], [], color="tab:blue", lw=1.5, label="\u2016g\u2016\u2082 before clipping")
        self._threshold = self.ax_norm.axhline(1.0, ls="--", color="k", lw=1.0, label="max_norm")
        self._nan_lines = [ax.axvline(0, color="tab:red", ls=":", lw=1.2, label="loss Inf/NaN")
                           for ax in (self.ax_loss, self.ax_norm)]
        mean = self.ax_loss.axhline(1.0, color="tab:green", ls=":", lw=1.0, label="predict the mean (MSE 1)")
        self._legend_handles = {self.ax_loss: (self._loss, mean, self._nan_lines[0]),
                                self.ax_norm: (self._norm, self._threshold, self._nan_lines[1])}
        self._loss_title = self.ax_loss.set_title("")
        self._norm_title = self.ax_norm.set_title(
            f"gradient norm (edges: {NORM_RANGE[0]:.0e} and {NORM_RANGE[1]:.0e})")
        for ax, (lo, hi), ylabel in ((self.ax_loss, LOSS_RANGE, "mini-batch MSE (log scale)"),
                                     (self.ax_norm, NORM_RANGE, "\u2016g\u2016\u2082 before clipping (log scale)")):
            training_axes(ax, self.num_steps_per_run, (lo / 1.5, hi * 1.5), ylabel)
        self.fig.subplots_adjust(left=0.08, right=0.975, bottom=0.15, top=0.84, wspace=0.28)

    def draw(self, run, settings):
        """Put the run on the figure; returns the status line."""
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
            ax.legend(handles=[h for h in handles if h.get_visible()], loc="upper right", fontsize=LEGEND_PT)
        setting = (f"lr = {run['lr']:.3g}, max_norm = {_label(run['max_norm'])}, "
                   f"\u03c1 = {run['spectral_radius']:.2g}")
        if at is not None:
            verdict = f"loss Inf/NaN at step {at}: the weights are ruined"
        else:
            verdict = f"held-out MSE {run['test_mse']:.3g} after {len(steps)} steps"
        self._loss_title.set_text(f"loss ({setting})\n{verdict}")
        if clipping:
            clipped = (f"gradient norm above max_norm (clipped) on {100 * run['clipped_share']:.0f}% "
                       f"of the steps")
        else:
            clipped = "clipping off: no step clipped"
        return f"{verdict}; {clipped} ({setting})"
