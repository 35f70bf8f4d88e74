"""Tools on top of the reference RNN for notebooks 03 onwards.

They answer exercises of notebook 02 (the spectral radius, rescaling a matrix to a chosen spectral
radius, the total gradient dL/dh_t at every step), so they live apart from ``gradlab.rnn``: notebook 02
imports ``gradlab.rnn`` (through ``gradlab.vanishing``) but never this module.
"""

from __future__ import annotations

import numpy as np

from . import rnn


def spectral_radius(W):
    """Largest absolute eigenvalue of a square matrix W: (H, H). Defined in notebook 02."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


_radius = spectral_radius  # init_rnn's keyword shadows the function's name


def init_rnn(input_size, num_hiddens, output_size, *, seed=0, spectral_radius=None, dtype=np.float64):
    """``gradlab.rnn.init_rnn``, with ``Wh`` rescaled to the given spectral radius when one is given.

    Defined in notebook 02. Returns a dict: Wx (D, H), Wh (H, H), b (H,), Wy (H, O), by (O,).
    """
    params = rnn.init_rnn(input_size, num_hiddens, output_size, seed=seed, dtype=np.float64)
    if spectral_radius is not None:
        if not spectral_radius > 0:
            raise ValueError(f"spectral_radius must be positive, got {spectral_radius!r}")
        params["Wh"] *= spectral_radius / _radius(params["Wh"])
    return {k: v.astype(dtype) for k, v in params.items()}


def state_grads(dh, cache):
    """The total gradient dL/dh_t of every step. Defined in notebook 02.

    - dh: (N, T, H), the upstream gradient of every hidden state (what ``gradlab.rnn.rnn_backward`` takes)
    - cache: the ``gradlab.rnn.RNNCache`` of ``gradlab.rnn.rnn_forward``
    Returns g: (N, T, H). Total means the upstream gradient of h_t plus what flows back from step t + 1
    through ``Wh``: g_T = dh_T, g_t = dh_t + (g_{t+1} * phi'(a_{t+1})) @ Wh.T.
    """
    h, Wh = cache.hs, cache.Wh  # h: (T, N, H), time-major
    T, N, H = h.shape
    dh = np.asarray(dh)
    if dh.shape != (N, T, H):
        raise ValueError(f"dh must have shape {(N, T, H)}, got {dh.shape}")
    total = np.empty((T, N, H), dtype=h.dtype)
    carry = np.zeros((N, H), dtype=h.dtype)
    for t in range(T - 1, -1, -1):
        total[t] = dh[:, t] + carry
        carry = (total[t] * rnn.activation_derivative(cache.activation, h[t])) @ Wh.T
    return total.transpose(1, 0, 2)


def rnn_loss_with_state_grads(params, X, y, *, task="regression", activation="tanh"):
    """``gradlab.rnn.rnn_loss`` plus the total gradient dL/dh_t of every step. Defined in notebook 02.

    - params: a dict as ``init_rnn`` makes it; X: (N, T, D); y: (N, O), or (N,) labels
    Returns (loss, grads, g) with grads a dict shaped like ``params`` and g: (N, T, H) (``state_grads``).
    """
    loss, grads, dh, cache = rnn.rnn_loss(params, X, y, task=task, activation=activation, return_cache=True)
    return loss, grads, state_grads(dh, cache)
