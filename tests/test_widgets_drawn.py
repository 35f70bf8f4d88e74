"""What every explorer draws, read back from its figure (issue 16 point 7, issue 17 point 1).

For each of the seven explorers, built as the bench builds them (reference versions of the learner's
functions, ``bench/bench_widgets.py``): every text lies inside the figure and is at least 9 pt, every
legend entry names the artist drawn beside it, a redraw prints nothing, and the widget has the one
shape of ``gradlab.explorers.base.Explorer``. Then one test per explorer checks the claim it illustrates.
"""

import contextlib
import importlib
import inspect
import io
import json
import math

import numpy as np
import pytest
from gradlab.explorers import MODULES
from gradlab.explorers.base import DPI, MIN_FONT_PT, Explorer, power_of_ten_label
from matplotlib.legend import Legend
from matplotlib.text import Text

from autograder.paths import ROOT
from bench.bench_widgets import build, reference_functions

NAMES = list(MODULES)


@pytest.fixture(scope="module")
def refs():
    return reference_functions()


@pytest.fixture(scope="module")
def explorers(refs):
    """One explorer of each class, built on demand and kept for the module."""
    built = {}

    def get(name):
        if name not in built:
            module_name, _notebook = MODULES[name]
            if name == "RnnClippingExplorer":
                pytest.importorskip("torch")
            built[name] = build(getattr(importlib.import_module(module_name), name), refs)
        return built[name]

    return get


def _full_draw(explorer):
    """Draw the whole figure (blitting explorers only draw what changed) and return its renderer."""
    explorer.fig.canvas.draw()
    return explorer.fig.canvas.get_renderer()


def _texts(fig):
    """Every visible, non-empty text of the figure: titles, labels, tick labels, legends, suptitle."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
            and t.get_figure() is not None]


@pytest.mark.parametrize("name", NAMES)
def test_every_text_lies_inside_the_figure_and_is_readable(explorers, name):
    """No title, label, tick label or legend entry is cut off, and none is smaller than 9 pt."""
    explorer = explorers(name)
    explorer.redraw()
    renderer = _full_draw(explorer)
    fig_box = explorer.fig.bbox
    texts = _texts(explorer.fig)
    assert texts, "the figure shows no text at all"
    tick_labels = {id(t) for ax in explorer.fig.axes for t in ax.xaxis.get_ticklabels() + ax.yaxis.get_ticklabels()}
    drawn_ticks = [tick.label1 for ax in explorer.fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for tick in axis._update_ticks() if tick.label1.get_visible() and tick.label1.get_text()]
    # tick labels of ticks outside the view are kept, unseen: only the drawn ones count
    shown = [t for t in texts if id(t) not in tick_labels] + drawn_ticks
    for text in shown:
        box = text.get_window_extent(renderer)
        assert (box.x0 >= fig_box.x0 - 0.5 and box.y0 >= fig_box.y0 - 0.5 and box.x1 <= fig_box.x1 + 0.5
                and box.y1 <= fig_box.y1 + 0.5), f"{name}: {text.get_text()!r} is cut off ({box} vs {fig_box})"
        assert text.get_fontsize() >= MIN_FONT_PT, f"{name}: {text.get_text()!r} is {text.get_fontsize()} pt"
    assert explorer.fig.dpi == DPI


@pytest.mark.parametrize("name", NAMES)
def test_legend_entries_name_the_artists_beside_them(explorers, name):
    """Each legend text equals the label of its handle, and every handle is an artist on the axes."""
    explorer = explorers(name)
    explorer.redraw()
    _full_draw(explorer)
    for legend in explorer.fig.findobj(Legend):
        ax = legend.axes
        handles = legend.legend_handles
        assert len(handles) == len(legend.get_texts())
        texts = [t.get_text() for t in legend.get_texts() if t.get_visible()]
        drawn_labels = {a.get_label() for a in [*ax.get_lines(), *ax.patches, *ax.containers]}
        for text in texts:
            assert text in drawn_labels, f"{name}: legend entry {text!r} names nothing on the axes"


@pytest.mark.parametrize("name", NAMES)
def test_one_shape_and_no_debug_output(explorers, name):
    """One base, one ``.widget`` attribute, controls named like compute's parameters, silent redraws."""
    explorer = explorers(name)
    assert isinstance(explorer, Explorer)
    assert not callable(explorer.widget) and explorer.widget.children[-1] is explorer.image
    params = set(inspect.signature(explorer.compute).parameters) - {"use_cache"}
    assert set(explorer.controls) == params
    for control in explorer.controls.values():
        assert control.style.description_width == "initial", f"{name}: {control.description!r} may be cut"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        data = explorer.redraw()
    assert out.getvalue() == "", f"{name} printed {out.getvalue()!r}"
    assert " ms" not in explorer.status.value and "redrawn" not in explorer.status.value
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TypeError, match="no setting"):
        explorer.redraw(no_such_setting=1)
    assert data is not None


def test_one_tick_formatter():
    """Plain power-of-ten labels, as every explorer's log axes show them."""
    assert [power_of_ten_label(v) for v in (1.0, 1e-3, 1e10, 2e5, 0.5)] == ["1", "1e-3", "1e10", "2e5", "5e-1"]


# --- the claim each explorer illustrates ------------------------------------------------------------

