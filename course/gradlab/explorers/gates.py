"""Notebook 07's explorer: model, sequence length, forget-gate bias, truncation -> ||dL/dh_t|| per step."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.ticker import LogLocator

from .. import data, gates
from .base import LEGEND_PT, Explorer, log_axis, new_figure, style_axes

__all__ = ["GatesExplorer", "TRUNCATIONS"]

TRUNCATIONS = ("off", 5, 10, 20, 50)
"""The truncation lengths k the explorer offers ("off": full backpropagation through time)."""
FORGET_BIASES = tuple(np.arange(-1.0, 3.01, 0.5))
"""The forget-gate biases the slider offers (-1 to 3 in steps of 0.5); others are rounded to the nearest."""


class GatesExplorer(Explorer):
    """Model, sequence length, forget-gate bias and truncation k -> live log-scale plot of ||dL/dh_t||.

    The models are ``gradlab.gates.make_layer``'s torch ``nn.RNN`` (tanh), ``nn.LSTM`` and ``nn.GRU`` at
    initialisation (``num_hiddens`` units, seeded), on ``batch_size`` sequences of the adding problem
    (``gradlab.data.adding_problem``, up to ``max_steps`` steps); the loss is the squared error of a
    linear read-out of the last state. ``compute(model, num_steps, forget_bias, truncation)`` returns a dict
    with ``t`` (T,), ``h`` (T,) the norms ||dL/dh_t||, ``c`` (T,) the LSTM's ||dL/dc_t|| (None otherwise),
    ``reach`` = ||dL/dh_1|| / ||dL/dh_T|| and ``cut`` (the last step that truncation detached, or None),
    without drawing: the numbers of ``gradlab.gates.per_step_grad_norms``, obtained from each step's
    Jacobian (torch autograd's, computed once per model and forget bias when the explorer is built), so a
    redraw only multiplies small matrices. The forget bias is taken on the slider's grid
    (``FORGET_BIASES``). The explorer needs no function of the learner's: nothing it shows is an exercise.
    Defined in notebook 07.
    """

    ALIASES = {"T": "num_steps", "k": "truncation"}

    def __init__(self, *, num_hiddens=16, batch_size=4, max_steps=150, seed=0, model="LSTM", num_steps=100,
                 forget_bias=1.0, truncation="off"):
        import ipywidgets as w

        self.num_hiddens, self.seed = int(num_hiddens), int(seed)
        X, y = data.adding_problem(int(batch_size), int(max_steps), seed=seed)
        self._X, self._y = X, y
        self._layers, self._chains = {}, {}
        self._readout = gates._readout(self.num_hiddens, self.seed, torch.float64)

        for model_ in gates.KINDS:  # every step Jacobian the controls can ask for, once (see _chain)
            for bias in (FORGET_BIASES if model_ == "LSTM" else (1.0,)):
                self._chain(model_, bias)

        self.fig = new_figure(6.6, 3.5)
        self.ax = self.fig.add_subplot()
        (self._h_line,) = self.ax.plot([], [], "-", lw=1.5, color="tab:blue", label="||dL/dh_t||")
        (self._c_line,) = self.ax.plot([], [], "--", lw=1.3, color="tab:orange",
                                       label="||dL/dc_t|| (LSTM)")
        self._cut_line = self.ax.axvline(0.0, color="black", ls=":", lw=1.2, label="truncation: last cut")
        log_axis(self.ax, LogLocator(numticks=7))
        self.ax.set_ylim(1e-3, 1.0)
        self.ax.set_xlim(0.5, max_steps + 0.5)
        self.ax.set_xlabel("time step t (steps; the loss reads h at the last step)")
        self.ax.set_ylabel("gradient norm (log scale)")
        self.ax.grid(True, which="major", alpha=0.3)
        self._legend_key = None
        self._set_legend((self._h_line, self._c_line, self._cut_line))
        # the widest title a frame can have, so that the layout leaves room for every one
        self.ax.set_title("LSTM, forget bias 3.0, T = 150, truncated every 50 steps\n"
                          "||dL/dh_1|| / ||dL/dh_T|| = 9.99e-300")
        style_axes(self.ax)
        self.fig.tight_layout()

        self._build_widget({
            "model": w.Dropdown(options=list(gates.KINDS), value=model, description="model"),
            "num_steps": w.IntSlider(value=num_steps, min=10, max=int(max_steps), step=5, description="T",
                                     continuous_update=False),
            "forget_bias": w.FloatSlider(value=forget_bias, min=FORGET_BIASES[0], max=FORGET_BIASES[-1], step=0.5,
                                         description="forget bias (LSTM)", continuous_update=False,
                                         readout_format=".1f"),
            "truncation": w.Dropdown(options=list(TRUNCATIONS), value=truncation, description="truncation k"),
        })

    def _set_legend(self, handles):
        """A legend naming exactly the lines shown (rebuilt only when that set changes)."""
        key = tuple(id(a) for a in handles)
        if key != self._legend_key:
            self._legend = self.ax.legend(handles=list(handles), labels=[a.get_label() for a in handles],
                                          loc="lower right", fontsize=LEGEND_PT)
            self._legend_key = key

    @staticmethod
    def _bias(forget_bias):
        """``forget_bias`` on the slider's grid (the nearest of ``FORGET_BIASES``)."""
        return float(min(FORGET_BIASES, key=lambda b: abs(b - float(forget_bias))))

    def _layer(self, model, forget_bias):
        key = (model, self._bias(forget_bias) if model == "LSTM" else None)
        if key not in self._layers:
            self._layers[key] = gates.make_layer(model, 2, self.num_hiddens, seed=self.seed,
                                                 forget_bias=key[1] if key[1] is not None else 1.0)
        return self._layers[key]

    def _chain(self, model, forget_bias):
        """The model's step Jacobians along the probe sequences, by torch autograd (cached per model and bias).

        Returns (J, dh_dc, h): J (T, N, S, S) with J[t, n] = d s_{t+1} / d s_t for sequence n, the state s
        being h (RNN, GRU) or (h, c) (LSTM); dh_dc (T, N, H) = o * (1 - tanh(c)^2), the path from c_t into
        h_t inside the LSTM's step (None otherwise); h (T, N, H) the states.
        """
        key = (model, self._bias(forget_bias) if model == "LSTM" else None)
        if key in self._chains:
            return self._chains[key]
        layer = self._layer(model, forget_bias)
        W_ih, W_hh, b_ih, b_hh = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        H = self.num_hiddens
        X = torch.as_tensor(self._X)
        N, T, _ = X.shape
        lstm = model == "LSTM"
        cell = {"RNN": torch.rnn_tanh_cell, "LSTM": torch.lstm_cell, "GRU": torch.gru_cell}[model]

        def step(x, s):
            if lstm:
                return torch.cat(cell(x, (s[:, :H], s[:, H:]), W_ih, W_hh, b_ih, b_hh), dim=1)
            return cell(x, s, W_ih, W_hh, b_ih, b_hh)

        S = 2 * H if lstm else H
        with torch.no_grad():  # the states s_0 = 0, s_1, ..., s_T along the probe sequences
            states = [torch.zeros(N, S, dtype=X.dtype)]
            for t in range(T):
                states.append(step(X[:, t], states[-1]))
        s_in = torch.stack(states[:-1]).reshape(T * N, S)
        x_in = X.transpose(0, 1).reshape(T * N, -1)
        # every step of every sequence at once, S copies of each (the cells are batched over rows): copy i
        # is pulled back with the i-th unit vector, so its input gradient is row i of that step's Jacobian
        s_rep = s_in.repeat(S, 1).requires_grad_(True)
        out = step(x_in.repeat(S, 1), s_rep)
        pull = torch.eye(S, dtype=X.dtype).repeat_interleave(T * N, dim=0)  # (S*T*N, S)
        (rows,) = torch.autograd.grad(out, s_rep, grad_outputs=pull)
        J = rows.reshape(S, T, N, S).permute(1, 2, 0, 3).numpy()  # J[t, n, i, j] = d out_i / d in_j
        s_out = torch.stack(states[1:]).numpy()  # (T, N, S)
        dh_dc = None
        if lstm:
            with torch.no_grad():  # the output gate of every step (torch orders the gates i, f, g, o)
                a = x_in @ W_ih.T + b_ih + s_in.detach()[:, :H] @ W_hh.T + b_hh
                o = torch.sigmoid(a[:, 3 * H:]).reshape(T, N, H).numpy()
            dh_dc = o * (1.0 - np.tanh(s_out[:, :, H:]) ** 2)
        self._chains[key] = (J, dh_dc, s_out[:, :, :H])
        return self._chains[key]

    def compute(self, model, num_steps, forget_bias, truncation):
        """The frame's data, no drawing (see the class docstring).

        dL/dh_T comes from the read-out; every earlier gradient is the one after it times that step's
        Jacobian (torch autograd's, cached per model and bias), set to zero where truncation detached the
        state: what ``gradlab.gates.per_step_grad_norms`` computes (tests/test_widgets_07.py checks it).
        """
        T = int(num_steps)
        k = None if truncation in (None, "off") else int(truncation)
        J, dh_dc, hs = self._chain(model, forget_bias)
        H = self.num_hiddens
        N = hs.shape[1]
        w = self._readout.weight.detach().numpy()  # (1, H)
        b = self._readout.bias.detach().numpy()
        grad = np.zeros((N, J.shape[-1]))
        grad[:, :H] = 2.0 / N * (hs[T - 1] @ w.T + b - self._y) @ w  # dL/dh_T of the mean squared error
        h_norms, c_norms = np.empty(T), (np.empty(T) if dh_dc is not None else None)
        for t in range(T - 1, -1, -1):
            h_norms[t] = np.linalg.norm(grad[:, :H])
            if c_norms is not None:  # dL/dc_t: from step t + 1, and through h_t inside step t
                c_norms[t] = np.linalg.norm(grad[:, H:] + grad[:, :H] * dh_dc[t])
            if t == 0:
                break
            if k is not None and t % k == 0:
                grad = np.zeros_like(grad)  # the state was detached before step t + 1 (1-based)
            else:
                grad = np.einsum("ni,nij->nj", grad, J[t])
        cut = None if k is None or k >= T else ((T - 1) // k) * k  # h_cut was detached before step cut + 1
        return {"t": np.arange(1, T + 1), "h": h_norms, "c": c_norms, "cut": cut,
                "reach": float(h_norms[0] / h_norms[-1]) if h_norms[-1] > 0 else float("nan")}

    def draw(self, data, settings):
        """Put the norms (and the last cut) on the figure; returns the status line."""
        model, T = settings["model"], int(settings["num_steps"])
        t, h, c, cut = data["t"], data["h"], data["c"], data["cut"]
        self._h_line.set_data(t, np.where(h > 0, h, np.nan))
        if c is not None:
            self._c_line.set_data(t, np.where(c > 0, c, np.nan))
        self._c_line.set_visible(c is not None)
        self._cut_line.set_xdata([cut + 0.5, cut + 0.5] if cut is not None else [0.0, 0.0])
        self._cut_line.set_visible(cut is not None)
        shown = [v[v > 0] for v in (h, c) if v is not None]
        shown = np.concatenate(shown) if shown else np.array([])
        lo, hi = (shown.min(), shown.max()) if shown.size else (1e-3, 1.0)
        self.ax.set_ylim(max(lo, 1e-300) / 3.0, min(hi, 1e300) * 3.0)
        self.ax.set_xlim(0.5, T + 0.5)
        self._set_legend([self._h_line] + ([self._c_line] if c is not None else [])
                         + ([self._cut_line] if cut is not None else []))
        bias = f", forget bias {self._bias(settings['forget_bias']):.1f}" if model == "LSTM" else ""
        k = settings["truncation"]
        trunc = "full BPTT" if k in (None, "off") else f"truncated every {k} steps"
        self.ax.set_title(f"{model}{bias}, T = {T}, {trunc}\n||dL/dh_1|| / ||dL/dh_T|| = {data['reach']:.3g}")
        if cut is not None:
            return (f"{model}: the gradient stops at the last cut (steps 1..{cut} get exactly 0); "
                    f"truncation is a wall, not a threshold")
        return f"{model}: ||dL/dh_1|| / ||dL/dh_T|| = {data['reach']:.3g} over T = {T} steps"
