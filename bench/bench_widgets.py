"""Widget latency: the 95th percentile time of one redraw, as a slider move triggers it.

Every explorer class of ``gradlab.widgets`` (notebook 02: redraws that need no training; budget
100 ms) and ``gradlab.widgets_clipping`` (notebook 03: redraws that retrain; budget 1 s) is built with
reference implementations of the learner's functions (written here, or ``gradlab.clipping`` for
notebook 03's) and redrawn for a fixed random sequence of control values drawn from its own sliders,
dropdowns and checkboxes, without a browser. The peer is the same sequence through the explorer's
``compute`` (or uncached ``curves``) alone: its data without drawing, so the ratio says what drawing
costs. Controls are found as attributes named like ``redraw``'s parameters or in the ``controls`` dict
of the box a ``widget()`` method returns.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time

import numpy as np

from bench.common import error_row, row

MODULES = (
    # module, budget in ms, what a redraw does
    ("gradlab.widgets", 100.0, "no training"),
    ("gradlab.widgets_clipping", 1000.0, "retraining"),
)
REDRAWS, QUICK_REDRAWS = 40, 3


# --- reference implementations of the learners' functions (notebook 02) --------------------------

def scale_to_spectral_radius(W, rho):
    """W rescaled so that its largest |eigenvalue| is ``rho``."""
    W = np.asarray(W, dtype=float)
    return W * (rho / np.max(np.abs(np.linalg.eigvals(W))))


def largest_singular_value(W):
    """The spectral norm of W."""
    return float(np.linalg.norm(np.asarray(W, dtype=float), 2))


def hidden_grad_norms(dh, h, Wh, activation="tanh"):
    """||dL/dh_t|| for every t (over the batch and the hidden units), by BPTT from the upstream ``dh``."""
    from gradlab.vanishing import activation_derivative

    dh, h = np.asarray(dh, dtype=float), np.asarray(h, dtype=float)
    deriv = activation_derivative(activation, h)
    T = h.shape[1]
    norms = np.empty(T)
    g = dh[:, -1].copy()
    norms[-1] = np.linalg.norm(g)
    for t in range(T - 2, -1, -1):
        g = dh[:, t] + (g * deriv[:, t + 1]) @ Wh.T
        norms[t] = np.linalg.norm(g)
    return norms


def cliff_loss_and_grad(w, b, num_steps=50, x0=0.5, target=0.7):
    """E = (sigmoid(x_50) - 0.7)**2 for x_t = w sigmoid(x_{t-1}) + b, and dE/dw, dE/db (arrays work)."""
    w, b = np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    x = np.full(np.broadcast(w, b).shape, x0)
    sig = []
    for _ in range(num_steps):
        s = 1.0 / (1.0 + np.exp(-x))
        sig.append(s)
        x = w * s + b
    out = 1.0 / (1.0 + np.exp(-x))
    E = (out - target) ** 2
    dx = 2.0 * (out - target) * out * (1.0 - out)
    dw = np.zeros_like(x)
    db = np.zeros_like(x)
    for s in reversed(sig):
        dw += dx * s
        db += dx
        dx = dx * w * s * (1.0 - s)
    return E, dw, db


def reference_functions():
    """Reference functions by the parameter names the explorers' constructors use."""
    refs = {
        "hidden_grad_norms": hidden_grad_norms,
        "scale_to_spectral_radius": scale_to_spectral_radius,
        "largest_singular_value": largest_singular_value,
        "cliff_loss_and_grad": cliff_loss_and_grad,
        "loss_and_grad": cliff_loss_and_grad,
    }
    try:
        from gradlab import clipping
    except ImportError:
        return refs
    for name in ("clip_by_value", "clip_by_norm", "global_norm", "clip_by_global_norm"):
        if hasattr(clipping, name):
            refs.setdefault(name, getattr(clipping, name))
    return refs


# --- driving an explorer ---------------------------------------------------------------------------

def explorer_classes(module):
    """Classes defined in ``module`` that have a ``redraw`` method (the explorers)."""
    return [cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and callable(getattr(cls, "redraw", None))]


def build(cls, refs):
    """An instance of ``cls`` with every required constructor argument taken from ``refs`` by name."""
    kwargs = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            if name not in refs:
                raise LookupError(f"{cls.__name__} needs {name!r}, which the bench has no reference for")
            kwargs[name] = refs[name]
    return cls(**kwargs)


