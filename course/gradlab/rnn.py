"""The reference vanilla RNN in NumPy: what notebook 01 builds, for notebooks 02 onwards to build on.

Defined in notebook 01. The recurrence, for a mini-batch of N sequences of T steps:

    a_t = x_t @ Wx + h_{t-1} @ Wh + b,      h_t = phi(a_t),      phi = tanh by default.

Shapes, as in cs231n:

- x: (N, T, D)      inputs
- h0: (N, H)        initial hidden state
- Wx: (D, H)        input-to-hidden weights
- Wh: (H, H)        hidden-to-hidden (recurrent) weights
- b: (H,)           bias
- h: (N, T, H)      hidden states of every step

**Many models at once.** The weights may carry leading axes, one entry per model: Wx (K, D, H),
Wh (K, H, H), b (K, H), h0 (N, H) or (K, N, H), with x (N, T, D) shared by all K models (or its own
(K, N, T, D)). Every result then carries the same leading axes: h (K, N, T, H), dWh (K, H, H), ...
(``gradlab.training.train_many`` trains several settings at once this way.)

The forward pass keeps the hidden states time-major, (..., T, N, H), in its cache (``RNNCache``).
``bench/bench_rnn.py`` times this code against ``torch.nn.RNN``; bench/README.md explains its layout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")
PARAM_NAMES = ("Wx", "Wh", "b", "Wy", "by")


def check_activation(activation):
    """Raise ValueError unless ``activation`` is one of ``ACTIVATIONS``. Defined in notebook 01."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _swap(a):
    """The matrix transpose of the last two axes (``a.T`` for a 2-D array)."""
    return np.swapaxes(a, -1, -2)


def _apply(activation, a, out):
    """phi(a) written into ``out`` (``out`` may be ``a`` itself)."""
    if activation == "tanh":
        return np.tanh(a, out=out)
    if activation == "sigmoid":
        np.negative(a, out=out)
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)
    if activation == "relu":
        return np.maximum(a, 0.0, out=out)
    out[...] = a
    return out


def activation_derivative(activation, h):
    """phi'(a) written through the activation's output h = phi(a), as BPTT has it. Defined in notebook 01.

    - activation: one of ``ACTIVATIONS``
    - h: array of any shape, e.g. (N, H)
    Returns an array of h's shape: tanh 1 - h**2; sigmoid h * (1 - h); relu 1 where h > 0, else 0;
    linear 1.
    """
    check_activation(activation)
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "sigmoid":
        return h * (1.0 - h)
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    return np.ones_like(h)


def _derivative_into(activation, h, out):
    """``activation_derivative`` written into ``out`` (an array of h's shape), without temporaries."""
    if activation == "tanh":
        np.multiply(h, h, out=out)
        return np.subtract(1.0, out, out=out)
    if activation == "sigmoid":
        np.subtract(1.0, h, out=out)
        return np.multiply(h, out, out=out)
    if activation == "relu":
        return np.greater(h, 0, out=out)
    out[...] = 1.0
    return out


class RNNCache(NamedTuple):
    """What ``rnn_forward`` keeps for ``rnn_backward``. Defined in notebook 01.

    - xt: (..., T, N, D)   the inputs, time-major
    - h0: (..., N, H)      the initial state
    - Wx: (..., D, H), Wh: (..., H, H)
    - hs: (..., T, N, H)   the hidden states, time-major (hs[..., t, :, :] is h_t)
    - activation: the name of phi

    It unpacks like cs231n's tuple: ``xt, h0, Wx, Wh, hs, activation = cache``.
    """

    xt: np.ndarray
    h0: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hs: np.ndarray
    activation: str


def _check_shapes(x, h0, Wx, Wh, b):
    """The leading (model) axes and (N, T, D, H); ValueError naming the first argument that does not fit."""
    if x.ndim < 3:
        raise ValueError(f"x must have shape (N, T, D), got {x.shape}")
    if Wh.ndim < 2 or Wh.shape[-1] != Wh.shape[-2]:
        raise ValueError(f"Wh must have shape (H, H), got {Wh.shape}")
    lead = Wh.shape[:-2]
    N, T, D = x.shape[-3:]
    H = Wh.shape[-1]
    expected = {"h0": (h0.shape, [(N, H), lead + (N, H)]), "Wx": (Wx.shape, [lead + (D, H)]),
                "Wh": (Wh.shape, [lead + (H, H)]), "b": (b.shape, [lead + (H,)]),
                "x": (x.shape, [(N, T, D), lead + (N, T, D)])}
    for name, (got, allowed) in expected.items():
        if tuple(got) not in allowed:
            raise ValueError(f"{name} must have shape {allowed[-1]} for x of shape {x.shape} and H = {H}, "
                             f"got {tuple(got)}")
    if T == 0:
        raise ValueError("x must hold at least one time step (T >= 1)")
    return lead, (N, T, D, H)


