"""Synthetic sequence tasks, generated on the spot (no downloads), deterministic for a given seed.

* ``adding_problem``: Hochreiter & Schmidhuber's adding task. Each step carries a random value and a
  marker; the target is the sum of the two marked values, one in each half of the sequence. Predicting
  the mean (1.0) gives a mean squared error of about 1/6, so a loss well below 0.167 means the network
  carries information across the sequence.
* ``temporal_order``: a 4-class task. Two symbols, each A or B, sit at random early and late positions
  among distractors; the class is their order (AA, AB, BA, BB).
* ``recall_first``: the target is the first input value; everything after it is noise. The simplest
  long-range dependency: the gradient must travel T - 1 steps back.
"""

from __future__ import annotations

import numpy as np


def _check(N, T, min_T=1):
    if int(N) != N or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    if int(T) != T or T < min_T:
        raise ValueError(f"T must be an integer >= {min_T}, got {T!r}")


def adding_problem(N, T, *, seed=0, dtype=np.float64):
    """X of shape (N, T, 2) (value, marker) and y of shape (N, 1), the sum of the two marked values.

    The variant of Arjovsky, Shah & Bengio (2016, section 4.2) of Hochreiter & Schmidhuber's (1997)
    Experiment 4 (section 5.4): values uniform in [0, 1), one marker in each half of the sequence, the
    target the sum of the two marked values (predicting the mean, 1, scores a mean squared error of 1/6).
    The original draws values from [-1, 1], puts the markers among the first ten and the first T/2 - 1
    steps, and sets the target to 0.5 + (X1 + X2)/4. Defined in notebook 01.
    """
    _check(N, T, min_T=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(N, T))
    half = T // 2
    first = rng.integers(0, half, size=N)
    second = rng.integers(half, T, size=N)
    markers = np.zeros((N, T))
    rows = np.arange(N)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second]).reshape(N, 1).astype(dtype)
    return X, y


def temporal_order(N, T, *, seed=0, dtype=np.float64):
    """X of shape (N, T, 6) one-hot symbols and integer labels y of shape (N,) in {0, 1, 2, 3}.

    Symbols 0-3 are distractors, 4 is A and 5 is B. One relevant symbol lies in the first 10-20% of
    the sequence, the other in 50-60%; the label encodes their order: AA=0, AB=1, BA=2, BB=3.
    Defined in notebook 08 (the temporal-order study, through gradlab.capstone).
    """
    _check(N, T, min_T=10)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, 4, size=(N, T))
    t1 = rng.integers(int(0.1 * T), max(int(0.2 * T), int(0.1 * T) + 1), size=N)
    t2 = rng.integers(int(0.5 * T), max(int(0.6 * T), int(0.5 * T) + 1), size=N)
    a = rng.integers(0, 2, size=N)
    b = rng.integers(0, 2, size=N)
    rows = np.arange(N)
    symbols[rows, t1] = 4 + a
    symbols[rows, t2] = 4 + b
    X = np.eye(6, dtype=dtype)[symbols]
    return X, (2 * a + b).astype(np.int64)


def recall_first(N, T, *, seed=0, noise=1.0, dtype=np.float64):
    """X of shape (N, T, 1) and y of shape (N, 1) equal to X[:, 0]: remember the first value. Defined in notebook 05."""
    _check(N, T)
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, noise, size=(N, T, 1)).astype(dtype)
    return X, X[:, 0, :].copy()
