"""Notebook 07's torch models: a tanh RNN, an LSTM and a GRU side by side on one long-range task.

The notebook writes an LSTM in NumPy by hand; this module holds only what it compares that LSTM with,
in torch's own layout, so that nothing here answers the notebook's exercises (there is no NumPy LSTM
here, and no function that takes or returns weights in the notebook's layout):

* ``make_layer(kind, input_size, num_hiddens, forget_bias=..., seed=...)``: a seeded ``nn.RNN`` (tanh),
  ``nn.LSTM`` or ``nn.GRU`` with PyTorch's default initialisation, the LSTM's forget-gate bias set to
  ``forget_bias`` (``set_forget_bias``; torch orders an LSTM's gates i, f, g, o);
* ``per_step_grad_norms(layer, X, y, truncate=k)``: the layer unrolled one step at a time with its own
  weights, a linear read-out of the last state and a squared-error loss; returns ||dL/dh_t|| (and, for
  the LSTM, ||dL/dc_t||) at every step, optionally with the state detached before steps k, 2k, ...
  (truncated backpropagation through time);
* ``Regressor`` and ``fit``: the layer with a read-out, trained with Adam or SGD on mini-batches,
  logging the loss and the gradient norm of every step, optionally clipped with
  ``torch.nn.utils.clip_grad_norm_``.

Shapes follow the course: inputs ``X`` (N, T, D), targets ``y`` (N, 1), states (N, H). Defined in
notebook 07.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["KINDS", "make_layer", "set_forget_bias", "forget_bias_of", "per_step_grad_norms", "Regressor",
           "fit"]

KINDS = ("RNN", "LSTM", "GRU")
"""The three recurrent layers compared in notebook 07."""

_LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def _kind(kind):
    key = str(kind).upper()
    if key not in _LAYERS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return key


def set_forget_bias(lstm, value):
    """Set an ``nn.LSTM``'s (or ``nn.LSTMCell``'s) forget-gate bias to ``value`` for every unit, in place.

    torch adds two biases, ``bias_ih`` and ``bias_hh``, each of shape (4H,) in the gate order i, f, g, o;
    the forget gate's total bias ``bias_ih[H:2H] + bias_hh[H:2H]`` becomes ``value`` (the first set to
    ``value``, the second to 0). Returns ``lstm``. Defined in notebook 07.
    """
    H = lstm.hidden_size
    names = [("bias_ih_l0", "bias_hh_l0")] if hasattr(lstm, "bias_ih_l0") else [("bias_ih", "bias_hh")]
    with torch.no_grad():
        for ih, hh in names:
            getattr(lstm, ih)[H:2 * H] = float(value)
            getattr(lstm, hh)[H:2 * H] = 0.0
    return lstm


def forget_bias_of(lstm):
    """The total forget-gate bias of an ``nn.LSTM``'s units, shape (H,) (see ``set_forget_bias``).

    Defined in notebook 07.
    """
    H = lstm.hidden_size
    return (lstm.bias_ih_l0[H:2 * H] + lstm.bias_hh_l0[H:2 * H]).detach().numpy().copy()


def make_layer(kind, input_size, num_hiddens, *, forget_bias=1.0, seed=0, dtype=torch.float64):
    """A seeded one-layer ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=True``.

    kind: "RNN", "LSTM" or "GRU"; PyTorch's default initialisation, uniform in +-1/sqrt(num_hiddens),
    drawn under ``seed`` (the global torch RNG is left as it was). forget_bias: the LSTM's forget-gate
    bias (ignored for the others; None keeps torch's random one). Defined in notebook 07.
    """
    kind = _kind(kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = _LAYERS[kind](input_size, num_hiddens, batch_first=True).to(dtype)
    if kind == "LSTM" and forget_bias is not None:
        set_forget_bias(layer, forget_bias)
    return layer


def _step_of(layer):
    """(kind, step): one time step of ``layer`` with its own weights, by torch's cell functions.

    ``torch.rnn_tanh_cell``, ``torch.lstm_cell`` and ``torch.gru_cell`` are what ``nn.RNNCell``,
    ``nn.LSTMCell`` and ``nn.GRUCell`` call; calling them directly skips the module machinery (a third of
    the time of a 100-step unroll at these sizes). The LSTM step takes and returns (h, c).
    """
    kind = type(layer).__name__
    weights = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
    cell = {"RNN": torch.rnn_tanh_cell, "LSTM": torch.lstm_cell, "GRU": torch.gru_cell}[kind]
    if kind == "RNN" and getattr(layer, "nonlinearity", "tanh") != "tanh":
        raise ValueError("per_step_grad_norms unrolls tanh RNNs only")
    return kind, (lambda x, state: cell(x, state, *weights))


def _readout(num_hiddens, seed, dtype):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return nn.Linear(num_hiddens, 1).to(dtype)


def per_step_grad_norms(layer, X, y, *, truncate=None, readout=None, seed=0):
    """||dL/dh_t|| at every step t = 1..T (and ||dL/dc_t|| for an LSTM), by torch autograd.

    layer: a ``make_layer`` layer (``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``, one layer, batch first).
    X: (N, T, D) inputs, y: (N, 1) targets (NumPy arrays or tensors). The layer is unrolled one step at
    a time with its own weights from a zero state; the loss is the mean squared error of a linear
    read-out of the last state, ``readout`` (an ``nn.Linear(H, 1)``; a seeded one by default), so
    only h_T is read directly. truncate: None for full backpropagation through time, or k >= 1 to
    detach the state (h and c) before steps k + 1, 2k + 1, ..., that is ``h = h.detach()`` every k
    steps, as truncated BPTT does.

    Returns a dict: ``h`` (T,) the Frobenius norms over the batch of the total gradients dL/dh_t
    (exactly 0 where truncation cut every path), ``c`` (T,) the same for the LSTM's cell states (None
    for the others) and ``loss`` (a float). Defined in notebook 07.
    """
    kind, cell = _step_of(layer)
    dtype = layer.weight_ih_l0.dtype
    X = torch.as_tensor(np.asarray(X), dtype=dtype)
    y = torch.as_tensor(np.asarray(y), dtype=dtype).reshape(-1, 1)
    if X.ndim != 3 or X.shape[2] != layer.input_size:
        raise ValueError(f"X must have shape (N, T, {layer.input_size}), got {tuple(X.shape)}")
    if truncate is not None and (int(truncate) != truncate or truncate < 1):
        raise ValueError(f"truncate must be None or an integer >= 1, got {truncate!r}")
    N, T, _ = X.shape
    H = layer.hidden_size
    readout = readout if readout is not None else _readout(H, seed, dtype)
    h = torch.zeros(N, H, dtype=dtype)
    c = torch.zeros(N, H, dtype=dtype) if kind == "LSTM" else None
    hs, cs = [], []
    for t in range(T):
        if truncate is not None and t > 0 and t % int(truncate) == 0:
            h = h.detach()
            c = c.detach() if c is not None else None
        if kind == "LSTM":
            h, c = cell(X[:, t], (h, c))
            cs.append(c)
        else:
            h = cell(X[:, t], h)
        hs.append(h)
    loss = torch.mean((readout(h) - y) ** 2)
    # one backward pass for every state at once; a state that truncation cut off gets None (gradient 0)
    grads = torch.autograd.grad(loss, hs + cs, allow_unused=True)

    def norms(gs):
        return np.array([0.0 if g is None else float(torch.linalg.vector_norm(g)) for g in gs])

    return {"h": norms(grads[:T]), "c": norms(grads[T:]) if kind == "LSTM" else None,
            "loss": float(loss.detach())}


class Regressor(nn.Module):
    """A ``make_layer`` layer with a linear read-out of its last state: X (N, T, D) -> (N, 1).

    Defined in notebook 07.
    """

    def __init__(self, kind, input_size=2, num_hiddens=32, *, forget_bias=1.0, seed=0, dtype=torch.float32):
        super().__init__()
        self.kind = _kind(kind)
        self.layer = make_layer(kind, input_size, num_hiddens, forget_bias=forget_bias, seed=seed, dtype=dtype)
        self.readout = _readout(num_hiddens, seed, dtype)

    def forward(self, X):
        if X.ndim != 3:
            raise ValueError(f"Regressor expects inputs of shape (N, T, D), got {tuple(X.shape)}")
        outputs, _ = self.layer(X)
        return self.readout(outputs[:, -1])


def fit(model, X, y, X_test, y_test, *, lr, num_steps, batch_size=64, optimizer="adam", max_norm=None,
        eval_every=50, stop_below=None, seed=0, progress=None):
    """Train ``model`` (a ``Regressor``) by mini-batch steps on the squared error; returns its history.

    X (N, T, D), y (N, 1) and the held-out X_test, y_test: arrays or tensors. optimizer: "adam" or "sgd"
    with learning rate ``lr``. max_norm: None (no clipping) or the threshold of
    ``torch.nn.utils.clip_grad_norm_``, applied after the backward pass and before the step. The
    mini-batch order is fixed by ``seed``. Stops at the first non-finite loss, and (``stop_below``) at the
    first evaluation whose held-out MSE is below ``stop_below``. progress: None or a
    tqdm-like bar, advanced once per step and brought to ``num_steps`` at the end.

    Returns a dict of float64 arrays: ``loss`` and ``grad_norm`` (before clipping) of every step taken,
    ``test_steps`` and ``test_mse`` (the held-out MSE every ``eval_every`` steps and at the end).
    Defined in notebook 07.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    dtype = next(model.parameters()).dtype
    X, y, X_test, y_test = (torch.as_tensor(np.asarray(a), dtype=dtype) for a in (X, y, X_test, y_test))
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    losses, norms, test_steps, test_mse = [], [], [], []

    def evaluate(step):
        with torch.no_grad():
            test_steps.append(step)
            test_mse.append(float(torch.mean((model(X_test) - y_test) ** 2)))

    evaluate(0)
    for step in range(1, int(num_steps) + 1):
        idx = torch.randint(0, len(X), (batch_size,), generator=order)
        loss = torch.mean((model(X[idx]) - y[idx]) ** 2)
        opt.zero_grad()
        loss.backward()
        losses.append(float(loss.detach()))
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf if max_norm is None else max_norm)
        norms.append(float(norm))
        if progress is not None:
            progress.update(1)
        if not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
            break
        opt.step()
        if step % eval_every == 0 or step == num_steps:
            evaluate(step)
            if stop_below is not None and test_mse[-1] < stop_below:
                break
    if progress is not None:
        progress.update(int(num_steps) - len(losses))
    if test_steps[-1] != len(losses):
        evaluate(len(losses))
    return {"loss": np.array(losses), "grad_norm": np.array(norms), "test_steps": np.array(test_steps),
            "test_mse": np.array(test_mse)}
