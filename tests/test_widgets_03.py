"""Notebook 03's clipping widget, without a browser: controls retrain, the picture changes.

How fast it answers is measured by ``bench/bench_widgets.py`` (p95 redraw, budget 1 s), not here.
"""

import numpy as np
import pytest
from gradlab import clipping as C
from gradlab.explorers.clipping_curves import MODES, ClippingExplorer


@pytest.fixture(scope="module")
def explorer():
    return ClippingExplorer(C.clip_by_value, C.clip_by_global_norm)


def test_curves_show_divergence_and_convergence(explorer):
    """At lr=0.15 plain SGD turns NaN while norm clipping at 1 converges, in the widget's own runs."""
    clipped, plain = explorer.compute("global norm", 1.0, 0.15)
    assert plain["diverged_at"] is not None
    assert clipped["diverged_at"] is None
    assert np.mean(clipped["loss"][-20:]) < 0.5 * clipped["loss"][0]
    (only,) = explorer.compute("none", 1.0, 0.15)
    assert only["diverged_at"] == plain["diverged_at"]


def test_every_control_changes_the_picture(explorer):
    """Changing the mode, the threshold or the lr puts a different PNG in the Image widget."""
    explorer.redraw()
    seen = [explorer.image.value]
    for name, value in (("threshold", 10.0), ("lr", 0.03), ("mode", "value"), ("mode", "none")):
        explorer.controls[name].value = value
        assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
        assert explorer.image.value not in seen, f"changing {name} to {value} left the picture unchanged"
        seen.append(explorer.image.value)


def test_a_new_setting_retrains_and_a_setting_seen_before_does_not(explorer, monkeypatch):
    """Moving to an unseen setting trains afresh; returning to one already seen only draws (the cache)."""
    from gradlab import training

    calls = []
    real = training.train_many
    monkeypatch.setattr(training, "train_many", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    explorer.redraw(mode="value", threshold=0.05, lr=0.123)
    first = explorer.image.value
    assert len(calls) == 1 and len(calls[0]) == 2, "an unseen setting trains the clipped and the plain run"
    explorer.redraw(mode="global norm", threshold=2.0, lr=0.123)
    assert explorer.image.value != first and len(calls) == 2
    explorer.redraw(mode="value", threshold=0.05, lr=0.123)
    assert len(calls) == 2, "a setting seen before was trained again"
    assert explorer.image.value == first


def test_bad_inputs_are_refused(explorer):
    """Unknown modes, non-positive thresholds or learning rates, non-callables raise clear errors."""
    with pytest.raises(ValueError, match="mode"):
        explorer.compute("norm", 1.0, 0.1)
    with pytest.raises(ValueError, match="threshold"):
        explorer.compute("value", 0.0, 0.1)
    with pytest.raises(ValueError, match="lr"):
        explorer.compute("value", 1.0, -0.1)
    with pytest.raises(TypeError):
        ClippingExplorer(None, C.clip_by_global_norm)
    assert MODES == ("none", "value", "global norm")


def test_uses_the_clip_functions_it_is_given():
    """The explorer calls the functions passed in (the learner's), not gradlab's."""
    calls = []

    def spy(grads, threshold):
        calls.append(threshold)
        return C.clip_by_value(grads, threshold)

    ex = ClippingExplorer(spy, C.clip_by_global_norm, num_steps=5)
    ex.compute("value", 0.5, 0.1)
    assert calls == [0.5] * 5
