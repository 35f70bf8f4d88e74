"""Notebook 03's widget: clipping mode, threshold and learning rate -> loss curves that diverge or converge.

The logic sits in ``ClippingExplorer``, usable without a browser:

* ``explorer.curves(mode, threshold, lr)`` trains the chosen setting and, for comparison, plain SGD at
  the same learning rate, both at once with ``gradlab.training.train_many`` (cached by setting);
* ``explorer.figure(mode, threshold, lr)`` draws them (loss and gradient norm against the step);
* ``explorer.redraw(mode, threshold, lr)`` is ONE REDRAW WITH RETRAINING, cache bypassed: train, draw,
  render to PNG bytes. This is what the benchmark times (budget: 1 s);
* ``explorer.widget()`` returns the ipywidgets box: a mode dropdown, two log sliders and an ``Image``
  whose PNG is replaced by every change, so the picture in the browser really changes.

The clipping functions are the learner's: the explorer takes them as arguments (gradlab never holds
notebook 03's answers for notebook 03).
"""

from __future__ import annotations

import time

import numpy as np

from . import data, rnn_tools, training

MODES = ("none", "value", "global norm")
LOSS_TOP = 1e3  # losses above this are drawn at the top of the plot
NORM_TOP = 1e6
_MODE_LABELS = {"none": "no clipping", "value": "clip by value", "global norm": "clip by global norm"}


