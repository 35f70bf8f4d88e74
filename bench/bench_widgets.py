"""Widget latency: the 95th percentile time of one redraw, as a slider move triggers it.

Every explorer of the course, one per notebook, is built with reference implementations of the
learner's functions it takes (written here, never imported from solutions/) and redrawn for a fixed
random sequence of control values drawn from its own sliders, dropdowns and checkboxes, without a
browser:

* notebook 01: ``gradlab.explorers.hidden_state.HiddenStateExplorer`` (the learner's ``rnn_forward``;
  no training, 100 ms);
* notebook 02: ``GradNormExplorer`` and ``CliffExplorer`` (``explorers.grad_norm``, ``explorers.cliff``;
  no training, 100 ms);
* notebook 03: ``explorers.clipping_curves.ClippingExplorer`` (retrains, 1 s);
* notebook 04: ``explorers.spike_alarm.SpikeAlarmExplorer`` (the learner's ``detect_spikes`` on the logs
  of a run that explodes and a clipped one, trained here as the notebook trains them; no training, 100 ms);
* notebook 05: ``explorers.rnn_clipping.RnnClippingExplorer`` (the learner's ``train_step``; retrains,
  1 s), a ``skip`` row where that module cannot be imported (no torch);
* notebook 06: ``explorers.keras_clipping.KerasClippingExplorer``, the explorer behind
  ``tf_models.clipping_explorer`` (the learner's NumPy ``clipnorm`` and ``global_clipnorm``; no
  training, 100 ms);
* notebook 07: ``explorers.gates.GatesExplorer`` (torch's RNN, LSTM and GRU at initialisation from
  ``gradlab.gates``, per-step gradient norms by autograd; no learner function, no training, 100 ms);
* notebook 08: ``explorers.capstone.CapstoneExplorer`` (the learner's ``autoclip_`` and ``agc_``;
  retrains two tanh RNNs, 1 s).

The peer is the same sequence through the explorer's ``compute`` alone (uncached where it caches): its
data without drawing, so the ratio says what drawing costs. Controls are the explorer's ``controls``
(every explorer's base, ``gradlab.explorers.base.Explorer``, names them like ``compute``'s
parameters). Each row says which notebook the explorer belongs to (``notebook``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time

import numpy as np

from bench.common import error_row, row

MODULES = (
    # module, budget in ms, what a redraw does, notebook (or {class name: notebook})
    ("gradlab.explorers.hidden_state", 100.0, "no training", "01"),
    ("gradlab.explorers.grad_norm", 100.0, "no training", "02"),
    ("gradlab.explorers.cliff", 100.0, "no training", "02"),
    ("gradlab.explorers.clipping_curves", 1000.0, "retraining", "03"),
    ("gradlab.explorers.spike_alarm", 100.0, "no training", "04"),
    ("gradlab.explorers.rnn_clipping", 1000.0, "retraining", "05"),
    ("gradlab.explorers.keras_clipping", 100.0, "no training", "06"),
    ("gradlab.explorers.gates", 100.0, "no training", "07"),
    ("gradlab.explorers.capstone", 1000.0, "retraining", "08"),
)
NOTEBOOKS = ("01", "02", "03", "04", "05", "06", "07", "08")
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


# --- reference implementations of the learners' functions (notebooks 01, 04, 05, 06) -------------

def rnn_forward(x, h0, Wx, Wh, b):
    """Notebook 01: h_t = tanh(x_t Wx + h_{t-1} Wh + b) over (N, T, D) inputs; returns (h (N, T, H), cache)."""
    x = np.asarray(x, dtype=float)
    N, T, _ = x.shape
    h = np.empty((N, T, Wh.shape[0]))
    prev = np.asarray(h0, dtype=float)
    for t in range(T):
        prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
        h[:, t] = prev
    return h, (x, h0, Wx, Wh, b, h)


def detect_spikes(losses, window=50, threshold=20.0, min_history=5):
    """Notebook 04: flags[i] when losses[i] is non-finite or above median + threshold * MAD of the
    finite losses of the previous ``window`` steps (at least ``min_history`` of them)."""
    losses = np.asarray(losses, dtype=float)
    flags = ~np.isfinite(losses)
    for i in np.flatnonzero(~flags):
        w = losses[max(0, i - window):i]
        w = w[np.isfinite(w)]
        if w.size >= min_history:
            med = np.median(w)
            flags[i] = losses[i] > med + threshold * np.median(np.abs(w - med))
    return flags


def notebook04_losses():
    """Notebook 04's widget data: the losses of plain SGD on seed 1 (explodes) and of seed 0 clipped at 1.

    Trained as notebook 04's section 1 trains them (adding problem, T = 20, 32 units, spectral radius
    1.5, lr = 0.1, 300 steps), with ``gradlab.clipping.clip_grads_by_global_norm_``.
    """
    from gradlab import clipping, data, rnn_tools, training

    X, y = data.adding_problem(512, 20, seed=1)
    runs = {}
    for seed, label, setting in ((1, "plain SGD (seed 1)", training.Setting(0.1)),
                                 (0, "clipped at 1 (seed 0)",
                                  training.Setting(0.1, clipping.clip_grads_by_global_norm_, 1.0))):
        params = rnn_tools.init_rnn(2, 32, 1, seed=seed, spectral_radius=1.5)
        (hist,) = training.train_many([setting], params, X, y, num_steps=300, seed=seed)
        runs[label] = hist["loss"]
    return runs


def train_step(model, optimizer, loss_fn, X, y, max_norm):
    """Notebook 05: one SGD step clipped by global norm; returns (loss, norm before clipping) floats."""
    import torch

    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    with torch.no_grad():
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale)
    optimizer.step()
    return loss.item(), norm.item()


def autoclip(parameters, history, percentile=10.0):
    """Notebook 08: AutoClip on torch parameters, in place; returns the threshold (a percentile of history)."""
    import torch

    grads = [p.grad for p in parameters if p.grad is not None]
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    history.append(norm)
    threshold = float(np.percentile(history, percentile))
    with torch.no_grad():
        for g in grads:
            g.mul_(min(1.0, threshold / (norm + 1e-6)))
    return threshold


def agc(parameters, clip_factor=0.01, eps=1e-3):
    """Notebook 08: adaptive gradient clipping, unit-wise (first dimension), in place."""
    import torch

    with torch.no_grad():
        for p in parameters:
            if p.grad is None:
                continue
            dims = tuple(range(1, p.ndim)) or None
            w = torch.linalg.vector_norm(p, dim=dims, keepdim=True) if dims else torch.linalg.vector_norm(p)
            g = torch.linalg.vector_norm(p.grad, dim=dims, keepdim=True) if dims else torch.linalg.vector_norm(p.grad)
            bound = clip_factor * torch.clamp(w, min=eps)
            p.grad.mul_(torch.where(g > bound, bound / torch.clamp(g, min=1e-12), torch.ones_like(g)))


def keras_clipnorm(grads, clipnorm):
    """Notebook 06: what Keras's ``clipnorm`` applies: each array scaled to a norm of at most clipnorm."""
    out = []
    for g in grads:
        g = np.asarray(g, dtype=float)
        norm = float(np.sqrt(np.sum(g * g)))
        out.append(g * (clipnorm / max(norm, clipnorm)))
    return out


