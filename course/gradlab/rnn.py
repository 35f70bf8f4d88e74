"""The reference vanilla RNN in NumPy: what notebook 01 builds, for notebooks 02 onwards to build on.

Shapes follow notebook 01: inputs ``x`` of shape (N, T, D), initial state ``h0`` (N, H), input weights
``Wx`` (D, H), recurrent weights ``Wh`` (H, H), bias ``b`` (H,), hidden states ``h`` (N, T, H), with

    h_t = phi(x_t @ Wx + h_{t-1} @ Wh + b),      phi = tanh by default.

Only the recurrence ``h_{t-1} @ Wh`` is sequential. The input projection of every time step is one
matrix product, and so are the weight gradients in the backward pass; internally the states are kept
time-major, (T, N, H), so that each step reads and writes contiguous memory (per-step ufuncs on strided
(N, H) slices of an (N, T, H) array cost 2-3x more at small H). float32 inputs stay float32
throughout. ``bench/bench_rnn.py`` times this against ``torch.nn.RNN``.

Readouts and losses for the course's tasks (``rnn_loss``) and a parameter initialiser with a chosen
spectral radius (``init_rnn``) sit on top.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _apply(activation, a, out):
    """phi(a) written into ``out`` (``a`` may be overwritten)."""
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


def _derivative_from_output(activation, h):
    """phi'(a) expressed through h = phi(a), as BPTT uses it."""
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "sigmoid":
        return h * (1.0 - h)
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    return np.ones_like(h)


def _check_shapes(x, h0, Wx, Wh, b):
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got {x.shape}")
    N, T, D = x.shape
    H = Wh.shape[0]
    expected = {"h0": (h0.shape, (N, H)), "Wx": (Wx.shape, (D, H)), "Wh": (Wh.shape, (H, H)), "b": (b.shape, (H,))}
    for name, (got, want) in expected.items():
        if tuple(got) != want:
            raise ValueError(f"{name} must have shape {want} for x of shape {x.shape}, got {tuple(got)}")
    if T == 0:
        raise ValueError("x must hold at least one time step (T >= 1)")


def rnn_step_forward(x, h_prev, Wx, Wh, b, activation="tanh"):
    """One step: h = phi(x @ Wx + h_prev @ Wh + b) for a batch. Returns (h, cache)."""
    _check_activation(activation)
    a = x @ Wx + h_prev @ Wh + b
    h = _apply(activation, a, np.empty_like(a))
    return h, (x, h_prev, Wx, Wh, h, activation)


def rnn_step_backward(dh, cache):
    """Backward of one step. Returns (dx, dh_prev, dWx, dWh, db)."""
    x, h_prev, Wx, Wh, h, activation = cache
    da = dh * _derivative_from_output(activation, h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


_DERIV_BLOCK_BYTES = 1 << 18  # 256 KiB: a block of phi'(a_t) that stays in the L2 cache


def _derivative_into(activation, h, out):
    """phi'(a) through h = phi(a), written into ``out`` (a small reused buffer); None for linear."""
    if activation == "tanh":
        np.multiply(h, h, out=out)
        return np.subtract(1.0, out, out=out)
    if activation == "sigmoid":
        np.subtract(1.0, h, out=out)
        return np.multiply(h, out, out=out)
    if activation == "relu":
        return np.greater(h, 0, out=out)  # a bool buffer: multiplying by it is multiplying by 1.0 or 0.0
    return None


def rnn_forward(x, h0, Wx, Wh, b, activation="tanh"):
    """Run the RNN over a whole sequence batch. Returns (h of shape (N, T, H), cache)."""
    _check_activation(activation)
    _check_shapes(x, h0, Wx, Wh, b)
    N, T, D = x.shape
    H = Wh.shape[0]
    dtype = np.result_type(x, h0, Wx, Wh, b)
    xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)  # (T, N, D)
    Wx_ = Wx.astype(dtype, copy=False)
    Wh_ = np.ascontiguousarray(Wh, dtype=dtype)
    hs = np.empty((T, N, H), dtype=dtype)  # time-major: each step reads and writes contiguous memory
    np.matmul(xt.reshape(T * N, D), Wx_, out=hs.reshape(T * N, H))  # input projections, one product
    hs += b
    rec = np.empty((N, H), dtype=dtype)
    h_prev = h0.astype(dtype, copy=False)
    # Both recurrences multiply by a row-major matrix (Wh here, a row-major copy of Wh.T in backward):
    # with OpenBLAS's SkylakeX kernels that is 6-8 % faster end to end in float32 than a column-major
    # one and the same in float64 (interleaved A/B, N=64 T=200 H=256).
    for t in range(T):  # the only sequential part: a_t = (x_t Wx + b) + h_{t-1} Wh, h_t = phi(a_t)
        h_t = hs[t]
        np.matmul(h_prev, Wh_, out=rec)
        h_t += rec
        _apply(activation, h_t, h_t)
        h_prev = h_t
    return hs.transpose(1, 0, 2), (xt, h0, Wx_, Wh_, hs, activation)


