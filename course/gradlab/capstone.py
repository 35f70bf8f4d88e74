"""Notebook 08's laboratory: many small tanh RNNs trained at once on Pascanu et al.'s temporal-order task.

The capstone compares clipping rules over lengths, seeds and thresholds. One network at a time would
not fit a laptop's minute, so ``RNNStack`` holds K independent tanh RNN classifiers as stacked NumPy
arrays and runs them through the course's one RNN, ``gradlab.rnn``'s ``rnn_forward`` and ``rnn_loss``
(task "classification"), on a leading model axis, as ``gradlab.training.train_many`` does. Each network is also
exposed as a list of torch ``nn.Parameter`` objects (``stack.parameters(k)``) whose data **and**
``.grad`` share memory with the stacked arrays, so the learner's clipping functions, written for
torch parameters, act on the very gradients the stack then applies. Nothing here clips a gradient:
``train_stack`` calls the clipping function it is given for each network, after the backward pass
and before the update.

Defined in notebook 08. Layout follows torch (first dimension = output unit): for network k,
``Wx`` (H, D), ``Wh`` (H, H), ``b`` (H,), ``Wy`` (O, H), ``by`` (O,), and
``h_t = tanh(Wx x_t + Wh h_{t-1} + b)``, ``scores = Wy h_T + by``, softmax cross-entropy.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .data import temporal_order
from .rnn import rnn_forward, rnn_loss
from .training import one_blas_thread

__all__ = ["PARAM_NAMES", "RNNStack", "order_batches", "train_stack", "success_rate", "spearman"]

PARAM_NAMES = ("Wx", "Wh", "b", "Wy", "by")
NUM_SYMBOLS, NUM_CLASSES = 6, 4
"""The temporal-order task of ``gradlab.data.temporal_order``: 6 one-hot symbols in, 4 classes out."""


def _swap(a):
    """The transpose of the last two axes: torch's (out, in) layout to gradlab.rnn's (in, out) and back."""
    return np.swapaxes(a, -1, -2)


def order_batches(data_seeds, N, T, step):
    """One mini-batch of fresh temporal-order sequences per data seed, as Pascanu et al. draw them.

    data_seeds: sequence of S ints; N, T: batch size and length; step: the training step (every step
    and seed gets its own sequences). Returns X (S, N, T, 6) float64 one-hot and y (S, N) int64 labels.
    Defined in notebook 08.
    """
    Xs, ys = [], []
    for seed in data_seeds:
        X, y = temporal_order(N, T, seed=1_000_003 * int(seed) + int(step))
        Xs.append(X)
        ys.append(y)
    return np.stack(Xs), np.stack(ys)


class RNNStack:
    """K independent tanh RNN classifiers, trained together (one batched recurrence).

    K = len(seeds); network k is initialised from ``seeds[k]``: ``Wh`` a Gaussian matrix rescaled to
    spectral radius ``spectral_radius``, ``Wx`` ~ N(0, 1/D), ``Wy`` ~ N(0, 1/H), biases zero.
    ``arrays[name]`` holds every network's parameter (leading axis K), ``grads[name]`` the last
    backward pass's gradients, same shapes. Defined in notebook 08.
    """

    def __init__(self, seeds, *, num_hiddens=32, input_size=NUM_SYMBOLS, num_outputs=NUM_CLASSES,
                 spectral_radius=1.0):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one network per seed)")
        if not (isinstance(spectral_radius, numbers.Real) and spectral_radius > 0):
            raise ValueError(f"spectral_radius must be positive, got {spectral_radius!r}")
        H, D, O = int(num_hiddens), int(input_size), int(num_outputs)
        self.K, self.H, self.D, self.O = len(seeds), H, D, O
        self.arrays = {"Wx": np.empty((self.K, H, D)), "Wh": np.empty((self.K, H, H)), "b": np.zeros((self.K, H)),
                       "Wy": np.empty((self.K, O, H)), "by": np.zeros((self.K, O))}
        for k, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            Wh = rng.normal(0.0, 1.0 / math.sqrt(H), size=(H, H))
            self.arrays["Wh"][k] = Wh * (spectral_radius / np.abs(np.linalg.eigvals(Wh)).max())
            self.arrays["Wx"][k] = rng.normal(0.0, 1.0 / math.sqrt(D), size=(H, D))
            self.arrays["Wy"][k] = rng.normal(0.0, 1.0 / math.sqrt(H), size=(O, H))
        self.grads = {name: np.zeros_like(a) for name, a in self.arrays.items()}
        self._torch = None

    # -- torch views -------------------------------------------------------------------------------
    def parameters(self, k):
        """Network k as a list of 5 torch ``nn.Parameter`` (order ``PARAM_NAMES``) sharing memory with
        ``arrays`` and, through ``.grad``, with ``grads``: clipping ``p.grad`` in place clips the stack's
        gradient. (``train_stack`` copies back a ``.grad`` that a clipping function replaced.)"""
        import torch

        if self._torch is None:
            self._torch = [[torch.nn.Parameter(torch.from_numpy(self.arrays[n][j]), requires_grad=True)
                            for n in PARAM_NAMES] for j in range(self.K)]
        params = self._torch[k]
        for name, p in zip(PARAM_NAMES, params, strict=True):
            p.grad = torch.from_numpy(self.grads[name][k])
        return params

    def sync_grads(self, k):
        """Copy network k's ``.grad`` tensors into ``grads`` where a function replaced them (not in place)."""
        for name, p in zip(PARAM_NAMES, self._torch[k], strict=True):
            view = self.grads[name][k]
            g = p.grad
            if g is None:
                view[...] = 0.0
            elif g.data_ptr() != view.ctypes.data:
                view[...] = g.detach().to("cpu").double().numpy()

    # -- forward and backward: gradlab.rnn's, on the K networks at once ------------------------------
    def _rnn_params(self):
        """The stack in ``gradlab.rnn``'s layout (Wx (K, D, H), Wy (K, H, O), ...): transposed views, no copy."""
        A = self.arrays
        return {"Wx": _swap(A["Wx"]), "Wh": _swap(A["Wh"]), "b": A["b"], "Wy": _swap(A["Wy"]), "by": A["by"]}

    def _inputs(self, X):
        """X (K or 1, N, T, D) as ``gradlab.rnn`` takes it: (K, N, T, D) per network, or (N, T, D) shared."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 4 or X.shape[0] not in (1, self.K):
            raise ValueError(f"X must have shape (1 or {self.K}, N, T, {self.D}) (one batch per network), "
                             f"got {X.shape}")
        return X[0] if X.shape[0] == 1 else X

    def predict(self, X):
        """Predicted classes (K, N) for X (K or 1, N, T, D)."""
        P = self._rnn_params()
        X = self._inputs(X)
        with np.errstate(all="ignore"), one_blas_thread():
            h0 = np.zeros((self.K, X.shape[-3], self.H))
            h, _ = rnn_forward(X, h0, P["Wx"], P["Wh"], P["b"])
            scores = h[..., -1, :] @ P["Wy"] + P["by"][:, None, :]
        return np.argmax(np.nan_to_num(scores, nan=0.0), axis=2)

    def loss_and_grads(self, X, y):
        """Mean cross-entropy of every network on its batch (``gradlab.rnn.rnn_loss``, task
        "classification"); fills ``grads``. Returns losses (K,).

        X: (K or 1, N, T, D), y: (K or 1, N) int labels (one batch per network, or one for all)."""
        X = self._inputs(X)
        y = np.asarray(y)
        y = y[0] if y.ndim == 2 and y.shape[0] == 1 else y
        losses, grads = rnn_loss(self._rnn_params(), X, y, task="classification")
        for name in PARAM_NAMES:
            g = grads[name]
            self.grads[name][...] = _swap(g) if g.ndim == 3 else g  # back to torch's layout
        return losses

    def global_sq(self, store):
        """Per-network sum of squares over all parameters of ``store`` (a dict like ``arrays``): (K,)."""
        return sum(np.einsum("ki,ki->k", a.reshape(self.K, -1), a.reshape(self.K, -1)) for a in store.values())


def train_stack(clip_fns, *, T, seeds, lr, num_steps, batch_size=32, num_hiddens=32, spectral_radius=1.0,
                num_test=1000, smoothness=False, progress=None):
    """Train one tanh RNN per entry of ``clip_fns`` on the temporal-order task (length T), all at once.

    clip_fns: list of K entries, each None (plain SGD) or ``clip(parameters)``, called with network
    k's list of torch parameters after every backward pass and before the update ``p -= lr * p.grad``;
    it changes ``p.grad`` (in place, or by assigning a new tensor). seeds: K ints, network k's
    initialisation and data seed (networks with the same seed start equal and see the same batches).
    Each step draws fresh sequences; a network whose loss or gradient becomes non-finite is frozen
    (its later entries are NaN) and fails. With ``smoothness=True`` each step also computes the
    gradient at the new weights on the same batch (Zhang et al. 2020's local smoothness).
    progress: a tqdm-like bar updated once per step, or None.

    Returns a dict of NumPy arrays: ``loss`` (num_steps, K) mini-batch loss before the step,
    ``grad_norm`` (num_steps, K) global gradient norm before clipping, ``clipped`` (num_steps, K)
    bool, True where the clipping function changed the gradient, ``step_norm`` (num_steps, K)
    ||theta_{t+1} - theta_t||, ``smoothness`` (num_steps, K) ||g(theta_{t+1}) - g(theta_t)|| /
    ||theta_{t+1} - theta_t|| (NaN unless asked), ``diverged_at`` (K,) first non-finite step or -1,
    ``test_error`` (K,) error rate on ``num_test`` fresh sequences (1.0 for a diverged network).
    Defined in notebook 08.
    """
    seeds = [int(s) for s in seeds]
    if len(clip_fns) != len(seeds):
        raise ValueError(f"give one seed per clipping function ({len(clip_fns)} functions, {len(seeds)} seeds)")
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    stack = RNNStack(seeds, num_hiddens=num_hiddens, spectral_radius=spectral_radius)
    K = stack.K
    data_seeds = sorted(set(seeds))
    where = np.array([data_seeds.index(s) for s in seeds])
    out = {key: np.full((num_steps, K), np.nan) for key in ("loss", "grad_norm", "step_norm", "smoothness")}
    out["clipped"] = np.zeros((num_steps, K), dtype=bool)
    alive = np.ones(K, dtype=bool)
    diverged_at = np.full(K, -1)
    with np.errstate(all="ignore"), one_blas_thread():
        for step in range(num_steps):
            X, y = order_batches(data_seeds, batch_size, T, step)
            X, y = X[where], y[where]
            losses = stack.loss_and_grads(X, y)
            norms = np.sqrt(stack.global_sq(stack.grads))
            bad = alive & ~(np.isfinite(losses) & np.isfinite(norms))
            diverged_at[bad] = step
            out["loss"][step, alive] = losses[alive]
            out["grad_norm"][step, alive] = norms[alive]
            alive &= ~bad
            raw = {n: g.copy() for n, g in stack.grads.items()} if smoothness else None
            for k, clip in enumerate(clip_fns):
                if clip is None or not alive[k]:
                    continue
                before = [stack.grads[n][k].copy() for n in PARAM_NAMES]
                clip(stack.parameters(k))
                stack.sync_grads(k)
                out["clipped"][step, k] = any(not np.array_equal(b, stack.grads[n][k])
                                              for b, n in zip(before, PARAM_NAMES, strict=True))
            live = alive[:, None]
            sq = np.zeros(K)
            for name in PARAM_NAMES:
                upd = lr * stack.grads[name]
                upd *= live.reshape((K,) + (1,) * (upd.ndim - 1))
                stack.arrays[name] -= upd
                sq += np.einsum("ki,ki->k", upd.reshape(K, -1), upd.reshape(K, -1))
            out["step_norm"][step, alive] = np.sqrt(sq)[alive]
            if smoothness:
                stack.loss_and_grads(X, y)
                diff = {n: stack.grads[n] - raw[n] for n in PARAM_NAMES}
                ratio = np.sqrt(stack.global_sq(diff)) / np.sqrt(sq)
                out["smoothness"][step, alive] = ratio[alive]
            if progress is not None:
                progress.update(1)
        Xt, yt = order_batches(data_seeds, num_test, T, 10**9)
        errors = (stack.predict(Xt[where]) != yt[where]).mean(axis=1)
    finite = np.array([all(np.isfinite(stack.arrays[n][k]).all() for n in PARAM_NAMES) for k in range(K)])
    out["test_error"] = np.where(alive & finite, errors, 1.0)
    out["diverged_at"] = diverged_at
    out["stack"] = stack
    return out


def success_rate(test_error, threshold):
    """Share of runs whose test error is below ``threshold`` (e.g. 0.01, Pascanu et al.'s criterion).

    test_error: array (..., S) over S seeds; returns an array (...) of fractions. Defined in notebook 08."""
    return (np.asarray(test_error) < threshold).mean(axis=-1)


def spearman(a, b):
    """Spearman rank correlation of a (n,) and b (n,), over the pairs where both are finite; a float.

    Ties get distinct ranks (fine for continuous measurements). Defined in notebook 08."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    ra = np.argsort(np.argsort(a[keep])).astype(float)
    rb = np.argsort(np.argsort(b[keep])).astype(float)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra @ rb) / math.sqrt((ra @ ra) * (rb @ rb)))
