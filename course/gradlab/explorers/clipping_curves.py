"""Notebook 03's explorer: clipping mode, threshold and learning rate -> loss curves that diverge or converge."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator

from .. import data as datasets
from .. import rnn_tools, training
from .base import LEGEND_PT, Explorer, log_axis, new_figure, style_axes

__all__ = ["ClippingExplorer", "MODES"]

MODES = ("none", "value", "global norm")
"""The mode dropdown's choices."""
LOSS_TOP = 1e3  # losses above this are drawn at the top of the plot
NORM_TOP = 1e6
_MODE_LABELS = {"none": "no clipping", "value": "clip by value", "global norm": "clip by global norm"}


class ClippingExplorer(Explorer):
    """Train the adding-problem RNN under a chosen clipping mode, threshold and learning rate.

    clip_by_value(grads, clip_value) and clip_by_global_norm(grads, max_norm) -> (clipped, norm) are the
    notebook's clipping functions (grads: a dict of parameter arrays, shapes as ``rnn_tools.init_rnn``
    gives them). The task: the adding problem, X: (num_examples, T, 2), y: (num_examples, 1), an RNN
    of ``num_hiddens`` tanh units whose recurrent matrix has spectral radius ``spectral_radius``,
    ``num_steps`` SGD steps on mini-batches of ``batch_size``. Controls ``mode`` (``MODES``),
    ``threshold`` and ``lr``. ``compute(mode, threshold, lr)`` trains the chosen setting and plain SGD
    at the same lr at once (``training.train_many``; cached by setting, ``use_cache=False`` retrains)
    and returns their histories [chosen, plain] ([plain] for mode "none"), each with ``loss`` (S,),
    ``grad_norm`` (S,), ``diverged_at`` and ``label``; ``redraw(**overrides)`` draws them (loss and
    gradient norm against the step) and returns them. Defined in notebook 03.
    """

    def __init__(self, clip_by_value, clip_by_global_norm, *, T=20, num_hiddens=32, spectral_radius=1.5,
                 num_examples=512, batch_size=32, num_steps=200, seed=0, mode="global norm", threshold=1.0,
                 lr=0.15):
        if not callable(clip_by_value) or not callable(clip_by_global_norm):
            raise TypeError("ClippingExplorer needs the two clipping functions (callables)")
        import ipywidgets as w

        self._check(mode, threshold, lr)
        self.clip_fns = {"value": clip_by_value, "global norm": clip_by_global_norm}
        self.X, self.y = datasets.adding_problem(num_examples, T, seed=seed + 1)
        self.params = rnn_tools.init_rnn(2, num_hiddens, 1, seed=seed, spectral_radius=spectral_radius)
        self.num_steps, self.batch_size, self.seed = num_steps, batch_size, seed
        self._cache = {}
        self._build_figure()
        self._build_widget({
            "mode": w.Dropdown(options=[(_MODE_LABELS[m], m) for m in MODES], value=mode,
                               description="clipping"),
            "threshold": w.FloatLogSlider(value=threshold, base=10, min=-2, max=2, step=0.1,
                                          description="threshold", continuous_update=False,
                                          readout_format=".3g"),
            "lr": w.FloatLogSlider(value=lr, base=10, min=-2, max=0, step=0.05, description="lr",
                                   continuous_update=False, readout_format=".3g"),
        })

    @staticmethod
    def _check(mode, threshold, lr):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name, value in (("threshold", threshold), ("lr", lr)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def compute(self, mode, threshold, lr, *, use_cache=True):
        """Histories [chosen setting, plain SGD at the same lr] ([plain] for "none"), no drawing."""
        self._check(mode, threshold, lr)
        key = (mode, float(threshold) if mode != "none" else None, float(lr))
        if use_cache and key in self._cache:
            return self._cache[key]
        settings = [training.Setting(lr, label=f"no clipping, lr={lr:.3g}")]
        if mode != "none":
            settings.insert(0, training.Setting(lr, self.clip_fns[mode], float(threshold),
                                                label=f"{_MODE_LABELS[mode]} at {threshold:.3g}, lr={lr:.3g}"))
        hists = training.train_many(settings, self.params, self.X, self.y, num_steps=self.num_steps,
                                    batch_size=self.batch_size, seed=self.seed)
        self._cache[key] = hists
        return hists

    def _build_figure(self):
        """The figure is built once; each redraw only replaces line data and texts (fast)."""
        fig = self.fig = new_figure(8.4, 3.6)
        self.ax_loss, self.ax_norm = ax_loss, ax_norm = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.085, right=0.985, bottom=0.14, top=0.78, wspace=0.3)
        chosen = dict(color="tab:blue", lw=2.0)
        plain = dict(color="0.5", lw=1.2, ls="--", zorder=1)
        self._lines = {
            "loss_chosen": ax_loss.plot([], [], **chosen)[0],
            "loss_plain": ax_loss.plot([], [], **plain)[0],
            "norm_chosen": ax_norm.plot([], [], **chosen)[0],
            "norm_plain": ax_norm.plot([], [], **plain)[0],
            "nan_chosen": ax_loss.axvline(0, color="tab:blue", lw=1.0, ls=":"),
            "nan_plain": ax_loss.axvline(0, color="0.5", lw=1.0, ls=":"),
            "threshold": ax_norm.axhline(1.0, color="tab:red", lw=1.0, label="norm threshold"),
        }
        self._mean = ax_loss.axhline(1 / 6, color="tab:green", lw=0.8, ls=":", label="predict the mean (1/6)")
        for ax, ylabel, top in ((ax_loss, "mini-batch MSE (log scale)", LOSS_TOP),
                                (ax_norm, "gradient norm before clipping", NORM_TOP)):
            ax.set_xlim(0, self.num_steps)
            ax.set_ylim(1e-2, top * 1.5)
            log_axis(ax, FixedLocator([10.0 ** k for k in range(-2, int(np.log10(top)) + 1)]))
            ax.set_xlabel("SGD step")
            ax.set_ylabel(ylabel)
        ax_loss.set_title(f"Training loss (top edge: {LOSS_TOP:.0e} or more)")
        ax_norm.set_title(f"Global gradient norm (top edge: {NORM_TOP:.0e} or more)")
        for ax in (ax_loss, ax_norm):
            style_axes(ax)
        self._suptitle = fig.suptitle("", fontsize=LEGEND_PT + 1)

    def draw(self, hists, settings):
        """Solid blue: the chosen setting; dashed grey: plain SGD at the same learning rate; dotted
        vertical lines: the step at which a run turned NaN. Returns the status line."""
        mode, threshold, lr = settings["mode"], float(settings["threshold"]), float(settings["lr"])
        lines = self._lines
        steps = np.arange(self.num_steps)
        runs = {"plain": hists[-1], "chosen": hists[0] if mode != "none" else None}
        verdicts = []
        for key, hist in runs.items():
            visible = hist is not None
            for kind in ("loss", "norm", "nan"):
                lines[f"{kind}_{key}"].set_visible(visible)
            if not visible:
                continue
            # values off the chart are drawn on its top edge (log axes cannot show 1e300)
            lines[f"loss_{key}"].set_data(steps[: len(hist["loss"])], np.minimum(hist["loss"], LOSS_TOP))
            lines[f"norm_{key}"].set_data(steps[: len(hist["grad_norm"])], np.minimum(hist["grad_norm"], NORM_TOP))
            lines[f"loss_{key}"].set_label(hist["label"])
            name = hist["label"].split(",")[0]
            at = hist["diverged_at"]
            if at is None:
                lines[f"nan_{key}"].set_visible(False)
                lines[f"nan_{key}"].set_label("_nan")
                verdicts.append(f"{name}: final loss {np.mean(hist['loss'][-20:]):.3g}")
            else:
                lines[f"nan_{key}"].set_xdata([at, at])
                lines[f"nan_{key}"].set_label(f"{name}: NaN at step {at}")
                verdicts.append(f"{name}: NaN at step {at}")
        lines["threshold"].set_visible(mode == "global norm")
        lines["threshold"].set_ydata([threshold, threshold])
        handles = [h for h in self.ax_loss.get_lines() if h.get_visible() and not h.get_label().startswith("_")]
        self.ax_loss.legend(handles=handles, loc="center right", fontsize=LEGEND_PT)
        if mode == "global norm":
            self.ax_norm.legend(handles=[lines["threshold"]], loc="upper right", fontsize=LEGEND_PT)
        elif self.ax_norm.get_legend() is not None:
            self.ax_norm.get_legend().remove()
        text = " | ".join(verdicts)
        self._suptitle.set_text(text + f"\n(lr = {lr:.3g})")
        return text