def _sampler(control, rng):
    """A function drawing a random value of an ipywidgets control, or None if it is not one."""
    options = getattr(control, "options", None)
    if options is not None and not isinstance(options, str) and len(options):
        values = [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in options]
        return lambda: values[rng.integers(len(values))]
    value = getattr(control, "value", None)
    if isinstance(value, bool):
        return lambda: bool(rng.integers(2))
    lo, hi = getattr(control, "min", None), getattr(control, "max", None)
    if lo is None or hi is None or not hasattr(control, "observe"):
        return None
    if hasattr(control, "base"):  # FloatLogSlider: min and max are exponents
        base = control.base
        return lambda: float(base ** rng.uniform(lo, hi))
    if isinstance(value, int):
        return lambda: int(rng.integers(lo, hi + 1))
    return lambda: float(rng.uniform(lo, hi))


def explorer_controls(explorer):
    """The explorer's controls by name: its attributes, or the ``controls`` of the box ``widget()`` builds.

    Explorers keep their sliders either as attributes named like ``redraw``'s parameters
    (``explorer.rho``) or in a ``controls`` dict of the box that a ``widget()`` method returns.
    """
    controls = {}
    widget = getattr(explorer, "widget", None)
    if callable(widget) and not hasattr(widget, "observe"):
        controls.update(getattr(widget(), "controls", None) or {})
    for name in inspect.signature(explorer.redraw).parameters:
        if name not in controls and hasattr(explorer, name):
            controls[name] = getattr(explorer, name)
    return controls


def control_sequence(explorer, count, seed=0):
    """``count`` dicts of keyword arguments for ``redraw``, drawn from the explorer's own controls."""
    rng = np.random.default_rng(seed)
    controls = explorer_controls(explorer)
    samplers = {}
    for name, p in inspect.signature(explorer.redraw).parameters.items():
        sampler = _sampler(controls.get(name), rng)
        if sampler is not None:
            samplers[name] = sampler
        elif p.default is inspect.Parameter.empty:
            raise LookupError(f"{type(explorer).__name__}.redraw needs {name!r}, which matches none of its controls")
    if not samplers:
        raise LookupError(f"{type(explorer).__name__}.redraw takes no argument named after one of its controls")
    return [{name: draw() for name, draw in samplers.items()} for _ in range(count)]


def compute_only(explorer):
    """The explorer's data step without drawing (``compute``, or ``curves`` uncached), or None."""
    for name in ("compute", "curves"):
        fn = getattr(explorer, name, None)
        if callable(fn):
            params = inspect.signature(fn).parameters
            if "use_cache" in params:
                return functools.partial(fn, use_cache=False), set(params) - {"use_cache"}
            return fn, set(params)
    return None, set()


def _p95(times):
    return float(np.percentile(times, 95))


def time_explorer(explorer, count):
    """(p95 redraw seconds, p95 compute-only seconds or None, median redraw seconds) over ``count`` moves."""
    moves = control_sequence(explorer, count)
    compute, compute_params = compute_only(explorer)
    redraws, computes = [], []
    for kwargs in moves:
        t0 = time.perf_counter()
        explorer.redraw(**kwargs)
        redraws.append(time.perf_counter() - t0)
        if compute is not None and set(kwargs) >= compute_params:
            t0 = time.perf_counter()
            compute(**{k: v for k, v in kwargs.items() if k in compute_params})
            computes.append(time.perf_counter() - t0)
    return _p95(redraws), (_p95(computes) if len(computes) == len(moves) else None), float(np.median(redraws))


def run(quick=False):
    """One row per explorer: p95 redraw latency against its budget, compute-only time as the peer."""
    rows = []
    count = QUICK_REDRAWS if quick else REDRAWS
    refs = reference_functions()
    for module_name, budget_ms, kind in MODULES:
        short = module_name.split(".")[-1]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                rows.append(error_row(f"widget {short}", f"{module_name} does not exist yet", skipped=True))
                continue
            raise
        classes = explorer_classes(module)
        if not classes:
            rows.append(error_row(f"widget {short}", f"{module_name} has no class with a redraw method"))
            continue
        for cls in classes:
            name = f"widget {cls.__name__} redraw p95 ({kind})"
            try:
                explorer = build(cls, refs)
                p95, compute_p95, med = time_explorer(explorer, count)
            except Exception as exc:  # one explorer failing must not hide the others
                rows.append(error_row(name, f"{type(exc).__name__}: {exc}"))
                continue
            ms = p95 * 1e3
            peer = (f"compute only, p95 {compute_p95 * 1e3:.4g} ms" if compute_p95 is not None
                    else "no compute() to compare")
            rows.append(row(name, ms, "ms", peer=f"{peer}; median redraw {med * 1e3:.4g} ms",
                            ratio=None if not compute_p95 else p95 / compute_p95,
                            budget=f"<= {budget_ms:g} ms", ok=ms <= budget_ms, redraws=count))
    return rows
