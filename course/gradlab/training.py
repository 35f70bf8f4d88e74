"""Training the reference NumPy RNN (``gradlab.rnn``) with plain SGD, with or without clipping.

Two trainers, with the same rules:

* ``train(params, X, y, lr=..., num_steps=..., clip_fn=..., threshold=...)`` trains one network and
  returns its final parameters and a history: the loss of every step, the global gradient norm
  before and after clipping, whether the step was clipped, the norm of the weights, and the step at
  which training diverged (a non-finite loss or gradient), if it did.
* ``train_many(settings, params, X, y, num_steps=...)`` trains several copies of the same network at
  once, one per setting (learning rate, clipping function, threshold), on the same mini-batches. The
  recurrence runs as one batched matrix product over all copies, so K settings cost little more than
  one: this is what lets the clipping widget retrain within a second.

Clipping is never built in: the caller passes the clipping function, ``clip_fn(grads, threshold)``,
which receives the list of gradients [dWx, dWh, db, dWy, dby] (fresh arrays of this step) and
either

* returns the clipped list, or a pair (clipped list, norm before clipping): the pure functions written
  in notebook 03 plug in as they are; or
* clips those arrays **in place** and returns the norm before clipping (a number) or None:
  ``gradlab.clipping.clip_grads_by_global_norm_``, the fast global-norm clipping that notebook 04 and
  ``bench/bench_clip.py`` use. No copy is made for it: it scales the step's gradient arrays themselves.

The trainers never change the arrays they are given (parameters, X, y).

Every step draws a mini-batch of ``batch_size`` rows of X with a generator seeded by ``seed`` (the
same batches for every setting), computes the loss and gradients with ``gradlab.rnn.rnn_loss``, clips,
and updates ``p -= lr * g``. Overflow inside a diverging run is expected and silenced (no warnings on
stderr); with ``stop_on_nonfinite=True`` a run stops at the first non-finite loss or gradient.
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

try:  # scikit-learn's dependency: keeps BLAS on one thread for these small products
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from .rnn import PARAM_NAMES, rnn_loss

__all__ = ["train", "train_many", "evaluate", "grad_norm", "batches", "Setting", "HISTORY_KEYS", "one_blas_thread"]

HISTORY_KEYS = ("loss", "grad_norm", "clipped_norm", "clipped", "param_norm")


def one_blas_thread():
    """Small matrix products run fastest on one BLAS thread; many threads thrash on a busy machine."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def grad_norm(grads):
    """Global L2 norm of a list of arrays (computed in float64); for logging, not an exercise answer."""
    total = 0.0
    for g in grads:
        g64 = np.asarray(g, dtype=np.float64).ravel()
        total += float(np.dot(g64, g64))
    return float(np.sqrt(total))


def batches(num_examples, batch_size, num_steps, seed=0):
    """Row indices of every step's mini-batch: an int array of shape (num_steps, batch_size).

    Rows are drawn without replacement within a step. ``batch_size=None`` (or >= num_examples) means
    the full data set every step.
    """
    if batch_size is None or batch_size >= num_examples:
        return np.broadcast_to(np.arange(num_examples), (num_steps, num_examples))
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(num_examples, size=batch_size, replace=False) for _ in range(num_steps)])


