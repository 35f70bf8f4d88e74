"""Interactive explorers for notebook 02 (vanishing and exploding gradients).

Each explorer is a small class: its ``widget`` is the ipywidgets object to display, and its ``redraw``
draws one frame for the given control values without a browser (tests and benchmarks call it
directly). A redraw computes its data with a pure function of ``gradlab.vanishing``, updates the lines
of one persistent matplotlib figure (no pyplot, no global state) and renders it to a PNG shown in an
``ipywidgets.Image``, so every slider move visibly replaces the picture.

* ``GradNormExplorer``: spectral radius, sequence length and activation -> ||dL/dh_t|| per time step
  on a log scale, with the bound of Pascanu, Mikolov & Bengio (2013).
* ``CliffExplorer``: the one-unit "cliff" RNN's error surface with a gradient-descent path; learning
  rate, clipping on/off and clipping threshold.

Neither holds an answer of notebook 02: both take the learner's functions as arguments.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from . import vanishing
from .plots import figure_png

_DPI = 80


def _require_callable(**functions):
    for name, f in functions.items():
        if not callable(f):
            raise TypeError(f"{name} must be a function (the one you wrote in the notebook), got {f!r}")


def _power_of_ten_label(value, _pos=None):
    """A log-axis tick label such as 1e-3 or 1e5, plain text (no mathtext to parse on each redraw)."""
    return f"{value:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


class GradNormExplorer:
    """Spectral radius, sequence length and activation -> live log-scale plot of ||dL/dh_t||.

    Build it with the notebook's ``hidden_grad_norms(dh, h, Wh, activation)``,
    ``scale_to_spectral_radius(W, rho)`` and ``largest_singular_value(W)``; display ``.widget``.
    ``redraw(rho=..., num_steps=..., activation=...)`` draws one frame and returns its data (the dict of
    ``gradlab.vanishing.grad_norm_curve``); the sliders call it on every change.
    """

    def __init__(self, hidden_grad_norms, scale_to_spectral_radius, largest_singular_value, *,
                 num_hiddens=32, max_steps=200, seed=0, rho=1.0, num_steps=100, activation="tanh"):
        _require_callable(hidden_grad_norms=hidden_grad_norms, scale_to_spectral_radius=scale_to_spectral_radius,
                          largest_singular_value=largest_singular_value)
        import ipywidgets as w

        self._functions = {"hidden_grad_norms": hidden_grad_norms,
                           "scale_to_spectral_radius": scale_to_spectral_radius,
                           "largest_singular_value": largest_singular_value}
        self.problem = vanishing.recurrent_problem(num_hiddens, max_steps, seed=seed)
        self.rho = w.FloatSlider(value=rho, min=0.5, max=2.0, step=0.05, description="rho",
                                 continuous_update=True, readout_format=".2f")
        self.num_steps = w.IntSlider(value=num_steps, min=2, max=max_steps, step=1, description="T",
                                     continuous_update=True)
        self.activation = w.Dropdown(options=list(vanishing.ACTIVATIONS), value=activation,
                                     description="activation")
        self.image = w.Image(format="png")
        self.status = w.HTML()

        self.fig = Figure(figsize=(7.5, 4.0), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        (self._line,) = self.ax.plot([], [], "o-", ms=2.5, lw=1.2, label=r"measured $\|\partial L/\partial h_t\|$")
        (self._bound,) = self.ax.plot([], [], "--", lw=1.2, color="tab:red",
                                      label=r"bound $\|\partial L/\partial h_T\|\,(\gamma\,\sigma_{max})^{T-t}$")
        self.ax.set_yscale("log")
        self.ax.yaxis.set_major_locator(LogLocator(numticks=7))
        self.ax.yaxis.set_minor_locator(NullLocator())
        # plain "1e-3" tick labels: mathtext labels are re-parsed on every redraw and cost ~30% of it
        self.ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten_label))
        self.ax.set_xlabel("time step t (steps; the loss reads h at the last step)")
        self.ax.set_ylabel(r"$\|\partial L/\partial h_t\|$ (dimensionless, log scale)")
        self.ax.grid(True, which="major", alpha=0.3)
        self.ax.legend(loc="lower right", fontsize=8)
        self.ax.set_title(r"Gradient norm per time step: $\sigma_{max}$", fontsize=10)  # room for the title
        self.fig.tight_layout()

        for control in (self.rho, self.num_steps, self.activation):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.rho, self.num_steps, self.activation]), self.status, self.image])
        self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def compute(self, rho, num_steps, activation):
        """The frame's data, no drawing: see ``gradlab.vanishing.grad_norm_curve``."""
        return vanishing.grad_norm_curve(self.problem, rho, num_steps, activation, **self._functions)

    def redraw(self, rho=None, num_steps=None, activation=None, *, T=None):
        """Draw one frame (the controls' values for arguments left as None); returns the frame's data.

        ``T`` is an alias of ``num_steps``.
        """
        if T is not None:
            if num_steps is not None and int(num_steps) != int(T):
                raise ValueError(f"give num_steps or T, not both (got {num_steps} and {T})")
            num_steps = T
        rho = self.rho.value if rho is None else float(rho)
        num_steps = self.num_steps.value if num_steps is None else int(num_steps)
        activation = self.activation.value if activation is None else activation
        data = self.compute(rho, num_steps, activation)
        t, norms, bound = data["t"], data["norms"], data["bound"]
        self._line.set_data(t, np.where(norms > 0, norms, np.nan))
        self._bound.set_data(t, np.where(np.isfinite(bound) & (bound > 0), bound, np.nan))
        shown = np.concatenate([norms[norms > 0], bound[np.isfinite(bound) & (bound > 0)]])
        shown = shown[np.isfinite(shown)]
        lo, hi = (shown.min(), shown.max()) if shown.size else (1e-3, 1e3)
        lo, hi = max(lo, 1e-300), min(hi, 1e300)
        self.ax.set_ylim(lo / 3.0, hi * 3.0)
        self.ax.set_xlim(-0.5, num_steps - 0.5)
        gs = data["gamma"] * data["sigma_max"]
        self.ax.set_title(f"Gradient norm per time step: {activation}, \u03c1 = {rho:.2f}, "
                          f"\u03c3_max = {data['sigma_max']:.2f}, \u03b3\u00b7\u03c3_max = {gs:.2f}", fontsize=10)
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        verdict = "vanishing is guaranteed" if gs < 1 else "no guarantee: the gradient may grow"
        self.status.value = (f"||dL/dh_0|| / ||dL/dh_T|| = {ratio:.3g} over T = {num_steps} steps; "
                             f"gamma * sigma_max = {gs:.3f}: {verdict}")
        self.image.value = figure_png(self.fig)
        return data


