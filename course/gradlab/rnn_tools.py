"""Tools on top of the reference RNN for notebooks 03 onwards.

They answer exercises of notebook 02 (the spectral radius, rescaling a matrix to a chosen spectral
radius, the total gradient dL/dh_t at every step), so they live apart from ``gradlab.rnn``: notebook 02
imports ``gradlab.rnn`` (through ``gradlab.vanishing``) but never this module.
"""

from __future__ import annotations

import numpy as np

from . import rnn


def spectral_radius(W):
    """Largest absolute eigenvalue of a square matrix."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


_radius = spectral_radius  # init_rnn's keyword shadows the function's name


def init_rnn(input_size, num_hiddens, output_size, *, seed=0, spectral_radius=None, dtype=np.float64):
    """``gradlab.rnn.init_rnn``, with ``Wh`` rescaled to the given spectral radius when one is given."""
    params = rnn.init_rnn(input_size, num_hiddens, output_size, seed=seed, dtype=np.float64)
    if spectral_radius is not None:
        if not spectral_radius > 0:
            raise ValueError(f"spectral_radius must be positive, got {spectral_radius!r}")
        params["Wh"] *= spectral_radius / _radius(params["Wh"])
    return {k: v.astype(dtype) for k, v in params.items()}


def state_grads(dh, cache):
    """The total gradient dL/dh_t, shape (N, T, H), for upstream ``dh`` and a ``gradlab.rnn.rnn_forward`` cache.

    Total means the upstream gradient of h_t plus what flows back from step t + 1 through ``Wh``:
    g_T = dh_T, g_t = dh_t + (g_{t+1} * phi'(a_{t+1})) @ Wh.T.
    """
    _, _, _, Wh, hs, activation = cache
    T, N, H = hs.shape
    dh = np.asarray(dh)
    if dh.shape != (N, T, H):
        raise ValueError(f"dh must have shape {(N, T, H)}, got {dh.shape}")
    total = np.empty((T, N, H), dtype=hs.dtype)
    carry = np.zeros((N, H), dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
        total[t] = dh[:, t] + carry
        carry = (total[t] * rnn._derivative_from_output(activation, hs[t])) @ Wh.T
    return total.transpose(1, 0, 2)


def rnn_loss_with_state_grads(params, X, y, *, task="regression", activation="tanh"):
    """``gradlab.rnn.rnn_loss`` plus the total gradient dL/dh_t of every step: (loss, grads, dh_total)."""
    loss, grads, dh, cache = rnn._loss_grads_upstream(params, X, y, task, activation)
    return loss, grads, state_grads(dh, cache)
