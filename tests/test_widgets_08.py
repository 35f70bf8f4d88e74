"""Notebook 08's widget without a browser: what it draws (legend, titles inside the figure) and the claim
it illustrates (at lr 0.5 clipping solves the temporal-order task where plain SGD stays at chance).

How fast it answers is measured by ``bench/bench_widgets.py`` (p95 redraw, budget 1 s), not here.
"""

import pytest

torch = pytest.importorskip("torch")

from gradlab.explorers.base import MIN_FONT_PT  # noqa: E402
from gradlab.explorers.capstone import CHANCE_LOSS, RULES, CapstoneExplorer  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bench.bench_widgets import agc, autoclip  # noqa: E402  (reference versions: gradlab holds no answers)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explorer():
    return CapstoneExplorer(autoclip, agc)


def _legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_the_default_frame_shows_both_runs_with_a_legend_and_titles_inside_the_figure(explorer):
    """The first frame: PNG, both curves named in the legend, chance level drawn, every text inside and >= 9 pt."""
    data = explorer.redraw(rule="fixed", threshold=1.0, lr=0.5)
    assert explorer.image.value[:8] == PNG
    assert _legend_texts(explorer.ax_loss) == ["no clipping", "fixed threshold 1", "chance (ln 4)"]
    assert _legend_texts(explorer.ax_norm) == ["no clipping", "fixed threshold 1", "threshold"]
    assert explorer._chance.get_ydata()[0] == pytest.approx(CHANCE_LOSS)
    assert explorer._threshold.get_visible() and explorer._threshold.get_ydata()[0] == 1.0
    x, y = explorer._lines["loss"][1].get_data()
    assert len(x) == explorer.num_steps_per_run == len(data["with_rule"]["loss"])
    explorer.fig.canvas.draw()
    renderer = explorer.fig.canvas.get_renderer()
    fig_box = explorer.fig.bbox
    tick_labels = {id(t) for ax in explorer.fig.axes for t in ax.xaxis.get_ticklabels() + ax.yaxis.get_ticklabels()}
    drawn_ticks = [tick.label1 for ax in explorer.fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for tick in axis._update_ticks() if tick.label1.get_visible() and tick.label1.get_text()]
    texts = [t for t in explorer.fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for text in [t for t in texts if id(t) not in tick_labels] + drawn_ticks:  # ticks outside the view: unseen
        box = text.get_window_extent(renderer)
        assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1, f"{text.get_text()!r} sticks out sideways"
        assert box.y0 >= fig_box.y0 - 1 and box.y1 <= fig_box.y1 + 1, f"{text.get_text()!r} sticks out vertically"
        assert text.get_fontsize() >= MIN_FONT_PT, f"{text.get_text()!r} is smaller than {MIN_FONT_PT} pt"
    assert "solved" in explorer._norm_title.get_text() and "not learned" in explorer._loss_title.get_text()


def test_clipping_solves_the_task_where_plain_sgd_stays_at_chance(explorer):
    """The claim: at lr 0.5, T = 15, clipping at 1 (and AutoClip at the 10th percentile, AGC at 0.1) reach
    < 1% test error while the unclipped twin stays near the 75% of guessing; at lr 0.05 plain SGD learns too."""
    fixed = explorer.redraw(rule="fixed", threshold=1.0, lr=0.5)
    assert fixed["with_rule"]["test_error"] < 0.01
    assert fixed["none"]["test_error"] > 0.6, "the unclipped twin stays near chance (75% error)"
    assert 0.0 < fixed["with_rule"]["clipped_share"] < 1.0
    assert "solved" in explorer.status.value and "not learned" in explorer.status.value
    for rule, kwargs in (("AutoClip", {"percentile": 10.0}), ("AGC", {"clip_factor": 0.1})):
        run = explorer.redraw(rule=rule, lr=0.5, **kwargs)
        assert run["with_rule"]["test_error"] < 0.01, f"{rule} solves T = 15 at lr 0.5"
        assert not explorer._threshold.get_visible(), "the threshold line belongs to the fixed rule only"
        assert rule in _legend_texts(explorer.ax_loss)[1]
    assert explorer.compute("none", 1.0, 10.0, 0.1, 0.05)["none"]["test_error"] < 0.01


def test_rule_none_hides_the_second_curve_and_every_control_redraws(explorer):
    """rule = none: one curve and no threshold in the legend; moving each control puts a new PNG in the Image."""
    explorer.redraw(rule="none", lr=0.5)
    assert _legend_texts(explorer.ax_loss) == ["no clipping", "chance (ln 4)"]
    assert not explorer._lines["loss"][1].get_visible()
    assert explorer.status.value.startswith("no clipping")
    explorer.rule.value, explorer.threshold.value, explorer.lr.value = "fixed", 1.0, 0.5
    seen = [explorer.image.value]
    for control, value in ((explorer.threshold, 10.0), (explorer.rule, "AutoClip"), (explorer.percentile, 50.0),
                           (explorer.rule, "AGC"), (explorer.clip_factor, 1.0), (explorer.lr, 0.1)):
        control.value = value
        assert explorer.image.value[:8] == PNG
        assert explorer.image.value not in seen, f"setting {control.description} to {value} left the picture unchanged"
        seen.append(explorer.image.value)


def test_settings_are_checked_and_cached():
    """A bad setting raises; a setting seen before is not retrained; the rules are the four of the notebook."""
    ex = CapstoneExplorer(autoclip, agc, num_steps=5)
    assert RULES == ("none", "fixed", "AutoClip", "AGC")
    trained = ex.trainings
    ex.compute("fixed", 2.0, 10.0, 0.1, 0.25)
    ex.compute("fixed", 2.0, 10.0, 0.1, 0.25)
    assert ex.trainings == trained + 1
    with pytest.raises(ValueError):
        ex.compute("fixed", -1.0, 10.0, 0.1, 0.5)
    with pytest.raises(ValueError):
        ex.compute("AutoClip", 1.0, 120.0, 0.1, 0.5)
    with pytest.raises(ValueError):
        ex.compute("sometimes", 1.0, 10.0, 0.1, 0.5)