def keras_global_clipnorm(grads, global_clipnorm):
    """Notebook 06: what Keras's ``global_clipnorm`` applies: one factor min(1, c / global norm) for all."""
    grads = [np.asarray(g, dtype=float) for g in grads]
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
    scale = global_clipnorm / max(norm, global_clipnorm)
    return [g * scale for g in grads]


def digits_gradients(seed=0):
    """Gradients shaped like notebook 06's digits classifier (Dense 64->128, Dense 128->10) and their names,
    scaled like that network's (kernels larger than biases), so the per-variable norms differ."""
    rng = np.random.default_rng(seed)
    shapes = {"layer 1 kernel": (64, 128), "layer 1 bias": (128,), "layer 2 kernel": (128, 10),
              "layer 2 bias": (10,)}
    scales = (0.02, 0.01, 0.2, 0.1)
    return ([s * rng.standard_normal(shape) for s, shape in zip(scales, shapes.values(), strict=True)],
            list(shapes))


class References(dict):
    """Reference arguments by the parameter names the explorers' constructors use; data made on demand."""

    def __init__(self, values, factories):
        super().__init__(values)
        self._factories = factories

    def __contains__(self, name):
        return super().__contains__(name) or name in self._factories

    def __getitem__(self, name):
        if not super().__contains__(name) and name in self._factories:
            self[name] = self._factories[name]()
        return super().__getitem__(name)