class ClippingExplorer:
    """Train the adding-problem RNN under a chosen clipping mode, threshold and learning rate.

    ``clip_by_value(grads, clip_value)`` and ``clip_by_global_norm(grads, max_norm)`` are the clipping
    functions to use (the learner's in notebook 03). The task: the adding problem with sequences of
    ``T`` steps, an RNN of ``num_hiddens`` tanh units whose recurrent matrix has spectral radius
    ``spectral_radius``, ``num_steps`` SGD steps on mini-batches of ``batch_size``.
    """

    def __init__(self, clip_by_value, clip_by_global_norm, *, T=20, num_hiddens=32, spectral_radius=1.5,
                 num_examples=512, batch_size=32, num_steps=200, seed=0):
        if not callable(clip_by_value) or not callable(clip_by_global_norm):
            raise TypeError("ClippingExplorer needs the two clipping functions (callables)")
        self.clip_fns = {"value": clip_by_value, "global norm": clip_by_global_norm}
        self.X, self.y = data.adding_problem(num_examples, T, seed=seed + 1)
        self.params = rnn_tools.init_rnn(2, num_hiddens, 1, seed=seed, spectral_radius=spectral_radius)
        self.num_steps, self.batch_size, self.seed = num_steps, batch_size, seed
        self._cache = {}
        self._image = None
        self._fig = None
        self.last_png = None
        self.last_seconds = None

    @staticmethod
    def _check(mode, threshold, lr):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name, value in (("threshold", threshold), ("lr", lr)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def curves(self, mode, threshold, lr, *, use_cache=True):
        """Histories (chosen setting, plain SGD at the same lr) as ``training.train_many`` returns them."""
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
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullLocator

        fig = Figure(figsize=(9.5, 3.8), dpi=80)
        ax_loss, ax_norm = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.8, wspace=0.28)
        chosen = dict(color="tab:blue", lw=2.0)
        plain = dict(color="0.5", lw=1.2, ls="--", zorder=1)
        lines = {
            "loss_chosen": ax_loss.plot([], [], **chosen)[0],
            "loss_plain": ax_loss.plot([], [], **plain)[0],
            "norm_chosen": ax_norm.plot([], [], **chosen)[0],
            "norm_plain": ax_norm.plot([], [], **plain)[0],
            "nan_chosen": ax_loss.axvline(0, color="tab:blue", lw=1.0, ls=":"),
            "nan_plain": ax_loss.axvline(0, color="0.5", lw=1.0, ls=":"),
            "threshold": ax_norm.axhline(1.0, color="tab:red", lw=1.0, label="norm threshold"),
        }
        ax_loss.axhline(1 / 6, color="tab:green", lw=0.8, ls=":", label="predict the mean (1/6)")
        for ax, ylabel, top in ((ax_loss, "mini-batch loss (MSE, log scale)", LOSS_TOP),
                                (ax_norm, "gradient norm before clipping (log)", NORM_TOP)):
            ax.set_yscale("log")
            ax.set_xlim(0, self.num_steps)
            ax.set_ylim(1e-2, top * 1.5)
            ax.set_yticks([10.0 ** k for k in range(-2, int(np.log10(top)) + 1)])
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("SGD step")
            ax.set_ylabel(ylabel)
        ax_loss.set_title(f"Adding problem: training loss (top edge: {LOSS_TOP:.0e} or more)", fontsize=9)
        ax_norm.set_title(f"Global gradient norm (top edge: {NORM_TOP:.0e} or more)", fontsize=9)
        self._legend_axes = ax_loss
        self._fig, self._lines = fig, lines
        self._suptitle = fig.suptitle("", fontsize=9)

    def figure(self, mode, threshold, lr, *, use_cache=True):
        """A matplotlib Figure: loss (left) and gradient norm before clipping (right) against the step.

        Solid blue: the chosen setting; dashed grey: plain SGD at the same learning rate; dotted
        vertical lines: the step at which a run turned NaN. The same Figure object is updated by every
        call.
        """
        hists = self.curves(mode, threshold, lr, use_cache=use_cache)
        if getattr(self, "_fig", None) is None:
            self._build_figure()
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
            lines[f"loss_{key}"].set_data(steps, np.minimum(hist["loss"], LOSS_TOP))
            lines[f"norm_{key}"].set_data(steps, np.minimum(hist["grad_norm"], NORM_TOP))
            lines[f"loss_{key}"].set_label(hist["label"])
            name = hist["label"].split(",")[0]
            at = hist["diverged_at"]
            if at is None:
                lines[f"nan_{key}"].set_visible(False)
                verdicts.append(f"{name}: final loss {np.mean(hist['loss'][-20:]):.3g}")
            else:
                lines[f"nan_{key}"].set_xdata([at, at])
                verdicts.append(f"{name}: NaN at step {at}")
        lines["threshold"].set_visible(mode == "global norm")
        lines["threshold"].set_ydata([threshold, threshold])
        ax = self._legend_axes
        handles = [h for h in ax.get_lines() if h.get_visible() and not h.get_label().startswith("_")]
        ax.legend(handles=handles, loc="center right", fontsize=8)
        self._suptitle.set_text(" | ".join(verdicts) + f"\n(lr = {lr:.3g})")
        return self._fig

    def png(self, mode, threshold, lr, *, use_cache=True):
        """The figure rendered as PNG bytes."""
        from .plots import figure_png

        return figure_png(self.figure(mode, threshold, lr, use_cache=use_cache))

    def redraw(self, mode, threshold, lr):
        """One redraw with retraining (cache bypassed): train, draw, render. Returns PNG bytes.

        This is the operation the 1 s widget budget applies to; ``last_seconds`` keeps its duration.
        """
        start = time.perf_counter()
        png = self.png(mode, threshold, lr, use_cache=False)
        self.last_png, self.last_seconds = png, time.perf_counter() - start
        if self._image is not None:
            self._image.value = png
        return png

    def widget(self, mode="global norm", threshold=1.0, lr=0.15):
        """The interactive box: mode dropdown, threshold and learning-rate sliders, and the plot."""
        import ipywidgets as widgets

        self._check(mode, threshold, lr)
        mode_w = widgets.Dropdown(options=[(_MODE_LABELS[m], m) for m in MODES], value=mode,
                                  description="clipping")
        threshold_w = widgets.FloatLogSlider(value=threshold, base=10, min=-2, max=2, step=0.1,
                                             description="threshold", continuous_update=False,
                                             readout_format=".3g")
        lr_w = widgets.FloatLogSlider(value=lr, base=10, min=-2, max=0, step=0.05, description="lr",
                                      continuous_update=False, readout_format=".3g")
        self._image = widgets.Image(format="png", layout=widgets.Layout(width="760px"))
        status = widgets.Label()

        def update(_change=None):
            start = time.perf_counter()
            png = self.png(mode_w.value, threshold_w.value, lr_w.value)
            self._image.value = png
            self.last_png, self.last_seconds = png, time.perf_counter() - start
            status.value = f"redrawn in {self.last_seconds * 1000:.0f} ms"

        for w in (mode_w, threshold_w, lr_w):
            w.observe(update, names="value")
        update()
        box = widgets.VBox([widgets.HBox([mode_w, threshold_w, lr_w]), self._image, status])
        box.controls = {"mode": mode_w, "threshold": threshold_w, "lr": lr_w}
        box.image = self._image
        return box
