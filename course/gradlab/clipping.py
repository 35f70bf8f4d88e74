"""Gradient clipping in NumPy: the course's reference, used from notebook 04 on and by the benchmarks.

Notebook 03 asks the learner to write the pure functions below; it never imports this module (its
answers). Notebooks 04 onwards, the benchmarks and the tests use it.

Pure functions (inputs never modified, dtypes kept, new arrays returned):

* ``clip_by_value(grads, clip_value)``: every entry into [-clip_value, clip_value]. A threshold on each
  entry, not a norm; it can change the direction of the update.
* ``clip_by_norm(grad, max_norm)``: one tensor scaled by min(1, max_norm / ||grad||).
* ``global_norm(grads)``: the L2 norm of all tensors together, as if concatenated (float64).
* ``clip_by_global_norm(grads, max_norm) -> (clipped, norm_before)``: every tensor scaled by the same
  min(1, max_norm / global norm): Pascanu et al. (2013), Algorithm 1, and
  ``torch.nn.utils.clip_grad_norm_``.

Non-finite gradients (the course's documented choice): a NaN entry stays NaN under value clipping and
an Inf entry becomes +-clip_value (as ``torch.clamp`` and ``tf.clip_by_value`` do). For the norm-based
functions, when the norm is NaN or Inf there is no direction to keep: every entry of the result is NaN
(as ``tf.clip_by_global_norm`` documents), and the non-finite norm is returned, so that the caller can
see it and skip the step (notebook 04). torch's ``clip_grad_norm_`` instead multiplies by
max_norm / (norm + 1e-6): with an Inf norm the finite entries become 0 and the Inf ones NaN, unless
``error_if_nonfinite=True``, which raises.

Fast, in place: ``clip_grads_by_global_norm_(grads, max_norm) -> total_norm`` for large models (lists of
float32/float64 arrays): one streaming read of every gradient for the norm (a BLAS dot product per
tensor, no temporary arrays) and one in-place scaling pass, skipped when nothing needs clipping. This
is the global-norm clipping the course uses after notebook 03: notebook 04 trains with it through
``gradlab.training`` (which accepts in-place clipping functions) and calls it in its own loop, and
``bench/bench_clip.py`` times exactly it against torch's ``clip_grad_norm_``. On float64 gradients it
gives bit for bit what ``clip_by_global_norm`` gives (the same float64 dot products, the same scale),
except that a finite gradient whose sum of squares overflows still gets a finite norm.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["clip_by_value", "clip_by_norm", "global_norm", "clip_by_global_norm", "clip_grads_by_global_norm_"]


def _check_threshold(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _as_list(grads):
    if isinstance(grads, np.ndarray):
        raise TypeError("grads must be a list of arrays (one per parameter), got a single array")
    return [np.asarray(g) for g in grads]


def clip_by_value(grads, clip_value):
    """A new list with every entry of every gradient clipped into [-clip_value, clip_value]. Defined in notebook 03."""
    c = _check_threshold(clip_value, "clip_value")
    return [np.clip(g, -c, c).astype(g.dtype, copy=False) for g in _as_list(grads)]


def _sum_of_squares(g):
    """sum(g**2) in float64 without a temporary of g's size for float64 input."""
    flat = np.asarray(g).ravel()
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    return float(np.dot(flat, flat))


def global_norm(grads):
    """The L2 norm of all gradients together, as a Python float computed in float64. Defined in notebook 03."""
    return float(np.sqrt(sum(_sum_of_squares(g) for g in _as_list(grads))))


def _scale(g, scale):
    return (g * scale).astype(g.dtype, copy=False)


def clip_by_norm(grad, max_norm):
    """``grad * min(1, max_norm / ||grad||)`` as a new array; a zero gradient comes back unchanged.

    grad: an array of any shape; returns an array of that shape. A NaN or Inf norm gives an array full
    of NaN (see the module docstring). Defined in notebook 03.
    """
    c = _check_threshold(max_norm, "max_norm")
    g = np.asarray(grad)
    norm = float(np.sqrt(_sum_of_squares(g)))
    if not np.isfinite(norm):
        return np.full_like(g, np.nan)
    if norm <= c:
        return g.copy()
    return _scale(g, c / norm)


def clip_by_global_norm(grads, max_norm):
    """(clipped, norm_before): every gradient scaled by min(1, max_norm / global norm).

    ``norm_before`` is the global norm before clipping. A NaN or Inf global norm makes every clipped
    entry NaN and is returned as it is.
    Defined in notebook 03.
    """
    c = _check_threshold(max_norm, "max_norm")
    grads = _as_list(grads)
    norm = global_norm(grads)
    if not np.isfinite(norm):
        return [np.full_like(g, np.nan) for g in grads], norm
    if norm <= c:
        return [g.copy() for g in grads], norm
    return [_scale(g, c / norm) for g in grads], norm


def _overflow_safe_norm(arrays):
    """Global norm of finite arrays whose squares overflow: scale by the largest entry first."""
    biggest = max((float(np.max(np.abs(g))) for g in arrays if g.size), default=0.0)
    if biggest == 0.0:
        return 0.0
    total = 0.0
    for g in arrays:
        scaled = g.astype(np.float64).reshape(-1) / biggest
        total += float(np.dot(scaled, scaled))
    return biggest * float(np.sqrt(total))


def clip_grads_by_global_norm_(grads, max_norm):
    """Clip a list of float arrays in place by their global L2 norm; returns the norm before clipping.

    Fast path for large models: the norm is one ``np.dot(g.ravel(), g.ravel())`` per tensor (a BLAS
    reduction that reads each gradient once and allocates nothing for contiguous arrays), and the
    scaling is one in-place ``g *= scale`` per tensor, skipped when the norm is within ``max_norm``.
    float32 sums are accumulated by BLAS in float32; if that overflows (entries near 1e19) the norm is
    recomputed in float64, so a finite gradient always gets a finite norm. A NaN or Inf gradient makes
    every entry NaN (as ``clip_by_global_norm``) and the non-finite norm is returned. grads: float
    arrays of any shapes. Defined in notebook 04.
    """
    c = _check_threshold(max_norm, "max_norm")
    arrays = list(grads)
    for g in arrays:
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError("clip_grads_by_global_norm_ needs a list of float NumPy arrays (it works in place)")
        if not g.flags.writeable:
            raise ValueError("clip_grads_by_global_norm_ needs writeable arrays (it works in place)")
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is handled below
        for g in arrays:
            flat = g.reshape(-1)  # a view for contiguous arrays
            total += float(np.dot(flat, flat))
    norm = float(np.sqrt(total))
    if not np.isfinite(norm):
        # float32 partial sums can overflow although every entry is finite: recompute in float64
        if all(np.isfinite(g).all() for g in arrays):
            norm = _overflow_safe_norm(arrays)
        if not np.isfinite(norm):
            for g in arrays:
                g.fill(np.nan)
            return norm
    if norm > c:
        scale = c / norm  # a Python float: float32 arrays are scaled in float32, no upcast
        for g in arrays:
            g *= scale
    return norm