def reference_functions():
    """Reference functions (and data) by the parameter names the explorers' constructors use."""
    values = {
        "hidden_grad_norms": hidden_grad_norms,
        "scale_to_spectral_radius": scale_to_spectral_radius,
        "largest_singular_value": largest_singular_value,
        "cliff_loss_and_grad": cliff_loss_and_grad,
        "loss_and_grad": cliff_loss_and_grad,
        "rnn_forward": rnn_forward,
        "detect_spikes": detect_spikes,
        "train_step": train_step,
        "clipnorm_fn": keras_clipnorm,
        "global_clipnorm_fn": keras_global_clipnorm,
        "autoclip_fn": autoclip,
        "agc_fn": agc,
    }
    factories = {
        "losses": notebook04_losses,
        "grads": lambda: digits_gradients()[0],
        "names": lambda: digits_gradients()[1],
    }
    try:
        from gradlab import clipping
    except ImportError:
        return References(values, factories)
    for name in ("clip_by_value", "clip_by_norm", "global_norm", "clip_by_global_norm"):
        if hasattr(clipping, name):
            values.setdefault(name, getattr(clipping, name))
    return References(values, factories)


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
    """The explorer's controls by setting name (``Explorer.controls``)."""
    controls = getattr(explorer, "controls", None)
    if not controls:
        raise LookupError(f"{type(explorer).__name__} has no controls")
    return dict(controls)


def control_sequence(explorer, count, seed=0):
    """``count`` dicts of keyword arguments for ``redraw``, drawn from the explorer's own controls."""
    rng = np.random.default_rng(seed)
    samplers = {}
    for name, control in explorer_controls(explorer).items():
        sampler = _sampler(control, rng)
        if sampler is None:
            raise LookupError(f"{type(explorer).__name__}'s control {name!r} is no slider, dropdown or checkbox")
        samplers[name] = sampler
    return [{name: draw() for name, draw in samplers.items()} for _ in range(count)]


def compute_only(explorer):
    """The explorer's data step without drawing (``compute``, uncached where it caches), or None."""
    fn = getattr(explorer, "compute", None)
    if not callable(fn):
        return None, set()
    params = inspect.signature(fn).parameters
    if "use_cache" in params:
        return functools.partial(fn, use_cache=False), set(params) - {"use_cache"}
    return fn, set(params)


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


def _notebook_of(notebooks, cls):
    return notebooks.get(cls.__name__) if isinstance(notebooks, dict) else notebooks


def run(quick=False):
    """One row per explorer: p95 redraw latency against its budget, compute-only time as the peer."""
    rows = []
    count = QUICK_REDRAWS if quick else REDRAWS
    refs = reference_functions()
    for module_name, budget_ms, kind, notebooks in MODULES:
        short = module_name.split(".")[-1]
        wanted = notebooks if isinstance(notebooks, str) else ", ".join(sorted(set(notebooks.values())))
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name in (module_name, "torch"):  # notebook 05 without torch: a skip row
                rows.append(error_row(f"widget {short}", f"{module_name} does not exist yet", skipped=True)
                            | {"notebook": wanted})
                continue
            raise
        classes = explorer_classes(module)
        if isinstance(notebooks, dict):
            missing = sorted(set(notebooks) - {cls.__name__ for cls in classes})
            for name in missing:
                rows.append(error_row(f"widget {name}", f"{module_name} has no class {name} with a redraw method")
                            | {"notebook": notebooks[name]})
            classes = [cls for cls in classes if cls.__name__ in notebooks]
        if not classes:
            if not isinstance(notebooks, dict):
                rows.append(error_row(f"widget {short}", f"{module_name} has no class with a redraw method")
                            | {"notebook": wanted})
            continue
        for cls in classes:
            name = f"widget {cls.__name__} redraw p95 ({kind})"
            notebook = _notebook_of(notebooks, cls)
            try:
                explorer = build(cls, refs)
                p95, compute_p95, med = time_explorer(explorer, count)
            except Exception as exc:  # one explorer failing must not hide the others
                rows.append(error_row(name, f"{type(exc).__name__}: {exc}") | {"notebook": notebook})
                continue
            ms = p95 * 1e3
            peer = (f"compute only, p95 {compute_p95 * 1e3:.4g} ms" if compute_p95 is not None
                    else "no compute() to compare")
            rows.append(row(name, ms, "ms", peer=f"{peer}; median redraw {med * 1e3:.4g} ms",
                            ratio=None if not compute_p95 else p95 / compute_p95,
                            budget=f"<= {budget_ms:g} ms", ok=ms <= budget_ms, redraws=count,
                            notebook=notebook, module_name=module_name))
    return rows
