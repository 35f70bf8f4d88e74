"""Notebook 03's clipping widget, without a browser: controls retrain, the picture changes.

How fast it answers is measured by ``bench/bench_widgets.py`` (p95 redraw, budget 1 s), not here.
"""

import numpy as np
import pytest
from gradlab import clipping as C
from gradlab.widgets_clipping import MODES, ClippingExplorer


@pytest.fixture(scope="module")
def explorer():
    return ClippingExplorer(C.clip_by_value, C.clip_by_global_norm)


def test_curves_show_divergence_and_convergence(explorer):
    """At lr=0.15 plain SGD turns NaN while norm clipping at 1 converges, in the widget's own runs."""
    clipped, plain = explorer.curves("global norm", 1.0, 0.15)
    assert plain["diverged_at"] is not None
    assert clipped["diverged_at"] is None
    assert np.mean(clipped["loss"][-20:]) < 0.5 * clipped["loss"][0]
    (only,) = explorer.curves("none", 1.0, 0.15)
    assert only["diverged_at"] == plain["diverged_at"]


def test_every_control_changes_the_picture(explorer):
    """Changing the mode, the threshold or the lr puts a different PNG in the Image widget."""
    box = explorer.widget(mode="global norm", threshold=1.0, lr=0.15)
    seen = [box.image.value]
    for name, value in (("threshold", 10.0), ("lr", 0.03), ("mode", "value"), ("mode", "none")):
        box.controls[name].value = value
        assert box.image.value[:8] == b"\x89PNG\r\n\x1a\n"
        assert box.image.value not in seen, f"changing {name} to {value} left the picture unchanged"
        seen.append(box.image.value)


def test_a_new_setting_retrains_and_a_setting_seen_before_does_not(explorer, monkeypatch):
    """Moving to an unseen setting trains afresh; returning to one already seen only draws (the cache)."""
    from gradlab import training

    calls = []
    real = training.train_many
    monkeypatch.setattr(training, "train_many", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = explorer.png("value", 0.05, 0.123)
    assert len(calls) == 1 and len(calls[0]) == 2, "an unseen setting trains the clipped and the plain run"
    assert explorer.png("global norm", 2.0, 0.123) != first and len(calls) == 2
    again = explorer.png("value", 0.05, 0.123)
    assert len(calls) == 2, "a setting seen before was trained again"
    assert again[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs_are_refused(explorer):
    """Unknown modes, non-positive thresholds or learning rates, non-callables raise clear errors."""
    with pytest.raises(ValueError, match="mode"):
        explorer.curves("norm", 1.0, 0.1)
    with pytest.raises(ValueError, match="threshold"):
        explorer.curves("value", 0.0, 0.1)
    with pytest.raises(ValueError, match="lr"):
        explorer.curves("value", 1.0, -0.1)
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
    ex.curves("value", 0.5, 0.1)
    assert calls == [0.5] * 5
