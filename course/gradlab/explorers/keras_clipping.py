"""Notebook 06's explorer: a Keras clipping mode and threshold -> each variable's gradient norm before and after."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator

from .base import LEGEND_PT, Explorer, log_axis, new_figure, style_axes

__all__ = ["KerasClippingExplorer", "clipping_explorer", "clipping_summary"]


def clipping_summary(grads, clipped):
    """Per-array norms before and after clipping, and the cosine between the two updates.

    grads, clipped: lists of K arrays, ``clipped[k]`` shaped like ``grads[k]``. Returns
    ``(norms_before (K,), norms_after (K,), cosine)``; the cosine is 1.0 when clipping kept the direction
    of the whole update (global-norm clipping) and smaller when it changed it. Defined in notebook 06.
    """
    before = [np.asarray(g, dtype=np.float64) for g in grads]
    after = [np.asarray(g, dtype=np.float64) for g in clipped]
    norms_before = np.array([np.linalg.norm(g) for g in before])
    norms_after = np.array([np.linalg.norm(g) for g in after])
    a = np.concatenate([g.ravel() for g in before])
    b = np.concatenate([g.ravel() for g in after])
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / denominator) if denominator > 0 else float("nan")
    return norms_before, norms_after, cosine


class KerasClippingExplorer(Explorer):
    """Pick a clipping mode and threshold, see each variable's gradient norm before and after.

    grads: a list of K gradient arrays (any shapes), names: K labels. ``clipnorm_fn(grads, c)`` and
    ``global_clipnorm_fn(grads, c)`` are the notebook's NumPy models of Keras's ``clipnorm`` and
    ``global_clipnorm`` (exercise 3), each returning K arrays shaped like ``grads``; value clipping
    uses ``np.clip``. Nothing is trained. Controls ``mode`` (``MODES``) and ``threshold``.
    ``compute(mode, threshold)`` returns ``clipping_summary``'s ``(norms_before (K,), norms_after (K,),
    cosine)`` without drawing; ``redraw(**overrides)`` draws the two norms of every variable as bars
    and returns the same triple. Defined in notebook 06.
    """

    MODES = ("clipnorm", "global_clipnorm", "clipvalue")

    def __init__(self, grads, names, clipnorm_fn, global_clipnorm_fn, *, mode="clipnorm", threshold=None):
        if not callable(clipnorm_fn) or not callable(global_clipnorm_fn):
            raise TypeError("KerasClippingExplorer needs the two clipping functions (callables)")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        import ipywidgets as w

        self.grads = [np.asarray(g, dtype=np.float64) for g in grads]
        self.names = [str(n) for n in names]
        if len(self.names) != len(self.grads):
            raise ValueError(f"{len(self.grads)} gradients but {len(self.names)} names")
        self._clip = {
            "clipnorm": lambda c: clipnorm_fn(self.grads, c),
            "global_clipnorm": lambda c: global_clipnorm_fn(self.grads, c),
            "clipvalue": lambda c: [np.clip(g, -c, c) for g in self.grads],
        }
        norms = np.array([np.linalg.norm(g) for g in self.grads])
        positive = norms[norms > 0]
        if not positive.size:
            raise ValueError("every gradient is zero: nothing to clip")
        low, high = np.log10(positive.min() / 10), np.log10(norms.max() * 10)
        if threshold is None:
            threshold = float(np.sqrt(positive.min() * norms.max()))

        self.fig = new_figure(6.2, 3.1)
        ax = self.ax = self.fig.subplots()
        x = np.arange(len(self.grads))
        self._before = ax.bar(x - 0.2, np.maximum(norms, 1e-300), width=0.4, color="0.7", label="before clipping")
        self._after = ax.bar(x + 0.2, np.maximum(norms, 1e-300), width=0.4, color="C0", label="after clipnorm")
        self._line = ax.axhline(1.0, color="C3", ls="--", lw=1, label="threshold")
        ax.set_ylim(10.0 ** (low - 1), 10.0 ** (high + 1))
        decades = range(int(np.ceil(low - 1)), int(np.floor(high + 1)) + 1)
        log_axis(ax, FixedLocator([10.0 ** k for k in decades]))
        ax.set_xticks(x, self.names)
        ax.set_xlabel("variable")
        ax.set_ylabel("gradient norm (log scale)")
        # handles given explicitly, in the order of the bars: a legend built from the axes lists the
        # threshold line first and the bar containers after it
        self._legend_handles = [self._before, self._after, self._line]
        self._legend = ax.legend(handles=self._legend_handles, loc="upper right", fontsize=LEGEND_PT)
        self._title = ax.set_title("global_clipnorm = 0.000\ncosine with the raw gradient 0.0000")
        style_axes(ax)
        self.fig.tight_layout()  # once, with the widest title: redraws keep the layout, which keeps them fast

        self._build_widget({
            "mode": w.ToggleButtons(options=list(self.MODES), value=mode, description="mode"),
            "threshold": w.FloatLogSlider(value=float(threshold), base=10, min=low, max=high, step=0.02,
                                          description="threshold", readout_format=".3g",
                                          continuous_update=True),
        })

    def compute(self, mode, threshold):
        """(norms_before (K,), norms_after (K,), cosine) of the gradients clipped by ``mode`` at ``threshold``."""
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        return clipping_summary(self.grads, self._clip[mode](float(threshold)))

    def draw(self, summary, settings):
        """Set the "after" bars, the threshold line, the legend's "after" entry and the title."""
        mode, threshold = settings["mode"], float(settings["threshold"])
        _before, after, cosine = summary
        for bar, value in zip(self._after, after, strict=True):
            bar.set_height(max(float(value), 1e-300) if np.isfinite(value) else 1e-300)
        self._line.set_visible(mode != "clipvalue")
        self._line.set_ydata([threshold, threshold])
        self._after.set_label(f"after {mode}")
        # the legend is built once, its entries in the order of _legend_handles: rename the "after"
        # entry and show the threshold's only while the line is drawn
        texts, handles = self._legend.get_texts(), self._legend.legend_handles
        texts[1].set_text(f"after {mode}")
        for artist in (texts[2], handles[2]):
            artist.set_visible(mode != "clipvalue")
        self._title.set_text(f"{mode} = {threshold:.3g}\ncosine with the raw gradient {cosine:.4f}")
        return (f"{mode} = {threshold:.3g}: norms after clipping "
                + ", ".join(f"{n} {v:.3g}" for n, v in zip(self.names, after, strict=True))
                + f"; cosine with the raw gradient {cosine:.4f}")


def clipping_explorer(grads, names, clipnorm_fn, global_clipnorm_fn, **options):
    """A ``KerasClippingExplorer``'s ``.widget`` (the box to display) with the explorer as its ``explorer``
    attribute, for redrawing without a browser. Arguments as ``KerasClippingExplorer``'s; grads: K arrays of any shapes.
    Defined in notebook 06."""
    explorer = KerasClippingExplorer(grads, names, clipnorm_fn, global_clipnorm_fn, **options)
    box = explorer.widget
    box.explorer = explorer
    return box
