"""Unit tests for gradlab.plots: labelled figures, robust log scales, the pulse response and its explorer."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt  # headless: tests/conftest.py sets MPLBACKEND=Agg
import numpy as np
import pytest
from gradlab import plots
from gradlab.rnn import rnn_forward


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def test_loss_curve_is_labelled_and_log_scaled(ax):
    """plot_loss_curve sets a title, both axis labels, a log y-scale, the held-out curve and the baseline."""
    plots.plot_loss_curve(ax, [1.0, 0.5, 0.25], test_steps=[0, 2], test_losses=[1.1, 0.3], baseline=0.17,
                          title="T")
    assert ax.get_title() == "T" and ax.get_xlabel() and ax.get_ylabel()
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 3  # training, held-out, baseline
    assert ax.get_lines()[2].get_ydata()[0] == pytest.approx(0.17)
    lo, hi = ax.get_ylim()
    assert lo <= 0.17 and hi >= 1.1


def test_loss_curve_of_a_diverging_run_draws_without_warnings(ax):
    """Losses up to 1e307 then inf are drawn without overflow warnings; non-finite values are left out."""
    losses = np.concatenate([np.logspace(0, 307, 50), [np.inf, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.plot_loss_curve(ax, losses, baseline=0.2)
        ax.figure.canvas.draw()
    assert len(ax.get_lines()[0].get_xdata()) == 50


def test_loss_curve_rejects_bad_input(ax):
    """An empty or 2-d loss array, or test_losses without test_steps, raise ValueError."""
    with pytest.raises(ValueError):
        plots.plot_loss_curve(ax, [])
    with pytest.raises(ValueError):
        plots.plot_loss_curve(ax, np.ones((2, 2)))
    with pytest.raises(ValueError):
        plots.plot_loss_curve(ax, [1.0, 0.5], test_losses=[0.4])


def test_hidden_states_plot(ax):
    """plot_hidden_states draws min(units, H) labelled lines against 1-based time steps."""
    h = np.random.default_rng(0).uniform(-1, 1, size=(2, 7, 3))
    plots.plot_hidden_states(ax, h, units=6)
    lines = ax.get_lines()
    assert len(lines) == 3
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(1, 8))
    np.testing.assert_array_equal(lines[2].get_ydata(), h[0, :, 2])
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError):
        plots.plot_hidden_states(ax, h[0])


@pytest.mark.parametrize("gain", [0.3, 0.9, 1.0, 1.5])
def test_pulse_response_obeys_the_gain_bound(gain):
    """||h_t|| <= gain**(t-1) ||h_1|| and <= sqrt(H); the pulse dies for gain < 1 and survives for gain > 1."""
    h = plots.pulse_response(rnn_forward, gain, 60, 16)
    assert h.shape == (1, 60, 16)
    norms = np.linalg.norm(h[0], axis=1)
    assert norms[0] > 0
    assert np.all(norms <= norms[0] * gain ** np.arange(60.0) * (1 + 1e-9))
    assert np.all(norms <= np.sqrt(16) + 1e-12)
    if gain < 0.5:
        assert norms[-1] < 1e-20 * norms[0]
    if gain > 1.2:
        assert norms[-1] > 0.5 * norms[0]


def test_pulse_response_uses_an_orthogonal_recurrence():
    """The recurrent matrix is gain times an orthogonal matrix: all singular values equal the gain."""
    q = plots._orthogonal(12, 0)
    np.testing.assert_allclose(np.linalg.svd(q, compute_uv=False), np.ones(12), rtol=1e-12)
    seen = {}

    def spy(x, h0, Wx, Wh, b):
        seen["Wh"] = Wh
        return rnn_forward(x, h0, Wx, Wh, b)

    plots.pulse_response(spy, 0.7, 5, 12)
    np.testing.assert_allclose(np.linalg.svd(seen["Wh"], compute_uv=False), np.full(12, 0.7), rtol=1e-12)


def test_pulse_response_rejects_bad_arguments():
    """A non-callable rnn_forward raises TypeError; a non-positive gain or size raises ValueError."""
    with pytest.raises(TypeError):
        plots.pulse_response("rnn_forward", 0.9, 10, 4)
    for gain, T, H in ((0.0, 10, 4), (-1.0, 10, 4), (0.9, 0, 4), (0.9, 10, 0), (0.9, 2.5, 4)):
        with pytest.raises(ValueError):
            plots.pulse_response(rnn_forward, gain, T, H)


def test_hidden_state_explorer_redraws_from_its_controls():
    """The explorer draws a PNG at construction, redraws when a slider moves, and returns the states."""
    explorer = plots.HiddenStateExplorer(rnn_forward, gain=0.9, num_steps=30, num_hiddens=8)
    first = explorer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.gain.value = 1.5
    assert explorer.image.value != first
    assert "1.5" in explorer.status.value or "gain^(T-1)" in explorer.status.value
    h = explorer.redraw(gain=0.5, num_steps=40, num_hiddens=4)
    assert h.shape == (1, 40, 4)
    drawn = explorer.image.value
    np.testing.assert_array_equal(explorer.compute(0.5, 40, 4), h)  # the same states, and nothing drawn
    assert explorer.image.value == drawn and explorer.compute(1.2, 10, 6).shape == (1, 10, 6)
    lo, hi = explorer.ax_norm.get_ylim()
    assert hi == pytest.approx(3 * np.sqrt(4))
    with pytest.raises(TypeError):
        plots.HiddenStateExplorer(None)


def test_spike_alarm_explorer_flags_follow_the_detector():
    """SpikeAlarmExplorer passes window and threshold to detect_spikes; redraw returns compute's flags."""
    calls = []

    def detect_spikes(losses, window, threshold):
        calls.append((window, threshold))
        losses = np.asarray(losses, dtype=float)
        return ~np.isfinite(losses) | (losses > threshold)

    losses = {"exploding": np.array([1.0, 2.0, 50.0, np.inf, np.nan]), "healthy": np.ones(5)}
    explorer = plots.SpikeAlarmExplorer(detect_spikes, losses, window=10, threshold=10.0)
    assert calls and calls[-1] == (10, 10.0)
    flags = explorer.compute(4, 10.0)
    assert flags["exploding"].tolist() == [False, False, True, True, True] and not flags["healthy"].any()
    first = explorer.image.value
    drawn = explorer.redraw(window=5, threshold=100.0)
    assert calls[-1] == (5, 100.0)
    assert drawn["exploding"].tolist() == [False, False, False, True, True]
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n" and explorer.image.value != first


def test_spike_alarm_explorer_reaches_every_window_and_refuses_values_off_its_sliders():
    """Every window from 5 to 150 is one slider position; a start value off the sliders is an error, not moved."""
    def detect_spikes(losses, window, threshold):
        return np.zeros(len(losses), dtype=bool)

    losses = {"run": np.ones(20)}
    explorer = plots.SpikeAlarmExplorer(detect_spikes, losses, window=7, threshold=3.0)
    assert explorer.window.value == 7 and explorer.window.step == 1
    assert (explorer.window.min, explorer.window.max) == plots.SpikeAlarmExplorer.WINDOW_RANGE == (5, 150)
    assert explorer.threshold.value == pytest.approx(3.0)
    for bad in (3, 151, 7.5, True, "50"):
        with pytest.raises(ValueError, match="window"):
            plots.SpikeAlarmExplorer(detect_spikes, losses, window=bad)
    for bad in (0.5, 2000.0, "20", True):
        with pytest.raises(ValueError, match="threshold"):
            plots.SpikeAlarmExplorer(detect_spikes, losses, threshold=bad)
