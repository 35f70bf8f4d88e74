"""Notebook 02's gradient-norm explorer: spectral radius, sequence length, activation -> ||dL/dh_t||."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import LogLocator

from .. import vanishing
from .base import LEGEND_PT, Explorer, log_axis, new_figure, require_callable, style_axes

__all__ = ["GradNormExplorer"]


class GradNormExplorer(Explorer):
    """Spectral radius, sequence length and activation -> live log-scale plot of ||dL/dh_t||.

    Built with the notebook's ``hidden_grad_norms(dh (N, T, H), h (N, T, H), Wh (H, H), activation) ->
    norms (T,)``, ``scale_to_spectral_radius(W (H, H), rho) -> (H, H)`` and ``largest_singular_value(W)
    -> float``, on ``gradlab.vanishing.recurrent_problem(num_hiddens, max_steps, seed)``. Controls ``rho``,
    ``num_steps`` (T; ``redraw`` also takes ``T=``) and ``activation``. ``compute(rho, num_steps,
    activation)`` returns ``gradlab.vanishing.grad_norm_curve``'s dict (``t`` (T,), ``norms`` (T,),
    ``bound`` (T,), ``gamma``, ``sigma_max``) without drawing; ``redraw(**overrides)`` draws it beside
    the bound of Pascanu, Mikolov & Bengio (2013) and returns it. Defined in notebook 02.
    """

    ALIASES = {"T": "num_steps"}

    def __init__(self, hidden_grad_norms, scale_to_spectral_radius, largest_singular_value, *,
                 num_hiddens=32, max_steps=200, seed=0, rho=1.0, num_steps=100, activation="tanh"):
        require_callable(hidden_grad_norms=hidden_grad_norms, scale_to_spectral_radius=scale_to_spectral_radius,
                         largest_singular_value=largest_singular_value)
        import ipywidgets as w

        self._functions = {"hidden_grad_norms": hidden_grad_norms,
                           "scale_to_spectral_radius": scale_to_spectral_radius,
                           "largest_singular_value": largest_singular_value}
        self.problem = vanishing.recurrent_problem(num_hiddens, max_steps, seed=seed)

        self.fig = new_figure(6.6, 3.4)
        self.ax = self.fig.add_subplot()
        (self._line,) = self.ax.plot([], [], "o-", ms=2.5, lw=1.2, label=r"measured $\|\partial L/\partial h_t\|$")
        (self._bound,) = self.ax.plot([], [], "--", lw=1.2, color="tab:red",
                                      label=r"bound $\|\partial L/\partial h_T\|\,(\gamma\,\sigma_{max})^{T-t}$")
        log_axis(self.ax, LogLocator(numticks=7))
        self.ax.set_xlabel("time step t (steps; the loss reads h at the last step)")
        self.ax.set_ylabel(r"$\|\partial L/\partial h_t\|$ (log scale)")
        self.ax.grid(True, which="major", alpha=0.3)
        self.ax.legend(loc="lower right", fontsize=LEGEND_PT)
        # the widest title a frame can have, so that the layout leaves room for every one
        self.ax.set_title("Gradient norm per time step: sigmoid, \u03c1 = 2.00\n\u03c3_max = 99.99, "
                          "\u03b3\u00b7\u03c3_max = 99.99")
        style_axes(self.ax)
        self.fig.tight_layout()

        self._build_widget({
            "rho": w.FloatSlider(value=rho, min=0.5, max=2.0, step=0.05, description="rho",
                                 continuous_update=True, readout_format=".2f"),
            "num_steps": w.IntSlider(value=num_steps, min=2, max=max_steps, step=1, description="T",
                                     continuous_update=True),
            "activation": w.Dropdown(options=list(vanishing.ACTIVATIONS), value=activation,
                                     description="activation"),
        })

    def compute(self, rho, num_steps, activation):
        """The frame's data, no drawing: see ``gradlab.vanishing.grad_norm_curve``."""
        return vanishing.grad_norm_curve(self.problem, float(rho), int(num_steps), activation, **self._functions)

    def draw(self, data, settings):
        """Put the measured norms and the bound on the figure; returns the status line."""
        rho, num_steps, activation = float(settings["rho"]), int(settings["num_steps"]), settings["activation"]
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
        self.ax.set_title(f"Gradient norm per time step: {activation}, \u03c1 = {rho:.2f}\n"
                          f"\u03c3_max = {data['sigma_max']:.2f}, \u03b3\u00b7\u03c3_max = {gs:.2f}")
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        verdict = "vanishing is guaranteed" if gs < 1 else "no guarantee: the gradient may grow"
        return (f"||dL/dh_0|| / ||dL/dh_T|| = {ratio:.3g} over T = {num_steps} steps; "
                f"gamma * sigma_max = {gs:.3f}: {verdict}")
