"""Comparisons for hidden tests that say what is wrong in words, never the expected values.

``np.testing.assert_allclose`` and ``torch.testing.assert_close`` print both arrays when they fail,
which in a hidden test would hand the learner the hidden case's answer. These two do the same checks
and fail with a sentence instead: the shape or dtype that is wrong, a NaN where a number belongs,
"the norm is 3 % too large", "the direction changed", "entries are off by up to 2 % of the largest".

    assert_allclose(actual, desired, rtol=1e-7, atol=0.0, equal_nan=True, err_msg="")   # NumPy's defaults
    assert_close(actual, desired, rtol=None, atol=None, equal_nan=False, check_dtype=True, msg="")  # torch's

Defined for the course's test cells (any notebook); it answers no exercise.
"""

from __future__ import annotations

import numpy as np

# torch.testing.assert_close's default tolerances by dtype
_TORCH_TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
                     np.dtype(np.float64): (1e-7, 1e-7)}


def _as_array(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a TensorFlow tensor or variable
        value = value.numpy()
    return np.asarray(value)


def describe_difference(actual, desired):
    """In words, how ``actual`` differs from ``desired`` (same shape, both finite where compared).

    Used by the hidden tests from notebook 01 on.
    """
    a = np.asarray(_as_array(actual), dtype=np.float64).ravel()
    d = np.asarray(_as_array(desired), dtype=np.float64).ravel()
    if a.shape != d.shape:
        return "the number of entries is wrong"
    norm_a, norm_d = np.linalg.norm(a), np.linalg.norm(d)
    if norm_d == 0:
        return "it should be all zeros and is not"
    if norm_a == 0:
        return "it is all zeros and should not be"
    words = []
    ratio = norm_a / norm_d - 1.0
    if abs(ratio) >= 1e-3:
        words.append(f"its norm is {abs(ratio) * 100:.3g} % too {'large' if ratio > 0 else 'small'}")
    cosine = float(a @ d / (norm_a * norm_d))
    if cosine < 1 - 1e-6:
        words.append("its direction changed" if cosine > 0 else "it points the opposite way or sideways")
    worst = float(np.max(np.abs(a - d))) / float(np.max(np.abs(d)))
    words.append(f"entries are off by up to {worst * 100:.3g} % of the largest entry")
    return ", ".join(words)


def _compare(actual, desired, rtol, atol, equal_nan, what):
    prefix = f"{what}: " if what else ""
    a, d = _as_array(actual), _as_array(desired)
    if a.shape != d.shape:
        raise AssertionError(f"{prefix}the shape is wrong: {a.ndim} dimensions and {a.size} entries "
                             f"where {d.ndim} and {d.size} are expected")
    if a.size == 0:
        return
    if a.dtype == bool or d.dtype == bool:
        if not np.array_equal(a, d):
            raise AssertionError(f"{prefix}{int(np.sum(a != d))} of {a.size} entries are wrong")
        return
    a64, d64 = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64), d.astype(np.float64)
    nan_a, nan_d = np.isnan(a64), np.isnan(d64)
    if equal_nan and not np.array_equal(nan_a, nan_d):
        extra, missing = int(np.sum(nan_a & ~nan_d)), int(np.sum(nan_d & ~nan_a))
        raise AssertionError(f"{prefix}{extra} entries are NaN that should be numbers, "
                             f"{missing} should be NaN and are not")
    if not equal_nan and (nan_a.any() or nan_d.any()):
        raise AssertionError(f"{prefix}NaN where a number is expected")
    keep = ~nan_d
    a64, d64 = a64[keep], d64[keep]
    inf_a, inf_d = np.isinf(a64), np.isinf(d64)
    if not np.array_equal(inf_a, inf_d) or not np.array_equal(a64[inf_d], d64[inf_d]):
        raise AssertionError(f"{prefix}the infinite entries are not where (or of the sign) they should be")
    a64, d64 = a64[~inf_d], d64[~inf_d]
    if not np.all(np.abs(a64 - d64) <= atol + rtol * np.abs(d64)):
        raise AssertionError(f"{prefix}{describe_difference(np.real(a64), d64)}")


def assert_allclose(actual, desired, rtol=1e-7, atol=0.0, equal_nan=True, err_msg="", verbose=True):
    """``np.testing.assert_allclose`` that fails in words (no values). Used by the hidden tests from notebook 01 on."""
    _compare(actual, desired, rtol, atol, equal_nan, err_msg)


def assert_close(actual, desired, *, rtol=None, atol=None, equal_nan=False, check_dtype=True, msg=""):
    """``torch.testing.assert_close`` (tensors or arrays, any shape) that fails in words (no values).

    Used by the hidden tests from notebook 01 on.
    """
    a, d = _as_array(actual), _as_array(desired)
    prefix = f"{msg}: " if msg else ""
    if check_dtype and a.dtype != d.dtype:
        raise AssertionError(f"{prefix}the dtype is {a.dtype}, {d.dtype} is expected")
    if rtol is None or atol is None:
        default = _TORCH_TOLERANCES.get(np.result_type(a.dtype, d.dtype) if a.dtype != d.dtype else d.dtype,
                                        (0.0, 0.0))
        rtol = default[0] if rtol is None else rtol
        atol = default[1] if atol is None else atol
    _compare(a, d, rtol, atol, equal_nan, msg)
