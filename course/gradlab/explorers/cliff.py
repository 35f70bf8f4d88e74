"""Notebook 02's cliff explorer: gradient descent on the one-unit RNN's error surface, with clipping."""

from __future__ import annotations

import numpy as np

from .. import vanishing
from .base import LEGEND_PT, Explorer, figure_png, new_figure, require_callable, style_axes

__all__ = ["CliffExplorer", "LEARNING_RATES", "THRESHOLDS"]

LEARNING_RATES = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
"""The learning-rate slider's positions: round values, 3 among them (the run notebook 02's text uses)."""
THRESHOLDS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""The clipping threshold slider's positions (gradient norm)."""


class CliffExplorer(Explorer):
    """The cliff of Pascanu et al. (2013) with a gradient-descent path: learning rate and clipping.

    cliff_loss_and_grad: the notebook's ``cliff_loss_and_grad(w, b) -> (E, dE_dw, dE_db)`` (arrays of one
    shape, broadcast). Controls ``lr`` (``LEARNING_RATES``), ``clipping`` (on/off) and ``clip`` (the
    threshold, ``THRESHOLDS``). ``compute(lr, clipping, clip)`` returns the path: (num_steps + 1, 2)
    points (w, b) of gradient descent from ``start`` (``gradlab.vanishing.sgd_path``), without drawing;
    ``redraw(**overrides)`` draws it on the surface (computed once, at construction) and returns it;
    ``redraw(clip=c)`` alone turns clipping on. It starts at lr = 3 with clipping off: there the plain
    run is thrown off the picture while the run clipped at 0.5 crosses the wall into the valley.
    Defined in notebook 02.
    """

    def __init__(self, cliff_loss_and_grad, *, start=(5.2, -3.2), num_steps=40, w_range=(2.0, 8.0),
                 b_range=(-6.0, 1.0), num=161, lr=3.0, clip=0.5, clipping=False):
        require_callable(cliff_loss_and_grad=cliff_loss_and_grad)
        import ipywidgets as w

        for name, value, options in (("lr", lr, LEARNING_RATES), ("clip", clip, THRESHOLDS)):
            if value not in options:
                raise ValueError(f"{name} must be one of the slider's positions {options}, got {value!r}")
        self.loss_and_grad = cliff_loss_and_grad
        self.start = tuple(float(v) for v in start)
        self.path_steps = int(num_steps)
        self.w_range, self.b_range = tuple(w_range), tuple(b_range)
        ws, bs, E = vanishing.cliff_surface(cliff_loss_and_grad, w_range, b_range, num=num)

        self.fig = new_figure(6.0, 4.3)
        self.ax = self.fig.add_subplot()
        im = self.ax.imshow(E, origin="lower", aspect="auto", cmap="viridis",
                            extent=(ws[0], ws[-1], bs[0], bs[-1]), interpolation="nearest")
        bar = self.fig.colorbar(im, ax=self.ax, label="error E (squared output units)")
        style_axes(bar.ax)
        (self._path,) = self.ax.plot([], [], "o-", color="white", ms=3, lw=1.2, label="gradient descent")
        (self._start,) = self.ax.plot([self.start[0]], [self.start[1]], "*", color="red", ms=12, label="start")
        self.ax.set_xlim(ws[0], ws[-1])
        self.ax.set_ylim(bs[0], bs[-1])
        self.ax.set_xlabel("recurrent weight w (dimensionless)")
        self.ax.set_ylabel("bias b (dimensionless)")
        self.ax.legend(loc="upper left", fontsize=LEGEND_PT)
        # the widest two-line title a frame can have, so that the layout leaves room for every one
        self.ax.set_title("lr = 0.3, clipping off (threshold 0.05 unused)\n"
                          "largest step 0.000, final E = 0.000, ends outside at (-00.0, -00.0)")
        style_axes(self.ax)
        self.fig.tight_layout()
        # The surface never changes: draw it once without the path and title, and blit frames onto it.
        self._path.set_visible(False)
        self.ax.title.set_text("")
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._path.set_visible(True)

        self._build_widget({
            "lr": w.SelectionSlider(options=list(LEARNING_RATES), value=lr, description="lr"),
            "clipping": w.Checkbox(value=clipping, description="clip the gradient norm"),
            "clip": w.SelectionSlider(options=list(THRESHOLDS), value=clip, description="threshold"),
        })

    def settings(self, **overrides):
        """The controls' values with ``overrides``; a ``clip`` given without ``clipping`` turns it on."""
        if overrides.get("clip") is not None and overrides.get("clipping") is None:
            overrides["clipping"] = True
        return super().settings(**overrides)

    def compute(self, lr, clipping, clip):
        """The path (num_steps + 1, 2) of gradient descent from ``start``, clipped to norm ``clip`` if
        ``clipping``: see ``gradlab.vanishing.sgd_path``."""
        return vanishing.sgd_path(self.loss_and_grad, self.start, float(lr), self.path_steps,
                                  clip=float(clip) if clipping else None)

    def ends_inside(self, path):
        """Whether the path's last point (w, b) lies inside the picture."""
        (w0, w1), (b0, b1) = self.w_range, self.b_range
        return bool(w0 <= path[-1, 0] <= w1 and b0 <= path[-1, 1] <= b1)

    def draw(self, path, settings):
        """Put the path on the surface and say where it ends; returns the status line."""
        lr, clip = float(settings["lr"]), float(settings["clip"])
        clipping = bool(settings["clipping"])
        self._path.set_data(path[:, 0], path[:, 1])
        steps = np.hypot(*np.diff(path, axis=0).T) if len(path) > 1 else np.zeros(1)
        end_E = float(np.asarray(self.loss_and_grad(*path[-1])[0]))
        mode = f"gradient norm clipped to {clip:.3g}" if clipping else f"clipping off (threshold {clip:.3g} unused)"
        where = ("" if self.ends_inside(path) else
                 f", ends outside at ({path[-1, 0]:.3g}, {path[-1, 1]:.3g})")
        self.ax.title.set_text(f"lr = {lr:.3g}, {mode}\nlargest step {steps.max():.3g}, final E = {end_E:.3g}{where}")
        return (f"{len(path) - 1} steps; largest step {steps.max():.3g}"
                + (f" (at most lr x threshold = {lr * clip:.3g})" if clipping else ""))

    def render(self):
        """Blit the path, the start and the title onto the surface drawn once."""
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for artist in (self._path, self._start, self.ax.title):
            self.ax.draw_artist(artist)
        return figure_png(self.fig, draw=False)
