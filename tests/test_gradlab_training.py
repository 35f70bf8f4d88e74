"""gradlab.training: SGD on the reference RNN, with the caller's clipping function."""

import numpy as np
import pytest
from gradlab import clipping as C
from gradlab import data, rnn, rnn_tools, training

from tests.fixtures.progress import RecordingBar


@pytest.fixture(scope="module")
def task():
    X, y = data.adding_problem(128, 12, seed=1)
    return X, y, rnn_tools.init_rnn(2, 16, 1, seed=0, spectral_radius=1.5)


def test_train_does_not_modify_params_and_logs_every_step(task):
    """train returns new params and a history with one entry per step."""
    X, y, p0 = task
    before = {k: v.copy() for k, v in p0.items()}
    params, hist = training.train(p0, X, y, lr=0.05, num_steps=30, batch_size=16)
    for k in p0:
        np.testing.assert_array_equal(p0[k], before[k])
    assert params["Wh"] is not p0["Wh"]
    for key in training.HISTORY_KEYS:
        assert hist[key].shape == (30,)
    assert hist["diverged_at"] is None
    assert not hist["clipped"].any()
    np.testing.assert_array_equal(hist["grad_norm"], hist["clipped_norm"])


def test_train_matches_a_hand_written_sgd_loop(task):
    """train is exactly: rnn_loss on the step's batch, clip, p -= lr * g."""
    X, y, p0 = task
    _, hist = training.train(p0, X, y, lr=0.05, num_steps=5, batch_size=16, seed=3,
                             clip_fn=C.clip_by_global_norm, threshold=0.5)
    params = {k: v.copy() for k, v in p0.items()}
    idx = training.batches(len(X), 16, 5, seed=3)
    for step in range(5):
        loss, g = rnn.rnn_loss(params, X[idx[step]], y[idx[step]])
        clipped, norm = C.clip_by_global_norm([g[k] for k in rnn.PARAM_NAMES], 0.5)
        assert hist["loss"][step] == pytest.approx(loss, rel=1e-12)
        assert hist["grad_norm"][step] == pytest.approx(norm, rel=1e-12)
        for k, c in zip(rnn.PARAM_NAMES, clipped, strict=True):
            params[k] -= 0.05 * c


def test_clipping_bounds_the_step_and_is_recorded(task):
    """With norm clipping every clipped norm is at most the threshold, and clipped steps are flagged."""
    X, y, p0 = task
    _, hist = training.train(p0, X, y, lr=0.1, num_steps=40, clip_fn=C.clip_by_global_norm, threshold=0.3)
    assert (hist["clipped_norm"] <= 0.3 + 1e-12).all()
    np.testing.assert_array_equal(hist["clipped"], hist["grad_norm"] > 0.3)


def test_value_clip_function_returning_a_list_is_accepted(task):
    """A clip_fn that returns a plain list (clip_by_value) plugs in too."""
    X, y, p0 = task
    _, hist = training.train(p0, X, y, lr=0.1, num_steps=10, clip_fn=C.clip_by_value, threshold=0.01)
    assert hist["clipped"].all()


def test_in_place_clip_fn_trains_exactly_like_the_pure_one(task):
    """clip_grads_by_global_norm_ (in place, returns the norm) plugs in and gives the pure function's run."""
    X, y, p0 = task
    before = {k: v.copy() for k, v in p0.items()}
    pure_params, pure = training.train(p0, X, y, lr=0.1, num_steps=40, clip_fn=C.clip_by_global_norm,
                                       threshold=0.3)
    fast_params, fast = training.train(p0, X, y, lr=0.1, num_steps=40, clip_fn=C.clip_grads_by_global_norm_,
                                       threshold=0.3)
    for k in p0:
        np.testing.assert_array_equal(p0[k], before[k])
        np.testing.assert_array_equal(fast_params[k], pure_params[k])
    for key in training.HISTORY_KEYS:
        np.testing.assert_array_equal(fast[key], pure[key])
    assert fast["clipped"].any() and not fast["clipped"].all()


