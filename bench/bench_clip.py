"""The course's NumPy global-norm clipping against torch, TensorFlow and the two-pass bound.

On 10M and 50M float32 parameters spread over 200 gradients of mixed sizes (a few large matrices, many
small biases, as in a real model), every call clips (the threshold is half the current norm):

* the course's global-norm clipping: the ``gradlab.clipping`` function that notebook 04 (the notebook
  after 03 that clips, through ``gradlab.training`` and in its own loop) calls, read from its code
  cells, so that the row times exactly what the notebooks use: ``clip_grads_by_global_norm_``, in
  place;
* ``torch.nn.utils.clip_grad_norm_`` on parameters whose ``.grad`` are ``torch.from_numpy`` views of
  the very same arrays (same memory, same thread count);
* ``tf.clip_by_global_norm`` on TensorFlow tensors holding the same values (out of place: it returns
  new tensors), eager, as a learner calls it;
* the two-pass bound on the same arrays: one streaming read of every gradient (``np.dot(g, g)``)
  plus one in-place scaling pass (``np.multiply(g, s, out=g)``), with nothing else around them.

Budgets (design): no slower than torch, within 1.2x of the bound.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from bench.common import error_row, interleaved, median, row, same_threads, thread_counts, threads_label

TOTALS = (10_000_000, 50_000_000)
QUICK_TOTALS = (50_000,)
NUM_TENSORS = 200
BOUND_BUDGET = 1.2
NOTEBOOK = (Path(__file__).resolve().parent.parent / "solutions" / "04_catching_explosions"
            / "04_catching_explosions.ipynb")
DEFAULT_FUNCTION = "clip_grads_by_global_norm_"


def gradient_sizes(total, count=NUM_TENSORS, seed=0):
    """``count`` tensor sizes summing to ``total``: log-uniform from 1e2 to 1e6 (biases to big matrices)."""
    rng = np.random.default_rng(seed)
    raw = np.exp(rng.uniform(np.log(1e2), np.log(1e6), size=count))
    sizes = np.maximum(1, np.floor(raw / raw.sum() * total)).astype(np.int64)
    sizes[np.argmax(sizes)] += total - sizes.sum()
    return [int(s) for s in sizes]


def make_gradients(total, dtype=np.float32, seed=0):
    """A list of gradients (1-D and 2-D arrays of ``dtype``) with ``total`` entries in all."""
    rng = np.random.default_rng(seed)
    grads = []
    for i, n in enumerate(gradient_sizes(total, seed=seed)):
        g = rng.standard_normal(n, dtype=np.float32).astype(dtype, copy=False)
        if i % 2 and n % 8 == 0:
            g = g.reshape(8, n // 8)  # some matrices, as weight gradients are
        grads.append(g)
    return grads


def two_pass_bound(grads, max_norm):
    """The minimal global-norm clipping: one np.dot per gradient, then one in-place multiply each."""
    total = 0.0
    for g in grads:
        flat = g.reshape(-1)
        total += float(np.dot(flat, flat))
    norm = math.sqrt(total)
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            np.multiply(g, scale, out=g)
    return norm


def notebook_clip_functions(path=NOTEBOOK):
    """Names of the ``gradlab.clipping`` global-norm functions that the notebook's code cells call."""
    cells = json.loads(Path(path).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return sorted(set(re.findall(r"\bclipping\.(\w*global_norm\w*)", code)))


def _find_course_clip():
    """(name, function): the global-norm clipping notebook 04 uses, from gradlab.clipping (None if absent)."""
    from gradlab import clipping

    names = notebook_clip_functions() if NOTEBOOK.exists() else [DEFAULT_FUNCTION]
    if len(names) != 1:
        raise LookupError(f"notebook 04 should use one global-norm clipping function of gradlab.clipping, uses {names}")
    fn = getattr(clipping, names[0], None)
    return names[0], (fn if callable(fn) else None)


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def run(quick=False):
    """Rows per size: gradlab vs torch, vs the bound, TensorFlow vs gradlab (info), bound throughput."""
    try:
        found = _find_course_clip()
    except ImportError as exc:
        return [error_row("clip: gradlab.clipping", f"not importable: {exc}", skipped=True)]
    fn_name, course_clip = found
    if course_clip is None:
        return [error_row("clip: gradlab.clipping", f"gradlab.clipping has no {fn_name}", skipped=True)]
    import torch

    try:
        tf = _import_tensorflow()
    except ImportError:
        tf = None
    rows = []
    for total in (QUICK_TOTALS if quick else TOTALS):
        # 10M float32 (40 MB) sits half in a 32 MB L3 cache: call times are bimodal, so more repeats
        repeats = 3 if quick else (31 if total < 20_000_000 else 15)
        rows.extend(_run_size(total, repeats, fn_name, course_clip, torch, tf))
    return rows


def _run_size(total, repeats, fn_name, course_clip, torch, tf):
    grads = make_gradients(total)
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.empty(g.shape, dtype=torch.float32))  # never touched: no memory used
        p.grad = torch.from_numpy(g)  # the same memory as the NumPy array
        params.append(p)
    norm0 = math.sqrt(sum(float(np.dot(g.reshape(-1).astype(np.float64), g.reshape(-1))) for g in grads))
    state = {"norm": norm0}  # every call clips to half the current norm, so every call scales

    def restore_if_small():
        if state["norm"] < 1e-12 * norm0:
            for g in grads:
                np.multiply(g, np.float32(2.0**40), out=g)
            state["norm"] *= 2.0**40

    def halve(clip):
        def call():
            target = state["norm"] / 2
            out = clip(target)
            if out is None or (not isinstance(out, (tuple, list)) and np.ndim(out) == 0):
                state["norm"] = target  # in place: the arrays now have the target norm
        return call

    fns = {
        "gradlab": halve(lambda m: course_clip(grads, m)),
        "torch": halve(lambda m: torch.nn.utils.clip_grad_norm_(params, m)),
        "bound": halve(lambda m: two_pass_bound(grads, m)),
    }
    # check: each clips to the same result as the bound, on a copy. Each sums 10M-50M float32 squares in
    # its own order (BLAS sdot blocks, torch's per-tensor norms, thread chunks), so the norms, and hence
    # the scales, agree to about 1e-5 relative, not to float32's 6e-8: the tolerance is 1e-4 relative
    ref = [g.copy() for g in grads]
    two_pass_bound(ref, norm0 / 3)
    for name, clip in (("gradlab", lambda gs, m: course_clip(gs, m)),
                       ("torch", lambda gs, m: torch.nn.utils.clip_grad_norm_(
                           [_param_with_grad(torch, g) for g in gs], m))):
        trial = [g.copy() for g in grads]
        out = clip(trial, norm0 / 3)
        if isinstance(out, tuple) and len(out) == 2:  # a pure function: (clipped, norm)
            out = out[0]
        if isinstance(out, list):
            trial = out
        err = max(float(np.max(np.abs(a - b))) for a, b in zip(trial, ref, strict=True))
        assert err < 1e-4 * max(float(np.max(np.abs(r))) for r in ref), f"{name} clips differently ({err:.2e})"
        del trial
    del ref

    with same_threads() as threads:
        counts = thread_counts()
        times = interleaved(fns, repeats, setup=lambda _name: restore_if_small())
        tf_time = None
        if tf is not None:
            tf_grads = [tf.convert_to_tensor(g) for g in grads]
            tf_max = norm0 / 2
            tf.clip_by_global_norm(tf_grads, tf_max)  # warm up
            tf_times = interleaved({"gradlab": fns["gradlab"], "tf": lambda: tf.clip_by_global_norm(tf_grads, tf_max)},
                                   max(3, repeats // 2), warmup=0, setup=lambda _name: restore_if_small())
            tf_time = (median(tf_times["tf"]), median(tf_times["gradlab"]))
            del tf_grads
    t_course, t_torch, t_bound = (median(times[k]) for k in ("gradlab", "torch", "bound"))
    best = {k: min(v) for k, v in times.items()}
    size = f"{total / 1e6:g}M params in {len(grads)} tensors, float32"
    gbytes = 3 * total * 4 / 1e9  # read twice (norm, scale) and written once
    rows = [
        row(f"clip gradlab vs torch, {size}", t_course * 1e3, "ms",
            peer=f"torch clip_grad_norm_ {t_torch * 1e3:.4g} ms ({threads_label(threads)} each)",
            ratio=t_course / t_torch, budget="<= 1x torch", ok=t_course <= t_torch, function=fn_name,
            threads=counts, ratio_of_best=best["gradlab"] / best["torch"], repeats=repeats),
        row(f"clip gradlab vs two-pass bound, {size}", t_course * 1e3, "ms",
            peer=f"np.dot + np.multiply(out=) {t_bound * 1e3:.4g} ms ({gbytes / t_bound:.3g} GB/s)",
            ratio=t_course / t_bound, budget=f"<= {BOUND_BUDGET}x bound", ok=t_course <= BOUND_BUDGET * t_bound,
            ratio_of_best=best["gradlab"] / best["bound"], repeats=repeats),
    ]
    if tf_time is not None:
        rows.append(row(f"clip tf.clip_by_global_norm vs gradlab, {size}", tf_time[0] * 1e3, "ms",
                        peer=f"gradlab {tf_time[1] * 1e3:.4g} ms (tf out of place, eager)",
                        ratio=tf_time[0] / tf_time[1]))
    else:
        rows.append(error_row(f"clip tf.clip_by_global_norm, {size}", "tensorflow not importable", skipped=True))
    return rows


def _param_with_grad(torch, g):
    p = torch.nn.Parameter(torch.empty(g.shape, dtype=torch.float32))
    p.grad = torch.from_numpy(g)
    return p