def rnn_backward(dh, cache):
    """BPTT for ``rnn_forward``.

    ``dh`` (N, T, H) is the upstream gradient of every hidden state. Returns (dx, dh0, dWx, dWh, db).

    The loop carries dL/dh_t back through ``Wh`` one step at a time, reading ``dh[:, t]`` in place
    (no transposed copy of ``dh``) and phi'(a_t) from a small block computed a few steps at a time;
    the input and weight gradients are then one matrix product each over all T * N rows.
    """
    xt, h0, Wx, Wh, hs, activation = cache
    T, N, H = hs.shape
    D = xt.shape[2]
    if dh.shape != (N, T, H):
        raise ValueError(f"dh must have shape {(N, T, H)}, got {dh.shape}")
    dtype = hs.dtype
    if dh.dtype != dtype:
        dh = dh.astype(dtype)
    da = np.empty((T, N, H), dtype=dtype)
    carry = np.zeros((N, H), dtype=dtype)  # dL/dh_t flowing back from step t + 1; dh0 at the end
    WhT = np.ascontiguousarray(Wh.T)  # row-major (see rnn_forward)
    block = max(1, min(T, _DERIV_BLOCK_BYTES // (N * H * dtype.itemsize)))
    deriv = np.empty((block, N, H), dtype=bool if activation == "relu" else dtype)
    for stop in range(T, 0, -block):
        start = max(0, stop - block)
        d = _derivative_into(activation, hs[start:stop], deriv[: stop - start])
        for t in range(stop - 1, start - 1, -1):
            da_t = da[t]
            if t < T - 1:
                np.add(dh[:, t], carry, out=da_t)
            else:
                np.copyto(da_t, dh[:, t])
            if d is not None:
                da_t *= d[t - start]
            np.matmul(da_t, WhT, out=carry)
    da2 = da.reshape(T * N, H)
    dx = (da2 @ Wx.T).reshape(T, N, D).transpose(1, 0, 2)
    dWx = xt.reshape(T * N, D).T @ da2
    dWh = h0.T @ da[0]
    if T > 1:
        dWh += hs[:-1].reshape((T - 1) * N, H).T @ da[1:].reshape((T - 1) * N, H)
    db = da2.sum(axis=0)
    return dx, carry, dWx, dWh, db


def init_rnn(input_size, num_hiddens, output_size, *, seed=0, dtype=np.float64):
    """Parameters for an RNN with a linear readout from the last hidden state.

    ``Wx`` ~ N(0, 1/D), ``Wh`` ~ N(0, 1/H), zero biases, ``Wy`` ~ N(0, 1/H). Returns a dict with keys
    Wx, Wh, b, Wy, by. (``gradlab.rnn_tools.init_rnn`` also sets the spectral radius of ``Wh``.)
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


PARAM_NAMES = ("Wx", "Wh", "b", "Wy", "by")


def rnn_loss(params, X, y, *, task="regression", activation="tanh"):
    """Loss and gradients of an RNN whose last hidden state feeds a linear readout.

    ``task="regression"``: y of shape (N, O), loss = mean over the batch of the squared error summed
    over outputs. ``task="classification"``: y integer labels of shape (N,), softmax cross-entropy.
    Returns (loss, grads) with grads a dict keyed like ``params``.
    """
    loss, grads, _, _ = _loss_grads_upstream(params, X, y, task, activation)
    return loss, grads


def _loss_grads_upstream(params, X, y, task, activation):
    """rnn_loss's work, also returning the upstream gradient of every hidden state and the forward cache."""
    X = np.asarray(X)
    N, T, _ = X.shape
    Wh = params["Wh"]
    h0 = np.zeros((N, Wh.shape[0]), dtype=Wh.dtype)
    h, cache = rnn_forward(X, h0, params["Wx"], Wh, params["b"], activation=activation)
    h_last = h[:, -1, :]
    scores = h_last @ params["Wy"] + params["by"]
    if task == "regression":
        diff = scores - np.asarray(y).reshape(scores.shape)
        loss = float(np.mean(np.sum(diff * diff, axis=1)))
        dscores = 2.0 * diff / N
    elif task == "classification":
        y = np.asarray(y)
        shifted = scores - scores.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = float(-logp[np.arange(N), y].mean())
        dscores = np.exp(logp)
        dscores[np.arange(N), y] -= 1.0
        dscores /= N
    else:
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    dh = np.zeros_like(h)
    dh[:, -1, :] = dscores @ params["Wy"].T
    out = rnn_backward(dh, cache)
    grads = {"Wx": out[2], "Wh": out[3], "b": out[4], "Wy": h_last.T @ dscores, "by": dscores.sum(axis=0)}
    return loss, grads, dh, cache