def test_01_hidden_state_explorer_draws_the_pulse_and_its_bound(explorers, refs):
    """The norm line is ||h_t|| of compute's h; the bound line is gain^(t-1) ||h_1||; at gain < 1 it decays."""
    explorer = explorers("HiddenStateExplorer")
    expected_ratio = 0.8 ** 29
    h = explorer.redraw(gain=0.8, num_steps=30, num_hiddens=16)
    norms = np.linalg.norm(h[0], axis=1)
    _, shown = explorer._norm_line.get_data()
    _, bound = explorer._bound_line.get_data()
    assert np.allclose(shown, norms) and np.allclose(bound, norms[0] * 0.8 ** np.arange(30))
    assert norms[-1] / norms[0] <= expected_ratio * (1 + 1e-9)
    assert explorer.num_hiddens.description == "num_hiddens"


def test_02_grad_norm_explorer_legend_matches_its_lines(explorers):
    """The 'measured' entry is the line of compute's norms, the 'bound' entry the line of its bound."""
    explorer = explorers("GradNormExplorer")
    data = explorer.redraw(rho=0.9, num_steps=40, activation="linear")
    legend = explorer.ax.get_legend()
    by_text = dict(zip([t.get_text() for t in legend.get_texts()], [explorer._line, explorer._bound], strict=True))
    measured = next(line for text, line in by_text.items() if text.startswith("measured"))
    bound = next(line for text, line in by_text.items() if text.startswith("bound"))
    assert np.allclose(measured.get_ydata(), data["norms"]) and np.allclose(bound.get_ydata(), data["bound"])


def test_02_cliff_explorer_opens_where_clipping_makes_the_difference(explorers, refs):
    """At its default lr (3, the text's), the plain run is thrown off the picture and the clipped one is not."""
    explorer = explorers("CliffExplorer")
    assert explorer.lr.value == 3.0 and explorer.clip.value == 0.5 and explorer.clipping.value is False
    plain = explorer.redraw()
    assert not explorer.ends_inside(plain) and "ends outside" in explorer.ax.get_title()
    clipped = explorer.redraw(clipping=True)
    assert explorer.ends_inside(clipped) and "clipped to 0.5" in explorer.ax.get_title()
    loss = refs["cliff_loss_and_grad"]
    assert float(loss(*clipped[-1])[0]) < 0.1 < float(loss(*plain[-1])[0])
    nb = json.loads((ROOT / "solutions/02_vanishing_exploding/02_vanishing_exploding.ipynb").read_text())
    text = next("".join(c["source"]) for c in nb["cells"] if c.get("id") == "sec6b")
    assert "learning rate 3" in text and "threshold 0.5" in text, "the text names the explorer's default"


def test_03_clipping_explorer_marks_what_it_trained(explorers):
    """The legend names the chosen run and the plain one; a NaN line stands where the plain run turned NaN."""
    explorer = explorers("ClippingExplorer")
    clipped, plain = explorer.redraw(mode="global norm", threshold=1.0, lr=0.15)
    assert plain["diverged_at"] is not None and clipped["diverged_at"] is None
    texts = [t.get_text() for t in explorer.ax_loss.get_legend().get_texts()]
    assert clipped["label"] in texts and plain["label"] in texts
    assert any(f"NaN at step {plain['diverged_at']}" in t for t in texts)
    nan_line = explorer._lines["nan_plain"]
    assert nan_line.get_visible() and nan_line.get_xdata()[0] == plain["diverged_at"]
    assert f"NaN at step {plain['diverged_at']}" in explorer.status.value


def test_04_spike_alarm_explorer_marks_the_detector_flags(explorers):
    """The crosses sit exactly on the steps the detector flagged (finite losses)."""
    explorer = explorers("SpikeAlarmExplorer")
    flags = explorer.redraw(window=50, threshold=20.0)
    for label, loss in explorer.losses.items():
        x, _ = explorer._alarm_lines[label].get_data()
        assert list(x) == list(np.flatnonzero(flags[label] & np.isfinite(loss)))
    assert [t.get_text() for t in explorer._legend.get_texts()] == list(explorer.losses)


def test_05_rnn_clipping_explorer_says_nothing_about_clipping_when_it_is_off(explorers):
    """With max_norm off, no "above max_norm on 0% of the steps": the status says clipping is off."""
    explorer = explorers("RnnClippingExplorer")
    run = explorer.redraw(max_norm="off")
    assert run["clipped_share"] is None
    assert "clipping off" in explorer.status.value and "%" not in explorer.status.value
    assert "max_norm" not in [t.get_text() for t in explorer.ax_norm.get_legend().get_texts()]
    clipped = explorer.redraw(max_norm=1.0)
    share = float(np.mean(clipped["grad_norm"] > 1.0))
    assert f"on {100 * share:.0f}% of the steps" in explorer.status.value
    assert "max_norm" in [t.get_text() for t in explorer.ax_norm.get_legend().get_texts()]


@pytest.mark.parametrize("mode", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_06_keras_explorer_legend_names_the_right_bars(explorers, mode):
    """'before clipping' is the grey bars of the raw norms, 'after <mode>' the blue bars of compute's."""
    explorer = explorers("KerasClippingExplorer")
    raw = np.array([np.linalg.norm(g) for g in explorer.grads])
    before, after, _cosine = explorer.redraw(mode=mode, threshold=0.05)
    legend = explorer.ax.get_legend()
    entries = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
               if t.get_visible()}
    assert set(entries) == {"before clipping", f"after {mode}"} | ({"threshold"} if mode != "clipvalue" else set())
    assert np.allclose([b.get_height() for b in explorer._before], raw) and np.allclose(before, raw)
    assert np.allclose([b.get_height() for b in explorer._after], after)
    assert entries["before clipping"].get_facecolor() == explorer._before[0].get_facecolor()
    assert entries[f"after {mode}"].get_facecolor() == explorer._after[0].get_facecolor()
    assert not math.isclose(after.sum(), raw.sum()), "threshold 0.05 clips something"
