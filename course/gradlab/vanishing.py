"""Experiment helpers for notebook 02 (vanishing and exploding gradients).

What is here is set-up and measurement, never an answer of notebook 02: the per-step gradient norms,
the Jacobian products, the singular value and spectral radius, the regime prediction and the cliff's
gradient are the learner's to write, and every function below that needs one of them takes it as an
argument (``hidden_grad_norms=...``, ``loss_and_grad=...``).

* ``activation_derivative``: phi'(a) from h = phi(a), for the four activations of ``gradlab.rnn``.
* ``recurrent_problem``: a fixed random RNN (inputs, weights, an upstream gradient at the last step)
  whose recurrent matrix the experiments rescale; ``hidden_states`` runs it forward.
* ``non_normal_matrix``: a matrix whose eigenvalues all have modulus ``rho`` but whose largest singular
  value is far larger: the counter-example to "rho < 1 means vanishing".
* ``geometric_rate``: the per-step factor of a geometric decay or growth, fitted to a norm curve.
* ``grad_norm_curve``: the data of the gradient-norm widget, computed with the learner's functions.
* ``find_wall``, ``cliff_surface``, ``sgd_path``: the cliff of Pascanu, Mikolov & Bengio (2013), the
  landscape of E(w, b) and gradient descent on it, with or without rescaling the step.

Reference: R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent neural
networks", ICML 2013 (arXiv:1211.5063).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rnn

ACTIVATIONS = rnn.ACTIVATIONS


def activation_derivative(activation, h):
    """phi'(a) written through the activation's output h = phi(a) (what BPTT has at hand).

    tanh: 1 - h**2; sigmoid: h * (1 - h); relu: 1 where h > 0, else 0; linear: 1.
    Defined in notebook 02.
    """
    return rnn.activation_derivative(activation, np.asarray(h, dtype=float))


@dataclass(frozen=True)
class RecurrentProblem:
    """A fixed random RNN: inputs ``X`` (N, T, D), ``h0`` (N, H), ``Wx`` (D, H), ``b`` (H,), a base
    recurrent matrix ``Wh`` (H, H) that experiments rescale, and the upstream gradient ``dh`` (N, T, H),
    zero except at the last step, where each example's gradient is a random unit vector (the loss
    reads only the last hidden state).

    Defined in notebook 02.
    """

    X: np.ndarray
    h0: np.ndarray
    Wx: np.ndarray
    b: np.ndarray
    Wh: np.ndarray
    dh: np.ndarray

    @property
    def num_steps(self):
        return self.X.shape[1]

    def truncated(self, num_steps):
        """The same problem on the first ``num_steps`` steps (upstream gradient moved to the new end)."""
        if int(num_steps) != num_steps or not 1 <= num_steps <= self.num_steps:
            raise ValueError(f"num_steps must be an integer in [1, {self.num_steps}], got {num_steps!r}")
        num_steps = int(num_steps)
        dh = np.zeros_like(self.dh[:, :num_steps])
        dh[:, -1] = self.dh[:, -1]
        return RecurrentProblem(self.X[:, :num_steps], self.h0, self.Wx, self.b, self.Wh, dh)


def recurrent_problem(num_hiddens=32, num_steps=100, *, batch_size=1, input_size=1, input_scale=0.5,
                      seed=0):
    """A ``RecurrentProblem`` with N(0, 1) inputs, input weights N(0, input_scale**2 / D), zero bias and
    initial state, and a base ``Wh`` ~ N(0, 1/H) (spectral radius close to 1, to be rescaled).

    Defined in notebook 02.
    """
    for name, value in (("num_hiddens", num_hiddens), ("num_steps", num_steps),
                        ("batch_size", batch_size), ("input_size", input_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not input_scale >= 0:
        raise ValueError(f"input_scale must be >= 0, got {input_scale!r}")
    rng = np.random.default_rng(seed)
    H, T, N, D = int(num_hiddens), int(num_steps), int(batch_size), int(input_size)
    Wh = rng.normal(0.0, 1.0 / np.sqrt(H), size=(H, H))
    Wx = rng.normal(0.0, input_scale / np.sqrt(D), size=(D, H))
    X = rng.normal(0.0, 1.0, size=(N, T, D))
    last = rng.normal(size=(N, H))
    last /= np.linalg.norm(last, axis=1, keepdims=True)
    dh = np.zeros((N, T, H))
    dh[:, -1] = last
    return RecurrentProblem(X=X, h0=np.zeros((N, H)), Wx=Wx, b=np.zeros(H), Wh=Wh, dh=dh)


def hidden_states(problem, Wh, activation="tanh"):
    """Hidden states h (N, T, H) of ``problem`` run forward with recurrent matrix ``Wh``. Defined in notebook 02."""
    Wh = np.asarray(Wh, dtype=float)
    if Wh.shape != problem.Wh.shape:
        raise ValueError(f"Wh must have shape {problem.Wh.shape}, got {Wh.shape}")
    h, _ = rnn.rnn_forward(problem.X, problem.h0, problem.Wx, Wh, problem.b, activation=activation)
    return h


def non_normal_matrix(num_hiddens=16, rho=0.9, coupling=2.0):
    """``rho * I + coupling * S`` with S the shift (ones just above the diagonal).

    Upper triangular, so every eigenvalue equals ``rho`` and the spectral radius is ``rho``; but for
    ``coupling > 0`` the matrix is non-normal and its largest singular value is about ``rho + coupling``.
    Powers W**k then grow for a while (like a polynomial in k) before rho**k wins. Returns W: (H, H)
    with H = num_hiddens. Defined in notebook 02.
    """
    if int(num_hiddens) != num_hiddens or num_hiddens < 2:
        raise ValueError(f"num_hiddens must be an integer >= 2, got {num_hiddens!r}")
    H = int(num_hiddens)
    return rho * np.eye(H) + coupling * np.eye(H, k=1)


def geometric_rate(norms, *, skip=0):
    """The per-step factor r of a curve norms[t] ~ C * r**(T - 1 - t), fitted by least squares in log space.

    ``norms`` is indexed by time step (as the gradient norms of dL/dh_t are): r < 1 means the gradient
    shrinks as it travels back in time, r > 1 that it grows. The last ``skip`` steps (nearest the loss)
    are left out of the fit. Zero or non-finite entries are ignored; at least two must remain.
    Defined in notebook 02.
    """
    norms = np.asarray(norms, dtype=float)
    if norms.ndim != 1:
        raise ValueError(f"norms must be one-dimensional, got shape {norms.shape}")
    steps_back = np.arange(norms.size)[::-1]
    keep = np.isfinite(norms) & (norms > 0) & (steps_back >= skip)
    if keep.sum() < 2:
        raise ValueError("need at least two positive, finite norms to fit a rate")
    slope = np.polyfit(steps_back[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


def grad_norm_curve(problem, rho, num_steps, activation, *, hidden_grad_norms, scale_to_spectral_radius,
                    largest_singular_value):
    """The data behind the gradient-norm widget, computed with the learner's three functions.

    Rescales ``problem.Wh`` to spectral radius ``rho``, runs the first ``num_steps`` steps forward with
    ``activation`` and returns a dict: ``t`` (time steps 0..T-1), ``norms`` (||dL/dh_t||), ``bound``
    (Pascanu et al.'s upper bound ||dL/dh_T|| * (gamma * sigma_max)**(T-1-t)), ``sigma_max``, ``gamma``.
    Defined in notebook 02.
    """
    rnn.check_activation(activation)
    sub = problem.truncated(num_steps)
    Wh = np.asarray(scale_to_spectral_radius(problem.Wh, rho), dtype=float)
    h = hidden_states(sub, Wh, activation)
    norms = np.asarray(hidden_grad_norms(sub.dh, h, Wh, activation), dtype=float)
    sigma = float(largest_singular_value(Wh))
    gamma = 0.25 if activation == "sigmoid" else 1.0
    t = np.arange(sub.num_steps)
    with np.errstate(over="ignore"):
        bound = norms[-1] * (gamma * sigma) ** (sub.num_steps - 1 - t)
    return {"t": t, "norms": norms, "bound": bound, "sigma_max": sigma, "gamma": gamma}


# ----------------------------------------------------------------------------------------------------
# The cliff: x_t = w * sigmoid(x_{t-1}) + b, x_0 = 0.5, E = (sigmoid(x_50) - 0.7)**2


def find_wall(loss_and_grad, w, b_low, b_high, *, level=0.25, iterations=60):
    """Bisect on b, at fixed w, for where E(w, b) crosses ``level`` between ``b_low`` and ``b_high``.

    ``loss_and_grad(w, b)`` returns (E, dE/dw, dE/db). E(w, b_low) and E(w, b_high) must lie on opposite
    sides of ``level``. Returns the two brackets (b_a, b_b) after ``iterations`` halvings; the wall (the
    jump of the cliff) lies between them.
    Defined in notebook 02.
    """
    def side(b):
        return float(np.asarray(loss_and_grad(w, b)[0])) > level

    lo, hi = float(b_low), float(b_high)
    s_lo, s_hi = side(lo), side(hi)
    if s_lo == s_hi:
        raise ValueError(f"E does not cross {level} between b = {lo} and b = {hi} at w = {w}")
    for _ in range(int(iterations)):
        mid = 0.5 * (lo + hi)
        if side(mid) == s_lo:
            lo = mid
        else:
            hi = mid
    return lo, hi


def cliff_surface(loss_and_grad, w_range=(2.0, 8.0), b_range=(-6.0, 1.0), *, num=161):
    """E on a ``num`` x ``num`` grid: returns (w values, b values, E of shape (num_b, num_w)).

    Calls ``loss_and_grad`` once on the whole grid when it accepts arrays, point by point otherwise.
    Defined in notebook 02.
    """
    ws = np.linspace(*w_range, num)
    bs = np.linspace(*b_range, num)
    Wg, Bg = np.meshgrid(ws, bs)
    try:
        E = np.asarray(loss_and_grad(Wg, Bg)[0], dtype=float)
        if E.shape != Wg.shape:
            raise ValueError("not vectorised")
    except Exception:  # a learner's scalar-only implementation: go point by point
        E = np.array([[float(np.asarray(loss_and_grad(w, b)[0])) for w in ws] for b in bs])
    return ws, bs, E


def sgd_path(loss_and_grad, start, lr, num_steps, *, clip=None, stop_at=1e6):
    """Gradient descent on (w, b): theta <- theta - lr * g, with g rescaled to norm ``clip`` when larger.

    Returns an array (k + 1, 2) of the visited points, k <= ``num_steps``: the path stops early when a
    point leaves the box |w|, |b| <= ``stop_at`` or the gradient is not finite. ``clip=None`` is plain
    gradient descent; a number is Pascanu et al.'s rescaling of the gradient to that norm.
    Defined in notebook 02.
    """
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be None or > 0, got {clip!r}")
    theta = np.array(start, dtype=float).reshape(2)
    path = [theta.copy()]
    for _ in range(int(num_steps)):
        _, gw, gb = loss_and_grad(theta[0], theta[1])
        g = np.array([float(np.asarray(gw)), float(np.asarray(gb))])
        if not np.all(np.isfinite(g)):
            break
        norm = float(np.hypot(g[0], g[1]))
        if clip is not None and norm > clip:
            g *= clip / norm
        theta = theta - lr * g
        path.append(theta.copy())
        if not np.all(np.abs(theta) <= stop_at):
            break
    return np.array(path)
