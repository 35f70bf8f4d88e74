"""Notebook 07's explorer without a browser: what it draws, and the claims it illustrates.

How fast it answers is measured by ``bench/bench_widgets.py`` (p95 redraw, budget 100 ms), not here. The
shared checks (texts inside the figure, legend entries naming drawn artists, one shape, silence) run for it
in tests/test_widgets_drawn.py, since it is listed in ``gradlab.explorers.MODULES``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradlab import data, gates  # noqa: E402
from gradlab.explorers.base import MIN_FONT_PT  # noqa: E402
from gradlab.explorers.gates import TRUNCATIONS, GatesExplorer  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explorer():
    return GatesExplorer()


def _legend_texts(explorer):
    return [t.get_text() for t in explorer.ax.get_legend().get_texts()]


def test_the_lines_are_the_norms_compute_returns(explorer):
    """The h line is compute's ||dL/dh_t||, the c line the LSTM's ||dL/dc_t||, both against t = 1..T."""
    data_ = explorer.redraw(model="LSTM", num_steps=60, forget_bias=1.0, truncation="off")
    x, y = explorer._h_line.get_data()
    assert list(x) == list(range(1, 61)) and np.allclose(y, data_["h"])
    _, yc = explorer._c_line.get_data()
    assert explorer._c_line.get_visible() and np.allclose(yc, data_["c"])
    assert _legend_texts(explorer) == ["||dL/dh_t||", "||dL/dc_t|| (LSTM)"]
    assert explorer.image.value[:8] == PNG


@pytest.mark.parametrize("model, forget_bias, T, k", [("GRU", 1.0, 40, "off"), ("RNN", 1.0, 150, 20),
                                                     ("LSTM", 0.0, 57, "off"), ("LSTM", 3.0, 150, 10)])
def test_the_norms_are_torch_autograd_of_the_same_model(explorer, model, forget_bias, T, k):
    """compute's norms (from cached step Jacobians) equal gradlab.gates.per_step_grad_norms of a model built
    the same way, unrolled and truncated by h.detach() every k steps, to 1e-12."""
    got = explorer.compute(model, T, forget_bias, k)
    X, y = data.adding_problem(4, 150, seed=0)
    layer = gates.make_layer(model, 2, 16, seed=0, forget_bias=forget_bias)
    want = gates.per_step_grad_norms(layer, X[:, :T], y, readout=explorer._readout,
                                     truncate=None if k == "off" else k)
    assert np.allclose(got["h"], want["h"], rtol=1e-12, atol=0)
    if model == "LSTM":
        assert np.allclose(got["c"], want["c"], rtol=1e-12, atol=0)
    else:
        assert got["c"] is None


def test_a_bias_between_the_slider_steps_is_rounded_to_one(explorer):
    """The slider moves in steps of 0.5; a value between steps is drawn as the nearest step."""
    assert np.array_equal(explorer.compute("LSTM", 80, 1.2, "off")["h"], explorer.compute("LSTM", 80, 1.0, "off")["h"])
    explorer.redraw(model="LSTM", forget_bias=1.3)
    assert "forget bias 1.5" in explorer.ax.get_title()


def test_the_title_names_the_setting_inside_the_figure(explorer):
    """The title says model, bias (LSTM only), T and truncation, and lies inside the figure, at >= 9 pt."""
    explorer.redraw(model="LSTM", num_steps=150, forget_bias=3.0, truncation=50)
    title = explorer.ax.get_title()
    assert "LSTM, forget bias 3.0, T = 150, truncated every 50 steps" in title
    explorer.fig.canvas.draw()
    box = explorer.ax.title.get_window_extent(explorer.fig.canvas.get_renderer())
    fig_box = explorer.fig.bbox
    assert box.x0 >= fig_box.x0 and box.x1 <= fig_box.x1 and box.y1 <= fig_box.y1
    assert explorer.ax.title.get_fontsize() >= MIN_FONT_PT
    explorer.redraw(model="RNN", num_steps=100, truncation="off")
    assert "forget bias" not in explorer.ax.get_title() and "full BPTT" in explorer.ax.get_title()
    assert not explorer._c_line.get_visible() and "||dL/dc_t|| (LSTM)" not in _legend_texts(explorer)


def test_forget_bias_keeps_the_lstm_gradient_and_the_rnn_loses_it(explorer):
    """The claim of sections 2-3: at T = 150 each unit of forget bias buys orders of magnitude, bias 3 keeps
    the gradient within a few orders, and the tanh RNN loses more than 20 orders."""
    reach = {fb: explorer.compute("LSTM", 150, fb, "off")["reach"] for fb in (0.0, 1.0, 3.0)}
    rnn = explorer.compute("RNN", 150, 1.0, "off")["reach"]
    assert reach[0.0] < 1e-6 * reach[1.0] and reach[1.0] < 1e-3 * reach[3.0]
    assert reach[3.0] > 1e-4 and rnn < 1e-20
    explorer.redraw(model="LSTM", num_steps=150, forget_bias=3.0, truncation="off")
    assert f"{reach[3.0]:.3g}" in explorer.ax.get_title() and f"{reach[3.0]:.3g}" in explorer.status.value


@pytest.mark.parametrize("k", [k for k in TRUNCATIONS if k != "off"])
def test_truncation_is_a_wall_drawn_where_it_cuts(explorer, k):
    """The claim of section 6: with truncation k the gradient is exactly 0 up to the last cut and, after it,
    exactly full BPTT's; the dotted line stands at the cut, the legend names it, the status says so."""
    T = 100
    data_ = explorer.redraw(model="LSTM", num_steps=T, forget_bias=3.0, truncation=k)
    cut = ((T - 1) // k) * k
    assert data_["cut"] == cut
    assert np.all(data_["h"][:cut] == 0) and np.all(data_["h"][cut:] > 0)
    assert explorer._cut_line.get_visible() and explorer._cut_line.get_xdata()[0] == cut + 0.5
    assert "truncation: last cut" in _legend_texts(explorer)
    _, shown = explorer._h_line.get_data()
    assert np.all(np.isnan(shown[:cut])), "a zero gradient is not drawn on the log axis"
    assert "exactly 0" in explorer.status.value
    full = explorer.compute("LSTM", T, 3.0, "off")["h"]
    assert np.allclose(data_["h"][cut:], full[cut:], rtol=1e-12), "after the last cut the gradient is untouched"
    assert np.all(full[:cut] > 0), "what the wall stops was there: full BPTT reaches every step"


def test_every_control_changes_the_picture(explorer):
    """Moving model, T, forget bias or truncation (the widget's own controls) puts a new PNG in the Image."""
    explorer.model.value, explorer.num_steps.value = "LSTM", 100
    explorer.forget_bias.value, explorer.truncation.value = 1.0, "off"
    seen = [explorer.image.value]
    for control, value in ((explorer.model, "GRU"), (explorer.num_steps, 50), (explorer.model, "LSTM"),
                           (explorer.forget_bias, 2.0), (explorer.truncation, 10)):
        control.value = value
        assert explorer.image.value[:8] == PNG
        assert explorer.image.value not in seen, f"setting {control.description} to {value} left the picture unchanged"
        seen.append(explorer.image.value)
