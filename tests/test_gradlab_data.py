"""Unit tests for gradlab.data: shapes, determinism per seed, and what the targets mean."""

from __future__ import annotations

import numpy as np
import pytest
from gradlab import data

TASKS = {
    "adding_problem": (data.adding_problem, 2, (1,)),
    "temporal_order": (data.temporal_order, 6, ()),
    "recall_first": (data.recall_first, 1, (1,)),
}


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes(name, dtype):
    """Every task returns X of shape (N, T, D) in the asked dtype and y of the documented shape."""
    make, D, y_tail = TASKS[name]
    X, y = make(7, 20, seed=0, dtype=dtype)
    assert X.shape == (7, 20, D) and X.dtype == dtype
    assert y.shape == (7, *y_tail)
    if name == "temporal_order":
        assert y.dtype == np.int64
    else:
        assert y.dtype == dtype


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_data_other_seed_other_data(name):
    """A seed fixes the data exactly; another seed gives different data."""
    make = TASKS[name][0]
    X1, y1 = make(16, 30, seed=3)
    X2, y2 = make(16, 30, seed=3)
    X3, _ = make(16, 30, seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("N, T", [(0, 20), (-1, 20), (2.5, 20), (4, 0), (4, 1.5)])
def test_bad_sizes_raise_value_error(name, N, T):
    """A non-positive or non-integer N or T raises ValueError."""
    with pytest.raises(ValueError):
        TASKS[name][0](N, T)


def test_minimum_lengths():
    """The adding problem needs T >= 2 (one marker per half) and temporal order T >= 10."""
    with pytest.raises(ValueError, match="T"):
        data.adding_problem(3, 1)
    with pytest.raises(ValueError, match="T"):
        data.temporal_order(3, 9)
    X, y = data.adding_problem(3, 2)
    np.testing.assert_array_equal(X[:, :, 1], np.ones((3, 2)))
    np.testing.assert_allclose(y[:, 0], X[:, :, 0].sum(axis=1))


@pytest.mark.parametrize("T", [2, 3, 10, 51])
def test_adding_target_is_the_sum_of_the_two_marked_values(T):
    """Exactly two markers, one in each half; the target is the sum of the two marked values."""
    X, y = data.adding_problem(500, T, seed=1)
    values, markers = X[..., 0], X[..., 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = T // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1.0)
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1.0)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-15)
    assert values.min() >= 0.0 and values.max() < 1.0


def test_adding_mean_predictor_baseline_is_one_sixth():
    """Predicting the mean target (1.0) scores a mean squared error close to 1/6, as the docstring says."""
    _, y = data.adding_problem(200_000, 10, seed=2)
    assert np.mean(y) == pytest.approx(1.0, abs=0.01)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.005)


def test_adding_marker_positions_cover_both_halves():
    """Marker positions are spread over each whole half, not stuck at a few places."""
    T = 20
    X, _ = data.adding_problem(4000, T, seed=5)
    first = X[:, : T // 2, 1].argmax(axis=1)
    second = T // 2 + X[:, T // 2 :, 1].argmax(axis=1)
    assert set(first) == set(range(T // 2))
    assert set(second) == set(range(T // 2, T))


@pytest.mark.parametrize("T", [10, 17, 100])
def test_temporal_order_label_encodes_the_order_of_a_and_b(T):
    """One-hot inputs; exactly two A/B symbols, early and late; label = 2 * (first is B) + (second is B)."""
    X, y = data.temporal_order(2000, T, seed=3)
    np.testing.assert_array_equal(X.sum(axis=2), 1.0)
    symbols = X.argmax(axis=2)
    relevant = symbols >= 4
    np.testing.assert_array_equal(relevant.sum(axis=1), 2)
    pos = np.sort(np.nonzero(relevant)[1].reshape(-1, 2), axis=1)
    t1, t2 = pos[:, 0], pos[:, 1]
    assert np.all(t1 >= int(0.1 * T)) and np.all(t1 < max(int(0.2 * T), int(0.1 * T) + 1))
    assert np.all(t2 >= int(0.5 * T)) and np.all(t2 < max(int(0.6 * T), int(0.5 * T) + 1))
    rows = np.arange(len(y))
    first_is_b = symbols[rows, t1] == 5
    second_is_b = symbols[rows, t2] == 5
    np.testing.assert_array_equal(y, 2 * first_is_b + second_is_b)
    counts = np.bincount(y, minlength=4)
    assert counts.min() > 0.2 * len(y)  # the four classes are roughly balanced


def test_recall_first_target_is_the_first_value():
    """The target is X[:, 0]; the noise scale sets the spread of the inputs."""
    X, y = data.recall_first(5000, 8, seed=4, noise=2.0)
    np.testing.assert_array_equal(y, X[:, 0, :])
    assert np.std(X) == pytest.approx(2.0, rel=0.03)
    y[0, 0] = 1e9  # the target is a copy, not a view into X
    assert X[0, 0, 0] != 1e9
    X1, y1 = data.recall_first(3, 1)
    np.testing.assert_array_equal(y1, X1[:, 0])