def _check_common(params, X, y, lr, num_steps, task):
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; build it with gradlab.rnn.init_rnn")
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (N, T, D), got {X.shape}")
    if len(y) != X.shape[0]:
        raise ValueError(f"X and y must hold the same number of examples, got {X.shape[0]} and {len(y)}")
    if not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if not (isinstance(lr, numbers.Real) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    return X


def _apply_clip(clip_fn, threshold, grads):
    """Call a clipping function on ``grads``; returns (clipped list, in_place).

    A list, or a pair (list, norm before clipping), is the clipped gradients (a pure function). A number
    or None means the function clipped ``grads`` in place (``clip_grads_by_global_norm_``): the clipped
    gradients are the arrays of ``grads`` themselves, and ``in_place`` is True.
    """
    out = clip_fn(grads, threshold)
    if out is None or (not isinstance(out, (tuple, list)) and np.ndim(out) == 0):
        return list(grads), True
    if isinstance(out, tuple) and len(out) == 2 and np.ndim(out[1]) == 0:
        out = out[0]
    out = list(out)
    if len(out) != len(grads):
        raise ValueError(f"clip_fn returned {len(out)} arrays for {len(grads)} gradients")
    for g, c in zip(grads, out, strict=True):
        if np.shape(c) != g.shape:
            raise ValueError(f"clip_fn changed a gradient's shape from {g.shape} to {np.shape(c)}")
    return [np.asarray(c) for c in out], False


def _changed(before, after, in_place, norm_before, norm_after):
    """Did clipping change the gradient? In place (no copy kept): did it change its norm."""
    if in_place:
        return bool(norm_after != norm_before)
    return any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after, strict=True))


def evaluate(params, X, y, *, task="regression", activation="tanh"):
    """Loss of ``params`` on (X, y) (no update); NaN if it overflows."""
    with np.errstate(all="ignore"), one_blas_thread():
        loss, _ = rnn_loss(params, X, y, task=task, activation=activation)
    return float(loss) if np.isfinite(loss) else float("nan")


def train(params, X, y, *, lr, num_steps, batch_size=32, task="regression", clip_fn=None, threshold=None,
          seed=0, activation="tanh", stop_on_nonfinite=True):
    """Train an RNN with SGD, optionally clipping every step's gradient. Returns (params, history).

    ``params``: a dict as made by ``gradlab.rnn.init_rnn`` (not modified; the result is a new dict).
    ``clip_fn(grads, threshold)``: None for plain SGD, else a function of the list of gradients in the
    order of ``gradlab.rnn.PARAM_NAMES`` that returns the clipped list or a pair (list, norm), or that
    clips the list in place and returns the norm (``gradlab.clipping.clip_grads_by_global_norm_``).
    ``history``: a dict of NumPy arrays, one entry per step run -- ``loss`` (the mini-batch loss before
    the step), ``grad_norm`` (global norm before clipping), ``clipped_norm`` (after clipping),
    ``clipped`` (True where clipping changed the gradient; for an in-place ``clip_fn``, where it changed
    the gradient's norm), ``param_norm`` (global norm of the weights
    after the step) -- and ``diverged_at``, the first step whose loss or gradient was not finite (None
    if none). With ``stop_on_nonfinite`` training stops at that step, so the arrays are shorter than
    ``num_steps``.
    """
    X = _check_common(params, X, y, lr, num_steps, task)
    if clip_fn is not None and threshold is None:
        raise ValueError("clip_fn needs a threshold")
    y = np.asarray(y)
    params = {k: np.array(params[k], copy=True) for k in PARAM_NAMES}
    plist = [params[k] for k in PARAM_NAMES]
    idx = batches(X.shape[0], batch_size, num_steps, seed)
    hist = {k: [] for k in HISTORY_KEYS}
    diverged_at = None
    with np.errstate(all="ignore"), one_blas_thread():
        for step in range(num_steps):
            rows = idx[step]
            loss, gdict = rnn_loss(params, X[rows], y[rows], task=task, activation=activation)
            grads = [gdict[k] for k in PARAM_NAMES]
            norm = grad_norm(grads)
            if clip_fn is not None:
                clipped, in_place = _apply_clip(clip_fn, threshold, grads)
                cnorm = grad_norm(clipped)
                was_clipped = _changed(grads, clipped, in_place, norm, cnorm)
                grads = clipped
            else:
                was_clipped, cnorm = False, norm
            for p, g in zip(plist, grads, strict=True):
                p -= lr * g
            hist["loss"].append(loss)
            hist["grad_norm"].append(norm)
            hist["clipped_norm"].append(cnorm)
            hist["clipped"].append(was_clipped)
            hist["param_norm"].append(grad_norm(plist))
            if diverged_at is None and not (np.isfinite(loss) and np.isfinite(norm)):
                diverged_at = step
                if stop_on_nonfinite:
                    break
    history = {k: np.asarray(v, dtype=bool if k == "clipped" else np.float64) for k, v in hist.items()}
    history["diverged_at"] = diverged_at
    return params, history


