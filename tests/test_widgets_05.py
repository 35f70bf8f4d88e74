"""Notebook 05's widget without a browser: controls retrain the vanilla RNN, the picture changes.

How fast it answers is measured by ``bench/bench_widgets.py`` (p95 redraw, budget 1 s), not here.
"""

import math

import pytest
import torch
from gradlab.explorers.rnn_clipping import MAX_NORMS, RnnClippingExplorer

PNG = b"\x89PNG\r\n\x1a\n"


def train_step(model, optimizer, loss_fn, X, y, max_norm):
    """A reference training step (notebook 05's exercise 3), written here: gradlab holds no answers."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=2)
    optimizer.step()
    return loss.item(), grad_norm.item()


@pytest.fixture(scope="module")
def explorer():
    return RnnClippingExplorer(train_step)


def test_redraw_returns_the_data_it_plots(explorer):
    """redraw() with the controls' values draws a PNG and returns the run: one loss and norm per step."""
    run = explorer.redraw()
    assert explorer.image.value[:8] == PNG
    assert (run["lr"], run["max_norm"], run["spectral_radius"]) == (
        explorer.lr.value, explorer.max_norm.value, explorer.spectral_radius.value)
    assert len(run["loss"]) == len(run["grad_norm"]) == explorer.num_steps_per_run
    x, y = explorer._loss.get_data()
    assert len(x) == len(run["loss"])
    assert 0.0 <= run["clipped_share"] <= 1.0
    assert set(explorer.compute(0.1, 1.0, 1.5)) >= {"loss", "grad_norm", "test_mse", "diverged_at", "clipped_share"}


def test_diverging_and_clipped_settings_behave_as_the_notebook_says(explorer):
    """lr = 0.1, rho = 1.5: without clipping the loss goes Inf/NaN; max_norm = 1 stays finite and learns;
    one lr notch lower (0.056) the unclipped run does not diverge."""
    plain = explorer.redraw(lr=0.1, max_norm="off", spectral_radius=1.5)
    assert plain["diverged_at"] is not None and not math.isfinite(plain["loss"][-1])
    assert len(plain["loss"]) == plain["diverged_at"] + 1 < explorer.num_steps_per_run
    assert explorer._nan_lines[0].get_visible() and not explorer._threshold.get_visible()
    assert "Inf/NaN" in explorer.status.value

    clipped = explorer.redraw(lr=0.1, max_norm=1.0, spectral_radius=1.5)
    assert clipped["diverged_at"] is None and all(math.isfinite(v) for v in clipped["loss"])
    assert clipped["test_mse"] < 0.5, "clipping at 1 learns to recall the first input (the mean scores 1)"
    assert clipped["clipped_share"] > 0.9, "at this setting nearly every step is clipped"
    assert explorer._threshold.get_visible() and not explorer._nan_lines[0].get_visible()

    assert explorer.compute(10 ** -1.25, math.inf, 1.5)["diverged_at"] is None


def test_every_control_changes_the_picture(explorer):
    """Moving lr, max_norm or the spectral radius (the widget's own controls) puts a new PNG in the Image."""
    explorer.lr.value, explorer.max_norm.value, explorer.spectral_radius.value = 0.1, 1.0, 1.5
    seen = [explorer.image.value]
    for control, value in ((explorer.lr, 10 ** -1.5), (explorer.max_norm, 16.0), (explorer.spectral_radius, 0.8)):
        control.value = value
        assert explorer.image.value[:8] == PNG
        assert explorer.image.value not in seen, f"setting {control.description} to {value} left the picture unchanged"
        seen.append(explorer.image.value)


def test_a_new_setting_retrains_and_a_setting_seen_before_does_not():
    """An unseen setting calls train_step afresh; one seen before is drawn from the cache; use_cache=False retrains."""
    calls = []

    def counting_step(*args):
        calls.append(args[-1])
        return train_step(*args)

    ex = RnnClippingExplorer(counting_step, num_steps=10)
    assert len(calls) == 10 and ex.trainings == 1, "the first frame trains the default setting"
    first = ex.image.value
    ex.redraw(lr=0.0316, max_norm=4.0, spectral_radius=1.2)
    assert len(calls) == 20 and set(calls[10:]) == {4.0} and ex.trainings == 2
    assert ex.image.value != first
    ex.redraw(lr=0.1, max_norm=1.0, spectral_radius=1.5)
    assert len(calls) == 20, "a setting seen before was trained again"
    assert ex.image.value == first
    ex.compute(0.1, 1.0, 1.5, use_cache=False)
    assert len(calls) == 30


def test_controls_and_bad_inputs():
    """Controls named like redraw's parameters; retraining sliders wait for release; bad values are refused."""
    ex = RnnClippingExplorer(train_step, num_steps=3)
    assert ex.lr.continuous_update is False and ex.spectral_radius.continuous_update is False
    assert [value for _, value in ex.max_norm.options] == list(MAX_NORMS) and math.inf in MAX_NORMS
    assert ex.widget.children[-1] is ex.image
    bad = (({"lr": -0.1}, "lr"), ({"max_norm": 0.0}, "max_norm"), ({"spectral_radius": 0}, "spectral_radius"))
    for kwargs, word in bad:
        with pytest.raises(ValueError, match=word):
            ex.compute(**{"lr": 0.1, "max_norm": 1.0, "spectral_radius": 1.5, **kwargs})
    with pytest.raises(TypeError):
        RnnClippingExplorer(None)