def rnn_step_forward(x, h_prev, Wx, Wh, b, activation="tanh"):
    """One time step, h = phi(x @ Wx + h_prev @ Wh + b), for a batch. Defined in notebook 01.

    - x: (N, D), h_prev: (N, H), Wx: (D, H), Wh: (H, H), b: (H,)
    Returns (h, cache) with h: (N, H). Leading model axes on the weights carry through.
    """
    check_activation(activation)
    a = x @ Wx + h_prev @ Wh + b
    h = _apply(activation, a, np.empty_like(a))
    return h, (x, h_prev, Wx, Wh, h, activation)


def rnn_step_backward(dh, cache):
    """Backward pass of one time step. Defined in notebook 01.

    - dh: (N, H), the upstream gradient of h
    - cache: from ``rnn_step_forward``
    Returns (dx (N, D), dh_prev (N, H), dWx (D, H), dWh (H, H), db (H,)).
    """
    x, h_prev, Wx, Wh, h, activation = cache
    da = dh * activation_derivative(activation, h)
    return da @ _swap(Wx), da @ _swap(Wh), _swap(x) @ da, _swap(h_prev) @ da, da.sum(axis=-2)


def rnn_forward(x, h0, Wx, Wh, b, activation="tanh"):
    """Run the RNN over whole sequences. Defined in notebook 01.

    - x: (N, T, D), h0: (N, H), Wx: (D, H), Wh: (H, H), b: (H,) (or with leading model axes, see above)
    Returns (h, cache) with h: (N, T, H) and cache an ``RNNCache``.

    The input projections x_t @ Wx + b of all steps are one matrix product; only h_{t-1} @ Wh runs
    step by step.
    """
    check_activation(activation)
    x, h0, Wx, Wh, b = (np.asarray(a) for a in (x, h0, Wx, Wh, b))
    lead, (N, T, D, H) = _check_shapes(x, h0, Wx, Wh, b)
    dtype = np.result_type(x, h0, Wx, Wh, b)
    x_tm = np.ascontiguousarray(np.swapaxes(x, -3, -2), dtype=dtype)  # (..., T, N, D)
    Wx = Wx.astype(dtype, copy=False)
    Wh = np.ascontiguousarray(Wh, dtype=dtype)
    h0 = h0.astype(dtype, copy=False)
    h = np.empty(lead + (T, N, H), dtype=dtype)
    np.matmul(x_tm.reshape(x_tm.shape[:-3] + (T * N, D)), Wx, out=h.reshape(lead + (T * N, H)))
    h += b[..., None, None, :]
    rec = np.empty(lead + (N, H), dtype=dtype)
    h_prev = h0
    for h_t in np.moveaxis(h, -3, 0):  # h_t: (..., N, H), holding x_t @ Wx + b
        np.matmul(h_prev, Wh, out=rec)
        h_t += rec
        _apply(activation, h_t, h_t)
        h_prev = h_t
    return np.swapaxes(h, -3, -2), RNNCache(x_tm, h0, Wx, Wh, h, activation)


def rnn_backward(dh, cache):
    """Backpropagation through time for ``rnn_forward``. Defined in notebook 01.

    - dh: (N, T, H), the upstream gradient of every hidden state
    - cache: the ``RNNCache`` from ``rnn_forward``
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,)); with leading model axes on
    the weights, each gradient carries them (dx[k] is model k's dL/dx).

    Going back in time, dL/dh_t = dh_t + dL/da_{t+1} @ Wh.T and dL/da_t = dL/dh_t * phi'(a_t); the
    weight and input gradients are then one matrix product each over all T * N rows.
    """
    x, h0, Wx, Wh, h, activation = cache
    *lead, T, N, H = h.shape
    lead = tuple(lead)
    D = x.shape[-1]
    dh = np.asarray(dh)
    if dh.shape != lead + (N, T, H):
        raise ValueError(f"dh must have shape {lead + (N, T, H)}, got {dh.shape}")
    dh = dh.astype(h.dtype, copy=False)
    da = _derivative_into(activation, h, np.empty_like(h))  # phi'(a_t) for now; dL/da_t below
    dnext = np.zeros(lead + (N, H), dtype=h.dtype)  # dL/dh_t through Wh from step t + 1; dh0 at the end
    dh_t = np.empty_like(dnext)  # dL/dh_t, all of it
    WhT = np.ascontiguousarray(_swap(Wh))
    da_steps, dh_steps = np.moveaxis(da, -3, 0), np.moveaxis(dh, -2, 0)  # [t] is step t: (..., N, H)
    for t in reversed(range(T)):
        np.add(dh_steps[t], dnext, out=dh_t)
        da_t = da_steps[t]
        da_t *= dh_t
        np.matmul(da_t, WhT, out=dnext)
    da_rows = da.reshape(lead + (T * N, H))
    dx = np.swapaxes((da_rows @ _swap(Wx)).reshape(lead + (T, N, D)), -3, -2)
    dWx = _swap(x.reshape(x.shape[:-3] + (T * N, D))) @ da_rows
    dWh = _swap(h0) @ da[..., 0, :, :]
    if T > 1:
        h_prev = h[..., :-1, :, :].reshape(lead + ((T - 1) * N, H))
        dWh += _swap(h_prev) @ da[..., 1:, :, :].reshape(lead + ((T - 1) * N, H))
    db = da_rows.sum(axis=-2)
    return dx, dnext, dWx, dWh, db