class Setting(tuple):
    """One training setting for ``train_many``: (lr, clip_fn, threshold, label)."""

    __slots__ = ()

    def __new__(cls, lr, clip_fn=None, threshold=None, label=None):
        if not (isinstance(lr, numbers.Real) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if clip_fn is not None and threshold is None:
            raise ValueError("a setting with clip_fn needs a threshold")
        if label is None:
            name = getattr(clip_fn, "__name__", "clip") if clip_fn is not None else "no clipping"
            label = f"{name}, lr={lr:g}" + (f", threshold={threshold:g}" if clip_fn is not None else "")
        return super().__new__(cls, (float(lr), clip_fn, threshold, label))

    lr = property(lambda self: self[0])
    clip_fn = property(lambda self: self[1])
    threshold = property(lambda self: self[2])
    label = property(lambda self: self[3])


def _tanh_rnn_loss_many(P, X, y, task):
    """Loss and gradients of K stacked tanh RNNs on one batch.

    ``P`` holds the parameters with a leading axis K (Wx (K, D, H), Wh (K, H, H), b (K, H),
    Wy (K, H, O), by (K, O)). Returns (losses (K,), grads dict of the same shapes as P). Matches
    ``gradlab.rnn.rnn_loss`` for each k (tests check it).
    """
    Wx, Wh, b, Wy, by = (P[k] for k in PARAM_NAMES)
    K, D, H = Wx.shape
    N, T, _ = X.shape
    xt = np.ascontiguousarray(X.transpose(1, 0, 2)).reshape(T * N, D)
    hs = np.matmul(xt, Wx).reshape(K, T, N, H)  # input projections of every step, for every model
    hs += b[:, None, None, :]
    h = np.zeros((K, N, H))
    rec = np.empty((K, N, H))
    for t in range(T):
        np.matmul(h, Wh, out=rec)
        hs[:, t] += rec
        np.tanh(hs[:, t], out=hs[:, t])
        h = hs[:, t]
    scores = np.matmul(h, Wy) + by[:, None, :]  # (K, N, O)
    if task == "regression":
        diff = scores - y.reshape(1, N, -1)
        losses = np.mean(np.sum(diff * diff, axis=2), axis=1)
        dscores = 2.0 * diff / N
    else:
        shifted = scores - scores.max(axis=2, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        rows = np.arange(N)
        losses = -logp[:, rows, y].mean(axis=1)
        dscores = np.exp(logp)
        dscores[:, rows, y] -= 1.0
        dscores /= N
    dWy = np.matmul(h.transpose(0, 2, 1), dscores)
    dby = dscores.sum(axis=1)
    da = np.empty_like(hs)  # dL/da_t for every step
    carry = np.matmul(dscores, Wy.transpose(0, 2, 1))  # dL/dh_T
    WhT = np.ascontiguousarray(Wh.transpose(0, 2, 1))
    for t in range(T - 1, -1, -1):
        ht = hs[:, t]
        np.multiply(carry, 1.0 - ht * ht, out=da[:, t])
        carry = np.matmul(da[:, t], WhT)
    da2 = da.reshape(K, T * N, H)
    dWx = np.matmul(xt.T, da2)
    dWh = np.zeros_like(Wh)
    if T > 1:
        dWh += np.matmul(hs[:, :-1].reshape(K, (T - 1) * N, H).transpose(0, 2, 1),
                         da[:, 1:].reshape(K, (T - 1) * N, H))
    db = da2.sum(axis=1)
    return losses, {"Wx": dWx, "Wh": dWh, "b": db, "Wy": dWy, "by": dby}


def _rowwise_sumsq(a):
    flat = a.reshape(a.shape[0], -1)
    return np.einsum("ij,ij->i", flat, flat)


def train_many(settings, params, X, y, *, num_steps, batch_size=32, task="regression", seed=0):
    """Train one copy of ``params`` per setting, all at once, on the same mini-batches (tanh RNN).

    ``settings``: a list of ``Setting(lr, clip_fn=None, threshold=None, label=None)`` (or plain
    tuples with the same fields). Returns a list with one history per setting, as ``train`` returns
    it, but every array has ``num_steps`` entries: after a copy diverges its entries are NaN (its
    weights are frozen, so it costs nothing extra and never warns). Each history also has ``label``,
    ``lr``, ``threshold`` and the final ``params``.
    """
    settings = [s if isinstance(s, Setting) else Setting(*s) for s in settings]
    if not settings:
        raise ValueError("settings must hold at least one setting")
    first = settings[0]
    X = _check_common(params, X, y, first.lr, num_steps, task)
    y = np.asarray(y)
    K = len(settings)
    P = {k: np.repeat(np.asarray(params[k], dtype=np.float64)[None], K, axis=0) for k in PARAM_NAMES}
    lrs = np.array([s.lr for s in settings])
    idx = batches(X.shape[0], batch_size, num_steps, seed)
    out = {k: np.full((num_steps, K), np.nan) for k in HISTORY_KEYS}
    out["clipped"] = np.zeros((num_steps, K), dtype=bool)
    alive = np.ones(K, dtype=bool)
    diverged_at = [None] * K
    with np.errstate(all="ignore"), one_blas_thread():
        for step in range(num_steps):
            rows = idx[step]
            losses, G = _tanh_rnn_loss_many(P, X[rows], y[rows], task)
            sq = sum(_rowwise_sumsq(g) for g in G.values())
            norms = np.sqrt(sq)
            clipped_norms = norms.copy()
            for k, s in enumerate(settings):
                if not alive[k]:
                    continue
                if not (np.isfinite(losses[k]) and np.isfinite(norms[k])):
                    diverged_at[k] = step
                    alive[k] = False
                    out["loss"][step, k] = losses[k]
                    out["grad_norm"][step, k] = norms[k]
                    continue
                if s.clip_fn is not None:
                    grads_k = [G[name][k] for name in PARAM_NAMES]  # views: an in-place clip_fn scales G
                    before = grad_norm(grads_k)
                    clipped, in_place = _apply_clip(s.clip_fn, s.threshold, grads_k)
                    clipped_norms[k] = grad_norm(clipped)
                    out["clipped"][step, k] = _changed(grads_k, clipped, in_place, before, clipped_norms[k])
                    if not in_place:
                        for name, g_new in zip(PARAM_NAMES, clipped, strict=True):
                            G[name][k] = g_new
            live = alive.copy()
            for name in PARAM_NAMES:
                upd = G[name] * lrs.reshape((K,) + (1,) * (G[name].ndim - 1))
                P[name][live] -= upd[live]
            pnorm = np.sqrt(sum(_rowwise_sumsq(p) for p in P.values()))
            out["loss"][step, live] = losses[live]
            out["grad_norm"][step, live] = norms[live]
            out["clipped_norm"][step, live] = clipped_norms[live]
            out["param_norm"][step, live] = pnorm[live]
    results = []
    for k, s in enumerate(settings):
        hist = {key: out[key][:, k].copy() for key in HISTORY_KEYS}
        hist.update(diverged_at=diverged_at[k], label=s.label, lr=s.lr, threshold=s.threshold,
                    params={name: P[name][k].copy() for name in PARAM_NAMES})
        results.append(hist)
    return results