def test_in_place_clip_fn_in_train_many_matches_train(task):
    """train_many with an in-place clip_fn: each copy as train gives it, the other copies untouched."""
    X, y, p0 = task
    settings = [training.Setting(0.2, C.clip_grads_by_global_norm_, 0.5), training.Setting(0.05),
                training.Setting(0.2, C.clip_by_global_norm, 0.5)]
    many = training.train_many(settings, p0, X, y, num_steps=40, batch_size=16, seed=2)
    for s, hist in zip(settings, many, strict=True):
        params, one = training.train(p0, X, y, lr=s.lr, num_steps=40, batch_size=16, seed=2,
                                     clip_fn=s.clip_fn, threshold=s.threshold)
        np.testing.assert_allclose(hist["loss"], one["loss"], rtol=1e-9)
        np.testing.assert_allclose(hist["clipped_norm"], one["clipped_norm"], rtol=1e-9)
        np.testing.assert_array_equal(hist["clipped"], one["clipped"])
        for k in rnn.PARAM_NAMES:
            np.testing.assert_allclose(hist["params"][k], params[k], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(many[0]["clipped"], many[2]["clipped"])
    assert many[0]["clipped"].any()


def test_in_place_clip_fn_returning_none_is_accepted(task):
    """An in-place clip_fn may return None: the arrays it scaled are the step's gradient."""
    X, y, p0 = task

    def halve(grads, _threshold):
        for g in grads:
            g *= 0.5

    _, hist = training.train(p0, X, y, lr=0.1, num_steps=5, clip_fn=halve, threshold=1.0)
    np.testing.assert_allclose(hist["clipped_norm"], 0.5 * hist["grad_norm"], rtol=1e-12)
    assert hist["clipped"].all()


def test_divergence_is_detected_and_stops(task):
    """A huge learning rate diverges: diverged_at is set, training stops there, no warnings."""
    X, y, p0 = task
    with np.errstate(all="raise"):  # the trainer must silence its own overflow
        _, hist = training.train(p0, X, y, lr=50.0, num_steps=300)
    at = hist["diverged_at"]
    assert at is not None and len(hist["loss"]) == at + 1
    assert not np.isfinite(hist["loss"][-1]) or not np.isfinite(hist["grad_norm"][-1])


def test_bad_arguments_are_refused(task):
    """Clear errors for bad lr, num_steps, missing threshold, a broken clip_fn."""
    X, y, p0 = task
    with pytest.raises(ValueError, match="lr"):
        training.train(p0, X, y, lr=-1, num_steps=3)
    with pytest.raises(ValueError, match="num_steps"):
        training.train(p0, X, y, lr=0.1, num_steps=0)
    with pytest.raises(ValueError, match="threshold"):
        training.train(p0, X, y, lr=0.1, num_steps=3, clip_fn=C.clip_by_value)
    with pytest.raises(ValueError, match="clip_fn"):
        training.train(p0, X, y, lr=0.1, num_steps=3, clip_fn=lambda g, t: g[:2], threshold=1.0)
    with pytest.raises(ValueError, match="missing"):
        training.train({"Wx": p0["Wx"]}, X, y, lr=0.1, num_steps=3)


def test_train_many_equals_separate_runs(task):
    """train_many gives, for every setting, the history that train gives for it alone."""
    X, y, p0 = task
    settings = [training.Setting(0.05), training.Setting(0.2, C.clip_by_global_norm, 0.5),
                training.Setting(0.2, C.clip_by_value, 0.02), training.Setting(100.0)]
    many = training.train_many(settings, p0, X, y, num_steps=60, batch_size=16, seed=2)
    for s, hist in zip(settings, many, strict=True):
        params, one = training.train(p0, X, y, lr=s.lr, num_steps=60, batch_size=16, seed=2,
                                     clip_fn=s.clip_fn, threshold=s.threshold)
        assert hist["diverged_at"] == one["diverged_at"]
        n = len(one["loss"]) if one["diverged_at"] is None else one["diverged_at"]
        np.testing.assert_allclose(hist["loss"][:n], one["loss"][:n], rtol=1e-9)
        np.testing.assert_allclose(hist["grad_norm"][:n], one["grad_norm"][:n], rtol=1e-9)
        np.testing.assert_array_equal(hist["clipped"][:n], one["clipped"][:n])
        if one["diverged_at"] is None:
            for k in rnn.PARAM_NAMES:
                np.testing.assert_allclose(hist["params"][k], params[k], rtol=1e-9, atol=1e-12)
    assert many[3]["diverged_at"] is not None
    assert np.isnan(many[3]["loss"][-1])


def test_train_many_classification():
    """train_many also handles the classification task (temporal order) like train."""
    X, y = data.temporal_order(64, 10, seed=0)
    p0 = rnn.init_rnn(6, 8, 4, seed=1)
    (hist,) = training.train_many([training.Setting(0.1)], p0, X, y, num_steps=5, task="classification")
    _, one = training.train(p0, X, y, lr=0.1, num_steps=5, task="classification")
    np.testing.assert_allclose(hist["loss"], one["loss"], rtol=1e-10)


def test_headline_norm_clipping_tames_an_exploding_run():
    """At lr=0.15 plain SGD turns NaN on every seed while norm clipping ends below half the start loss."""
    X, y = data.adding_problem(512, 20, seed=1)
    Xe, ye = data.adding_problem(500, 20, seed=2)
    for seed in range(3):
        p0 = rnn_tools.init_rnn(2, 32, 1, seed=seed, spectral_radius=1.5)
        plain, clipped = training.train_many([training.Setting(0.15),
                                              training.Setting(0.15, C.clip_by_global_norm, 1.0)],
                                             p0, X, y, num_steps=300, seed=seed)
        assert plain["diverged_at"] is not None
        assert clipped["diverged_at"] is None
        assert training.evaluate(clipped["params"], Xe, ye) < 0.5 * training.evaluate(p0, Xe, ye)


def test_evaluate_and_grad_norm():
    """evaluate is rnn_loss's loss; grad_norm is the norm of the concatenation."""
    X, y = data.adding_problem(16, 5, seed=0)
    p = rnn.init_rnn(2, 4, 1, seed=0)
    assert training.evaluate(p, X, y) == pytest.approx(rnn.rnn_loss(p, X, y)[0])
    g = [np.ones((2, 2)), np.full(3, 2.0)]
    assert training.grad_norm(g) == pytest.approx(np.sqrt(4 + 12))




def test_progress_bar_of_a_full_run_reaches_its_end(task, recording):
    """progress=True shows one tqdm.auto bar over the steps that ends at num_steps and is closed."""
    X, y, p0 = task
    training.train_many([training.Setting(0.05)], p0, X, y, num_steps=7, progress="plain")
    training.train(p0, X, y, lr=0.05, num_steps=5, progress=True)
    assert [(b.total, b.n, b.closed) for b in recording] == [(7, 7, True), (5, 5, True)]
    assert recording[0].desc == "plain"


def test_progress_bar_reaches_its_end_when_every_run_diverges_early(task, recording):
    """A run that diverges stops early (train_many once every copy has diverged); its bar still ends full."""
    X, y, p0 = task
    hists = training.train_many([training.Setting(1e6), training.Setting(1e7)], p0, X, y, num_steps=200,
                                progress=True)
    assert all(h["diverged_at"] is not None and h["diverged_at"] < 50 for h in hists)
    _, one = training.train(p0, X, y, lr=1e6, num_steps=200, progress=True)
    assert len(one["loss"]) < 50
    assert [(b.total, b.n, b.closed) for b in recording] == [(200, 200, True), (200, 200, True)]


def test_a_shared_progress_bar_is_advanced_and_left_open(task, recording):
    """An existing bar passed as progress= is advanced by every run, also a diverged one, and not closed."""
    X, y, p0 = task
    shared = RecordingBar(total=60)
    training.train(p0, X, y, lr=0.05, num_steps=30, progress=shared)
    training.train(p0, X, y, lr=1e6, num_steps=30, progress=shared)
    assert shared.n == 60 and not shared.closed and recording == [shared]


def test_no_progress_bar_by_default(task, recording):
    """Without progress= nothing is drawn (the widgets retrain quietly)."""
    X, y, p0 = task
    training.train_many([training.Setting(0.05)], p0, X, y, num_steps=3)
    training.train(p0, X, y, lr=0.05, num_steps=3)
    assert recording == []
