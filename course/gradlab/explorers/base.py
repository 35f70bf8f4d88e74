"""The one shape of every explorer of the course: controls -> ``compute(**settings)`` -> ``draw`` -> PNG.

An explorer is built with the learner's functions (gradlab never holds a notebook's answers for that
notebook) and shows ``.widget``: a row of controls, a status line and an ``ipywidgets.Image``. Every
control change calls ``redraw()``, which

1. reads the settings from the controls (``settings(**overrides)``: keyword overrides win, so tests
   and benchmarks redraw any setting without a browser);
2. computes the frame's data with ``compute(**settings)`` (data only: no drawing, testable alone);
3. updates one persistent matplotlib figure with ``draw(data, settings)``, which returns the status
   line;
4. renders the figure with ``render()`` through ``figure_png``, the course's one PNG encoder.

Every figure uses ``DPI`` and log axes label their ticks with ``power_of_ten_label``; every text is at
least ``MIN_FONT_PT`` points. Defined for notebooks 01-06 (one module per explorer in this package).
"""

from __future__ import annotations

import io
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 96
"""Every explorer's figure DPI: 96 pixels per inch, what a browser calls 1 in, so 9 pt reads as 12 px."""
MIN_FONT_PT = 9
"""The smallest text an explorer draws, in points (at ``DPI``)."""
FONT_PT = 10
"""Axis labels, tick labels and titles."""
LEGEND_PT = 9


def figure_png(fig, *, draw=True):
    """``fig`` as PNG bytes for a widget's ``Image``; the one encoder every explorer uses.

    fig: a matplotlib ``Figure``. Drawn first unless ``draw=False`` (already blitted). Encoded with
    fast compression, several times quicker than ``savefig``'s default. Defined for notebook 01.
    """
    from PIL import Image

    if not hasattr(fig.canvas, "buffer_rgba"):  # a bare Figure: give it an Agg canvas to draw on
        FigureCanvasAgg(fig)
        draw = True
    if draw:
        fig.canvas.draw()
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def power_of_ten_label(value, _pos=None):
    """A log-axis tick label in plain text: ``1``, ``1e-3``, ``1e10``, ``2e5`` (no mathtext to parse on
    every redraw, which cost a third of one). value: a positive float. Defined for notebook 01."""
    if not value > 0 or not np.isfinite(value):
        return ""
    mantissa, exponent = f"{value:.0e}".split("e")
    exponent = int(exponent)
    if mantissa == "1":
        return "1" if exponent == 0 else f"1e{exponent}"
    return f"{mantissa}e{exponent}" if exponent else mantissa


def log_axis(ax, locator=None):
    """Make ``ax``'s y axis logarithmic with plain ``power_of_ten_label`` ticks and no minor ticks.

    Used by every explorer, from notebook 01 on.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(locator if locator is not None else LogLocator(numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(power_of_ten_label))
    ax.yaxis.set_minor_locator(NullLocator())


def training_axes(ax, num_steps, ylim, ylabel, *, numticks=8):
    """An axes for a training curve: x the SGD step from 0 to ``num_steps``, y logarithmic over ``ylim``
    (lo, hi) with ``log_axis``'s ticks (at most ``numticks``), ``ylabel``, a light major grid and the
    course's font sizes (``style_axes``).

    Used by the explorers that retrain and plot curves (notebooks 05 and 08).
    """
    from matplotlib.ticker import LogLocator

    ax.set_xlim(0, num_steps)
    ax.set_ylim(*ylim)
    log_axis(ax, LogLocator(numticks=numticks))
    ax.set_xlabel("SGD step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    style_axes(ax)


def new_figure(width, height):
    """A ``Figure`` (width x height inches at ``DPI``) with an Agg canvas and the course's font sizes.

    Used by every explorer, from notebook 01 on.
    """
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def style_axes(ax):
    """The course's font sizes on one axes: labels, ticks and title at ``FONT_PT``.

    Used by every explorer, from notebook 01 on.
    """
    ax.tick_params(labelsize=FONT_PT)
    ax.xaxis.label.set_fontsize(FONT_PT)
    ax.yaxis.label.set_fontsize(FONT_PT)
    ax.title.set_fontsize(FONT_PT)


def require_callable(**functions):
    """TypeError unless every keyword argument is callable (the learner's functions).

    Used by every explorer, from notebook 01 on.
    """
    for name, f in functions.items():
        if not callable(f):
            raise TypeError(f"{name} must be a function (the one you wrote in the notebook), got {f!r}")


class Explorer:
    """The base of every explorer: controls -> ``compute(**settings)`` -> ``draw(data, settings)`` -> PNG.

    A subclass builds its figure, then calls ``_build_widget({name: control, ...})`` with controls named
    like ``compute``'s parameters; each becomes an attribute (``explorer.lr``) and an entry of
    ``explorer.controls``. It defines ``compute(**settings)`` (data only) and ``draw(data, settings)``
    (updates the figure, returns the status line); ``render()`` may blit instead of drawing everything.
    ``ALIASES`` maps other names accepted by ``redraw`` to settings (``{"T": "num_steps"}``);
    ``last_seconds`` is the latest frame's duration.
    Defined in notebook 01 (its HiddenStateExplorer is the first).
    """

    ALIASES: dict = {}

    fig = None
    controls: dict = {}
    last_seconds = None
    """How long the latest ``redraw`` took, in seconds (None before the first)."""

    def _build_widget(self, controls, *, first=True):
        """Attach ``controls`` (ordered {setting name: ipywidgets control}), build ``.widget``, draw once."""
        import ipywidgets as w

        self.controls = dict(controls)
        for name, control in self.controls.items():
            setattr(self, name, control)
            control.style.description_width = "initial"  # a description such as "num_hiddens" in full
            control.observe(self._on_change, names="value")
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self.widget = w.VBox([w.HBox(list(self.controls.values())), self.status, self.image])
        self.last_data = None
        if first:
            self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def settings(self, **overrides):
        """The controls' values, with ``overrides`` (by setting name or alias; None keeps the control's)."""
        values = {name: control.value for name, control in self.controls.items()}
        given = {}
        for name, value in overrides.items():
            if value is None:
                continue
            key = self.ALIASES.get(name, name)
            if key not in values:
                raise TypeError(f"{type(self).__name__} has no setting {name!r}; its settings are "
                                f"{', '.join(values)}")
            if key in given and given[key] != value:
                raise ValueError(f"give {key} once (got {given[key]!r} and {value!r} for it)")
            given[key] = value
        values.update(given)
        return values

    def compute(self, **settings):
        """The frame's data for ``settings``, without drawing."""
        raise NotImplementedError

    def draw(self, data, settings):
        """Update the figure for ``data`` (computed for ``settings``); return the status line's text."""
        raise NotImplementedError

    def render(self):
        """The figure as PNG bytes (``figure_png``)."""
        return figure_png(self.fig)

    def redraw(self, **overrides):
        """One frame: settings -> ``compute`` -> ``draw`` -> PNG in ``self.image``; returns the data.

        Keyword arguments override the controls' values (the controls are not moved). The frame's
        duration is kept in ``last_seconds``.
        """
        start = time.perf_counter()
        settings = self.settings(**overrides)
        data = self.compute(**settings)
        self.status.value = self.draw(data, settings)
        self.image.value = self.render()
        self.last_data = data
        self.last_seconds = time.perf_counter() - start
        return data
