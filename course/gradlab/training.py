"""Training the reference NumPy RNN (``gradlab.rnn``) with plain SGD, with or without clipping.

Defined in notebook 03 (notebook 04 logs and guards its runs with it). Two trainers, with the same rules:

* ``train(params, X, y, lr=..., num_steps=..., clip_fn=..., threshold=...)`` trains one network and
  returns its final parameters and a history: the loss of every step, the global gradient norm
  before and after clipping, whether the step was clipped, the norm of the weights, and the step at
  which training diverged (a non-finite loss or gradient), if it did.
* ``train_many(settings, params, X, y, num_steps=...)`` trains several copies of the same network at
  once, one per setting (learning rate, clipping function, threshold), on the same mini-batches. The
  copies' parameters are stacked on a leading axis and go through ``gradlab.rnn.rnn_loss`` together:
  the same forward and backward as ``train``, with the recurrence one batched matrix product over all
  copies, so K settings cost little more than one (this lets the clipping widget retrain within a
  second).

Shapes: X: (N, T, D); y: (N, O) for regression, (N,) integer labels for classification; params as
``gradlab.rnn.init_rnn`` makes them (Wx (D, H), Wh (H, H), b (H,), Wy (H, O), by (O,)).

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

``progress=True`` (or a text, the bar's label) shows a ``tqdm.auto`` bar over the steps that reaches
its end also when a run stops early; pass an existing bar to share one over several runs
(``gradlab.progress``).
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np

try:  # scikit-learn's dependency: keeps BLAS on one thread for these small products
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from .progress import progress_bar
from .rnn import PARAM_NAMES, check_activation, rnn_loss

__all__ = ["train", "train_many", "evaluate", "grad_norm", "batches", "Setting", "HISTORY_KEYS", "one_blas_thread"]

HISTORY_KEYS = ("loss", "grad_norm", "clipped_norm", "clipped", "param_norm")


def one_blas_thread():
    """A context in which NumPy's BLAS runs on one thread (see bench/README.md). Defined in notebook 03."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def grad_norm(grads):
    """Global L2 norm of a list of arrays of any shapes, computed in float64. Defined in notebook 03.

    For logging, not an exercise answer. Returns a float.
    """
    total = 0.0
    for g in grads:
        g64 = np.asarray(g, dtype=np.float64).ravel()
        total += float(np.dot(g64, g64))
    return float(np.sqrt(total))


def batches(num_examples, batch_size, num_steps, seed=0):
    """Row indices of every step's mini-batch: int array (num_steps, batch_size). Defined in notebook 03.

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
    """Loss of ``params`` on X: (N, T, D), y: (N, O) or (N,) (no update); NaN if it overflows.

    Defined in notebook 03. Returns a float.
    """
    with np.errstate(all="ignore"), one_blas_thread():
        loss, _ = rnn_loss(params, X, y, task=task, activation=activation)
    return float(loss) if np.isfinite(loss) else float("nan")


def train(params, X, y, *, lr, num_steps, batch_size=32, task="regression", clip_fn=None, threshold=None,
          seed=0, activation="tanh", stop_on_nonfinite=True, progress=False):
    """Train an RNN with SGD, optionally clipping every step's gradient. Defined in notebook 03.

    X: (N, T, D); y: (N, O) for regression, (N,) labels for classification. Returns (params, history).

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
    ``num_steps``. ``progress``: False, True or a label for a ``tqdm.auto`` bar over the steps, or an
    existing bar to advance (left open); see ``gradlab.progress.progress_bar``.
    """
    X = _check_common(params, X, y, lr, num_steps, task)
    if clip_fn is not None and threshold is None:
        raise ValueError("clip_fn needs a threshold")
    check_activation(activation)
    y = np.asarray(y)
    params = {k: np.array(params[k], copy=True) for k in PARAM_NAMES}
    plist = [params[k] for k in PARAM_NAMES]
    idx = batches(X.shape[0], batch_size, num_steps, seed)
    hist = {k: [] for k in HISTORY_KEYS}
    diverged_at = None
    with np.errstate(all="ignore"), one_blas_thread(), progress_bar(progress, num_steps) as bar:
        for step in range(num_steps):
            bar.update(1)
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
    """One training setting for ``train_many``: (lr, clip_fn, threshold, label). Defined in notebook 03.

    ``lr``: a positive float; ``clip_fn(grads, threshold)``: None, or a clipping function (see the
    module's doc); ``label``: a text for legends (made from the others when None).
    """

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


def _rowwise_sumsq(a):
    """Sum of squares of each model's entries: a (K, ...) -> (K,)."""
    flat = a.reshape(a.shape[0], -1)
    return np.einsum("ij,ij->i", flat, flat)


def train_many(settings, params, X, y, *, num_steps, batch_size=32, task="regression", seed=0,
               activation="tanh", progress=False):
    """Train one copy of ``params`` per setting, all at once, on the same mini-batches. Defined in notebook 03.

    - settings: a list of K ``Setting(lr, clip_fn=None, threshold=None, label=None)`` (or plain tuples
      with the same fields)
    - params: a dict as ``gradlab.rnn.init_rnn`` makes it; X: (N, T, D); y: (N, O), or (N,) labels
    Returns a list with one history per setting, as ``train`` returns it, but every array has
    ``num_steps`` entries: after a copy diverges its entries are NaN (its weights are frozen, and it
    never warns). Each history also has ``label``, ``lr``, ``threshold`` and the final ``params``.
    Training stops once every copy has diverged. ``progress``: as for ``train``.

    The copies' parameters are stacked on a leading axis, P["Wx"]: (K, D, H), P["Wh"]: (K, H, H), ...,
    and go through ``gradlab.rnn.rnn_loss`` together.
    """
    settings = [s if isinstance(s, Setting) else Setting(*s) for s in settings]
    if not settings:
        raise ValueError("settings must hold at least one setting")
    X = _check_common(params, X, y, settings[0].lr, num_steps, task)
    check_activation(activation)
    y = np.asarray(y)
    K = len(settings)
    P = {k: np.repeat(np.asarray(params[k], dtype=np.float64)[None], K, axis=0) for k in PARAM_NAMES}
    lrs = np.array([s.lr for s in settings])
    idx = batches(X.shape[0], batch_size, num_steps, seed)
    out = {k: np.full((num_steps, K), np.nan) for k in HISTORY_KEYS}
    out["clipped"] = np.zeros((num_steps, K), dtype=bool)
    alive = np.ones(K, dtype=bool)
    diverged_at = [None] * K
    with np.errstate(all="ignore"), one_blas_thread(), progress_bar(progress, num_steps) as bar:
        for step in range(num_steps):
            if not alive.any():
                break
            bar.update(1)
            rows = idx[step]
            losses, G = rnn_loss(P, X[rows], y[rows], task=task, activation=activation)
            norms = np.sqrt(sum(_rowwise_sumsq(g) for g in G.values()))
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
