"""The widgets of notebook 02, driven without a browser: a redraw changes the picture, uses the
learner's functions passed in. How fast a redraw answers (budget 100 ms) is measured by
``bench/bench_widgets.py``, not here. The reference implementations passed in are the test-only ones of
tests/test_gradlab_vanishing.py."""

import io

import numpy as np
import pytest
from gradlab import rnn, rnn_tools
from gradlab.explorers.cliff import CliffExplorer
from gradlab.explorers.grad_norm import GradNormExplorer
from PIL import Image
from test_gradlab_vanishing import ref_cliff, ref_hidden_grad_norms, ref_scale, ref_sigma


def _pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture(scope="module")
def grad_explorer():
    return GradNormExplorer(ref_hidden_grad_norms, ref_scale, ref_sigma)


@pytest.fixture(scope="module")
def cliff_explorer():
    return CliffExplorer(ref_cliff)


def test_grad_norm_explorer_draws_a_png_on_construction(grad_explorer):
    img = _pixels(grad_explorer.image.value)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400
    assert img.std() > 10  # not blank


@pytest.mark.parametrize("control, value", [("rho", 1.6), ("num_steps", 30), ("activation", "sigmoid")])
def test_moving_a_control_changes_the_picture(grad_explorer, control, value):
    before = grad_explorer.image.value
    old = getattr(grad_explorer, control).value
    try:
        getattr(grad_explorer, control).value = value  # what a slider move does in the browser
        after = grad_explorer.image.value
        assert after != before
        assert not np.array_equal(_pixels(after), _pixels(before))
    finally:
        getattr(grad_explorer, control).value = old


def test_redraw_returns_the_data_it_plots(grad_explorer):
    data = grad_explorer.redraw(rho=0.8, num_steps=50, activation="linear")
    assert data["norms"].shape == (50,)
    x, y = grad_explorer._line.get_data()
    assert np.array_equal(x, np.arange(50)) and np.allclose(y, data["norms"])
    assert grad_explorer.ax.get_yscale() == "log"
    assert "linear" in grad_explorer.ax.get_title() and "0.80" in grad_explorer.ax.get_title()
    assert grad_explorer.ax.get_xlabel() and grad_explorer.ax.get_ylabel()
    # linear, rho = 0.8: the gradient shrinks towards early steps
    assert data["norms"][0] < 1e-2 * data["norms"][-1]
    assert np.allclose(grad_explorer.redraw(rho=0.8, T=50, activation="linear")["norms"], data["norms"])
    with pytest.raises(ValueError):
        grad_explorer.redraw(num_steps=10, T=20)


def test_grad_norm_explorer_matches_gradlab_bptt(grad_explorer):
    data = grad_explorer.redraw(rho=1.3, num_steps=80, activation="tanh")
    p = grad_explorer.problem.truncated(80)
    Wh = ref_scale(grad_explorer.problem.Wh, 1.3)
    _, cache = rnn.rnn_forward(p.X, p.h0, p.Wx, Wh, p.b)
    dh_total = rnn_tools.state_grads(p.dh, cache)
    assert np.allclose(data["norms"], np.linalg.norm(dh_total[0], axis=1))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
def test_extreme_settings_draw_without_errors(grad_explorer, activation):
    for rho, T in [(0.5, 200), (2.0, 200), (2.0, 2)]:
        data = grad_explorer.redraw(rho=rho, num_steps=T, activation=activation)
        assert np.all(np.isfinite(data["norms"]))
    lo, hi = grad_explorer.ax.get_ylim()
    assert 0 < lo < hi < np.inf


def test_builders_require_functions():
    with pytest.raises(TypeError, match="hidden_grad_norms"):
        GradNormExplorer(None, ref_scale, ref_sigma)
    with pytest.raises(TypeError, match="cliff_loss_and_grad"):
        CliffExplorer("not a function")


def test_cliff_explorer_default_run_is_thrown_off_the_picture(cliff_explorer):
    path = cliff_explorer.redraw(lr=3.0, clipping=False)
    assert np.hypot(*np.diff(path, axis=0).T).max() > 10
    assert "ends outside" in cliff_explorer.ax.get_title()
    clipped = cliff_explorer.redraw(lr=3.0, clip=0.5)
    assert np.hypot(*np.diff(clipped, axis=0).T).max() <= 1.5 + 1e-12
    assert "clipped to 0.5" in cliff_explorer.ax.get_title()
    x, y = cliff_explorer._path.get_data()
    assert np.allclose(x, clipped[:, 0]) and np.allclose(y, clipped[:, 1])


@pytest.mark.parametrize("control, value", [("lr", 1.0), ("clipping", True), ("clip", 2.0)])
def test_every_cliff_control_changes_the_picture(cliff_explorer, control, value):
    cliff_explorer.redraw()
    before = cliff_explorer.image.value
    old = getattr(cliff_explorer, control).value
    try:
        getattr(cliff_explorer, control).value = value
        assert not np.array_equal(_pixels(cliff_explorer.image.value), _pixels(before))
    finally:
        getattr(cliff_explorer, control).value = old


def test_cliff_frames_do_not_keep_old_paths(cliff_explorer):
    """Blitting restores the background: drawing A, then B, then A again gives A's picture."""
    cliff_explorer.redraw(lr=3.0, clipping=False)
    first = _pixels(cliff_explorer.image.value)
    cliff_explorer.redraw(lr=0.5, clip=0.3)
    cliff_explorer.redraw(lr=3.0, clipping=False)
    assert np.array_equal(_pixels(cliff_explorer.image.value), first)
