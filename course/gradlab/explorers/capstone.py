"""Notebook 08's explorer: clipping rule, its setting and the learning rate -> a tanh RNN retrains."""

from __future__ import annotations

import math

import numpy as np

from .. import capstone
from .base import LEGEND_PT, Explorer, new_figure, require_callable, training_axes

__all__ = ["CapstoneExplorer", "RULES", "CHANCE_LOSS"]

RULES = ("none", "fixed", "AutoClip", "AGC")
"""The rule dropdown's choices: no clipping, a fixed global-norm threshold, AutoClip, AGC."""
CHANCE_LOSS = math.log(capstone.NUM_CLASSES)
"""Cross-entropy of guessing uniformly among the 4 classes (ln 4 nats): the trivial baseline."""
LOSS_RANGE = (1e-4, 1e2)
NORM_RANGE = (1e-3, 1e4)


def _on_chart(values, lo, hi):
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), np.nan, np.clip(values, lo, hi))


class CapstoneExplorer(Explorer):
    """Retrain a tanh RNN on the temporal-order task for one clipping rule and learning rate.

    autoclip_fn, agc_fn: the notebook's ``autoclip_(parameters, history, percentile)`` and
    ``agc_(parameters, clip_factor)`` (gradlab holds neither); the fixed rule is
    ``torch.nn.utils.clip_grad_norm_``. Each setting trains two networks from the same initial weights
    on the same batches (``gradlab.capstone.train_stack``: ``num_steps`` SGD steps, sequences of
    length ``T``, ``num_hiddens`` units, seed ``seed``): one without clipping, one with the chosen rule.
    Controls ``rule`` (``RULES``), ``threshold`` (fixed), ``percentile`` (AutoClip), ``clip_factor``
    (AGC) and ``lr``. ``compute(rule, threshold, percentile, clip_factor, lr)`` returns the runs'
    data without drawing (cached by setting); ``redraw(**overrides)`` draws the mini-batch loss (left,
    with the chance level ln 4) and the gradient norm before clipping (right). Defined in notebook 08.
    """

    def __init__(self, autoclip_fn, agc_fn, *, num_steps=200, T=15, num_hiddens=32, batch_size=32, seed=0,
                 num_test=300, rule="fixed", threshold=1.0, percentile=10.0, clip_factor=0.1, lr=0.5):
        require_callable(autoclip_fn=autoclip_fn, agc_fn=agc_fn)
        import ipywidgets as w

        self.autoclip_fn, self.agc_fn = autoclip_fn, agc_fn
        self.num_steps_per_run, self.T, self.num_hiddens = int(num_steps), int(T), int(num_hiddens)
        self.batch_size, self.seed, self.num_test = int(batch_size), int(seed), int(num_test)
        self._cache = {}
        self.trainings = 0
        self._build_figure()
        self._build_widget({
            "rule": w.Dropdown(options=list(RULES), value=rule, description="rule"),
            "threshold": w.FloatLogSlider(value=threshold, base=10, min=-2, max=2, step=0.25,
                                          description="threshold (fixed)", continuous_update=False,
                                          readout_format=".3g"),
            "percentile": w.FloatSlider(value=percentile, min=0.0, max=100.0, step=5.0,
                                        description="percentile (AutoClip)", continuous_update=False),
            "clip_factor": w.FloatLogSlider(value=clip_factor, base=10, min=-3, max=0, step=0.25,
                                            description="clip factor (AGC)", continuous_update=False,
                                            readout_format=".3g"),
            "lr": w.FloatLogSlider(value=lr, base=10, min=-2, max=0.5, step=0.25, description="lr",
                                   continuous_update=False, readout_format=".3g"),
        })

    # ---------------------------------------------------------------------------------- data

    def _clip_fn(self, rule, threshold, percentile, clip_factor):
        """The clipping function of ``train_stack`` for a rule (None for "none")."""
        if rule == "none":
            return None
        if rule == "fixed":
            import torch

            return lambda params: torch.nn.utils.clip_grad_norm_(params, threshold)
        if rule == "AutoClip":
            history = []
            return lambda params: self.autoclip_fn(params, history, percentile)
        if rule == "AGC":
            return lambda params: self.agc_fn(params, clip_factor)
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")

    def compute(self, rule, threshold, percentile, clip_factor, lr, *, use_cache=True):
        """Train both networks (no drawing). Returns a dict with, for ``"none"`` and ``"with_rule"``: ``loss``
        and ``grad_norm`` (num_steps,) per step (NaN after a divergence), ``clipped_share``,
        ``test_error`` and ``diverged_at`` (None or a step); plus the setting and ``chance_error`` (0.75)."""
        threshold, percentile, clip_factor, lr = float(threshold), float(percentile), float(clip_factor), float(lr)
        for name, value in (("threshold", threshold), ("clip_factor", clip_factor), ("lr", lr)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
        key = (rule, threshold, percentile, clip_factor, lr)
        if use_cache and key in self._cache:
            return self._cache[key]
        clip = self._clip_fn(rule, threshold, percentile, clip_factor)
        out = capstone.train_stack([None, clip], T=self.T, seeds=[self.seed, self.seed], lr=lr,
                                   num_steps=self.num_steps_per_run, batch_size=self.batch_size,
                                   num_hiddens=self.num_hiddens, num_test=self.num_test)
        self.trainings += 1
        result = {"rule": rule, "threshold": threshold, "percentile": percentile, "clip_factor": clip_factor,
                  "lr": lr, "chance_error": 1.0 - 1.0 / capstone.NUM_CLASSES}
        for k, name in enumerate(("none", "with_rule")):
            at = int(out["diverged_at"][k])
            result[name] = {"loss": out["loss"][:, k], "grad_norm": out["grad_norm"][:, k],
                            "clipped_share": float(out["clipped"][:, k].mean()),
                            "test_error": float(out["test_error"][k]), "diverged_at": None if at < 0 else at}
        self._cache[key] = result
        return result

    # ---------------------------------------------------------------------------------- drawing

    def _build_figure(self):
        self.fig = new_figure(8.6, 3.4)
        self.ax_loss, self.ax_norm = self.fig.subplots(1, 2)
        self._lines = {}
        for ax, key in ((self.ax_loss, "loss"), (self.ax_norm, "grad_norm")):
            (plain,) = ax.plot([], [], color="0.55", lw=1.0, label="no clipping")
            (ruled,) = ax.plot([], [], color="tab:blue", lw=1.2, label="rule")
            self._lines[key] = (plain, ruled)
        self._chance = self.ax_loss.axhline(CHANCE_LOSS, color="tab:green", ls=":", lw=1.2,
                                            label="chance (ln 4)")
        self._threshold = self.ax_norm.axhline(1.0, ls="--", color="k", lw=1.0, label="threshold")
        self._loss_title = self.ax_loss.set_title("")
        self._norm_title = self.ax_norm.set_title("gradient norm before clipping")
        for ax, ylim, ylabel in ((self.ax_loss, LOSS_RANGE, "mini-batch cross-entropy (nats, log)"),
                                 (self.ax_norm, NORM_RANGE, "\u2016g\u2016\u2082 before clipping (log)")):
            training_axes(ax, self.num_steps_per_run, ylim, ylabel, numticks=7)
        self.fig.subplots_adjust(left=0.08, right=0.975, bottom=0.14, top=0.83, wspace=0.3)

    @staticmethod
    def rule_label(data):
        """The chosen rule and its setting, in words."""
        rule = data["rule"]
        if rule == "fixed":
            return f"fixed threshold {data['threshold']:.3g}"
        if rule == "AutoClip":
            return f"AutoClip, percentile {data['percentile']:g}"
        if rule == "AGC":
            return f"AGC, clip factor {data['clip_factor']:.3g}"
        return "no clipping"

    @staticmethod
    def verdict(run, chance_error):
        if run["diverged_at"] is not None:
            return f"Inf/NaN at step {run['diverged_at']}"
        if run["test_error"] < 0.01:
            return f"solved (test error {100 * run['test_error']:.1f}%)"
        if run["test_error"] < chance_error - 0.1:
            return f"partly learned (test error {100 * run['test_error']:.0f}%)"
        return f"not learned (test error {100 * run['test_error']:.0f}%, chance 75%)"

    def draw(self, data, settings):
        label = self.rule_label(data)
        steps = np.arange(self.num_steps_per_run)
        for key, (lo, hi) in (("loss", LOSS_RANGE), ("grad_norm", NORM_RANGE)):
            plain, ruled = self._lines[key]
            plain.set_data(steps, _on_chart(data["none"][key], lo, hi))
            ruled.set_data(steps, _on_chart(data["with_rule"][key], lo, hi))
            ruled.set_label(label)
        ruled_visible = data["rule"] != "none"
        for _plain, ruled in self._lines.values():
            ruled.set_visible(ruled_visible)
        self._threshold.set_visible(data["rule"] == "fixed")
        self._threshold.set_ydata([data["threshold"]] * 2)
        loss_handles = [self._lines["loss"][0]] + ([self._lines["loss"][1]] if ruled_visible else []) + [self._chance]
        norm_handles = [self._lines["grad_norm"][0]] + ([self._lines["grad_norm"][1]] if ruled_visible else [])
        if data["rule"] == "fixed":
            norm_handles.append(self._threshold)
        self.ax_loss.legend(handles=loss_handles, loc="lower left", fontsize=LEGEND_PT)
        self.ax_norm.legend(handles=norm_handles, loc="upper right", fontsize=LEGEND_PT)
        plain_v = self.verdict(data["none"], data["chance_error"])
        self._loss_title.set_text(f"T = {self.T}, lr = {data['lr']:.3g}: loss\nno clipping: {plain_v}")
        if not ruled_visible:
            self._norm_title.set_text("no clipping: gradient norm\n(choose a rule to compare)")
            return f"no clipping, lr = {data['lr']:.3g}: {plain_v}"
        rule_v = self.verdict(data["with_rule"], data["chance_error"])
        self._norm_title.set_text(f"{label}: {rule_v}\nclipped on {100 * data['with_rule']['clipped_share']:.0f}% "
                                  "of the steps")
        return (f"{label}, lr = {data['lr']:.3g}: {rule_v}, clipped on "
                f"{100 * data['with_rule']['clipped_share']:.0f}% of the steps; no clipping: {plain_v}")