def init_rnn(input_size, num_hiddens, output_size, *, seed=0, dtype=np.float64):
    """Parameters of an RNN with a linear readout from the last hidden state. Defined in notebook 01.

    Returns a dict: Wx (D, H) ~ N(0, 1/D), Wh (H, H) ~ N(0, 1/H), b (H,) = 0, Wy (H, O) ~ N(0, 1/H),
    by (O,) = 0, with D = input_size, H = num_hiddens, O = output_size.
    (``gradlab.rnn_tools.init_rnn`` also sets the spectral radius of ``Wh``.)
    """
    rng = np.random.default_rng(seed)
    D, H, O = input_size, num_hiddens, output_size
    Wh = rng.normal(0.0, 1.0 / np.sqrt(H), size=(H, H))
    params = {
        "Wx": rng.normal(0.0, 1.0 / np.sqrt(D), size=(D, H)),
        "Wh": Wh,
        "b": np.zeros(H),
        "Wy": rng.normal(0.0, 1.0 / np.sqrt(H), size=(H, O)),
        "by": np.zeros(O),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


def readout_loss(h_last, Wy, by, y, task="regression"):
    """Loss of the linear readout scores = h_last @ Wy + by, and its gradients. Defined in notebook 01.

    - h_last: (N, H), the last hidden state; Wy: (H, O); by: (O,) (or with leading model axes)
    - y: (N, O) targets for ``task="regression"`` (mean over the batch of the summed squared error), or
      (N,) integer labels for ``task="classification"`` (softmax cross-entropy, O classes); with K models,
      labels may also be (K, N), each model's own (as notebook 08 trains each on its own sequences)
    Returns (loss, dh_last (N, H), dWy (H, O), dby (O,)); loss is a float, or (K,) for K models.
    """
    scores = h_last @ Wy + by[..., None, :]
    N = scores.shape[-2]
    y = np.asarray(y)
    if task == "regression":
        diff = scores - y.reshape(scores.shape[-2:])
        loss = np.mean(np.sum(diff * diff, axis=-1), axis=-1)
        dscores = 2.0 * diff / N
    elif task == "classification":
        labels = np.broadcast_to(y, scores.shape[:-1])[..., None]  # (..., N, 1): each row's class
        shifted = scores - scores.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        loss = -np.take_along_axis(logp, labels, axis=-1)[..., 0].mean(axis=-1)
        dscores = np.exp(logp)  # softmax; minus 1 at each row's class
        np.put_along_axis(dscores, labels, np.take_along_axis(dscores, labels, axis=-1) - 1.0, axis=-1)
        dscores /= N
    else:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    loss = float(loss) if np.ndim(loss) == 0 else loss
    return loss, dscores @ _swap(Wy), _swap(h_last) @ dscores, dscores.sum(axis=-2)


def rnn_loss(params, X, y, *, task="regression", activation="tanh", return_cache=False):
    """Loss and gradients of an RNN whose last hidden state feeds a linear readout. Defined in notebook 01.

    - params: a dict as ``init_rnn`` makes it (Wx (D, H), Wh (H, H), b (H,), Wy (H, O), by (O,)), or with
      a leading model axis on every entry (K models at once, as ``gradlab.training.train_many`` does)
    - X: (N, T, D), or (K, N, T, D) with K models, each its own batch; y: (N, O) for regression, (N,)
      labels for classification, or (K, N) each model's own labels (see ``readout_loss``)
    Returns (loss, grads): grads a dict of arrays shaped like ``params``; loss a float, or (K,).
    With ``return_cache=True``, returns (loss, grads, dh, cache): also the upstream gradient dh (N, T, H)
    of every hidden state and ``rnn_forward``'s cache (``gradlab.rnn_tools.state_grads`` reads them).
    """
    Wh = params["Wh"]
    X = np.asarray(X)
    h0 = np.zeros(Wh.shape[:-2] + (X.shape[-3], Wh.shape[-1]), dtype=Wh.dtype)
    h, cache = rnn_forward(X, h0, params["Wx"], Wh, params["b"], activation=activation)
    loss, dh_last, dWy, dby = readout_loss(h[..., -1, :], params["Wy"], params["by"], y, task)
    dh = np.swapaxes(np.zeros(cache.hs.shape, h.dtype), -3, -2)  # (N, T, H), time-major like h
    dh[..., -1, :] = dh_last  # the loss reads only the last hidden state
    _, _, dWx, dWh, db = rnn_backward(dh, cache)
    grads = {"Wx": dWx, "Wh": dWh, "b": db, "Wy": dWy, "by": dby}
    return (loss, grads, dh, cache) if return_cache else (loss, grads)