class CliffExplorer:
    """The cliff of Pascanu et al. (2013) with a gradient-descent path: learning rate and clipping.

    Build it with the notebook's ``cliff_loss_and_grad(w, b)``; display ``.widget``.
    ``redraw(lr=..., clip=..., clipping=...)`` draws one frame and returns the path, an array of (w, b)
    points. The surface is computed once, at construction.
    """

    def __init__(self, cliff_loss_and_grad, *, start=(5.2, -3.2), num_steps=40, w_range=(2.0, 8.0),
                 b_range=(-6.0, 1.0), num=161, lr=3.0, clip=0.5, clipping=False):
        _require_callable(cliff_loss_and_grad=cliff_loss_and_grad)
        import ipywidgets as w

        self.loss_and_grad = cliff_loss_and_grad
        self.start = tuple(float(v) for v in start)
        self.path_steps = int(num_steps)
        self.w_range, self.b_range = tuple(w_range), tuple(b_range)
        ws, bs, E = vanishing.cliff_surface(cliff_loss_and_grad, w_range, b_range, num=num)

        self.lr = w.FloatLogSlider(value=lr, base=10, min=-1, max=1.5, step=0.05, description="lr",
                                   readout_format=".3g")
        self.clip = w.FloatLogSlider(value=clip, base=10, min=-2, max=1, step=0.05, description="threshold",
                                     readout_format=".3g")
        self.clipping = w.Checkbox(value=clipping, description="clip the gradient norm")
        self.image = w.Image(format="png")
        self.status = w.HTML()

        self.fig = Figure(figsize=(7.0, 5.0), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        im = self.ax.imshow(E, origin="lower", aspect="auto", cmap="viridis",
                            extent=(ws[0], ws[-1], bs[0], bs[-1]), interpolation="nearest")
        self.fig.colorbar(im, ax=self.ax, label="error E (squared output units)")
        (self._path,) = self.ax.plot([], [], "o-", color="white", ms=3, lw=1.2, label="gradient descent")
        (self._start,) = self.ax.plot([self.start[0]], [self.start[1]], "*", color="red", ms=12, label="start")
        self.ax.set_xlim(ws[0], ws[-1])
        self.ax.set_ylim(bs[0], bs[-1])
        self.ax.set_xlabel("recurrent weight w (dimensionless)")
        self.ax.set_ylabel("bias b (dimensionless)")
        self.ax.legend(loc="upper left", fontsize=8)
        self.ax.set_title("The cliff: gradient descent\n ", fontsize=10)  # leaves room for two lines
        self.fig.tight_layout()
        # The surface never changes: draw it once without the path and title, and blit frames onto it.
        self._path.set_visible(False)
        self.ax.title.set_text("")
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._path.set_visible(True)

        for control in (self.lr, self.clip, self.clipping):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.lr, self.clipping, self.clip]), self.status, self.image])
        self.redraw()

    def _on_change(self, _change=None):
        self.redraw()

    def compute(self, lr, clip):
        """The path (k + 1, 2) of gradient descent from ``start``: see ``gradlab.vanishing.sgd_path``."""
        return vanishing.sgd_path(self.loss_and_grad, self.start, lr, self.path_steps, clip=clip)

    def redraw(self, lr=None, clip=None, clipping=None):
        """Draw one frame; returns the path. Arguments left as None take the controls' values.

        ``clipping=False`` is plain gradient descent; ``clipping=True`` rescales every gradient whose
        norm exceeds ``clip`` to norm ``clip``. Giving ``clip`` alone turns clipping on.
        """
        lr = self.lr.value if lr is None else float(lr)
        if clipping is None:
            clipping = True if clip is not None else self.clipping.value
        clip = (self.clip.value if clip is None else float(clip)) if clipping else None
        path = self.compute(lr, clip)
        self._path.set_data(path[:, 0], path[:, 1])
        steps = np.hypot(*np.diff(path, axis=0).T) if len(path) > 1 else np.zeros(1)
        end_E = float(np.asarray(self.loss_and_grad(*path[-1])[0]))
        (w0, w1), (b0, b1) = self.w_range, self.b_range
        inside = w0 <= path[-1, 0] <= w1 and b0 <= path[-1, 1] <= b1
        mode = (f"clipping off (threshold {self.clip.value:.3g} unused)" if clip is None
                else f"gradient norm clipped to {clip:.3g}")
        self.ax.title.set_text(f"The cliff: gradient descent, lr = {lr:.3g}, {mode}\n"
                               f"largest step {steps.max():.3g}, final E = {end_E:.3g}"
                               + ("" if inside else
                                  f", ends outside at ({path[-1, 0]:.3g}, {path[-1, 1]:.3g})"))
        self.status.value = (f"{len(path) - 1} steps; largest step {steps.max():.3g}"
                             + ("" if clip is None else f" (at most lr x threshold = {lr * clip:.3g})"))
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for artist in (self._path, self._start, self.ax.title):
            self.ax.draw_artist(artist)
        self.image.value = figure_png(self.fig, draw=False)
        return path
