"""Unit tests for gradlab.tf_models: quiet import, the seed's data and models, gradient-norm logging."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradlab import tf_models as tm

ROOT = Path(__file__).resolve().parent.parent

tf = tm.tf
keras = tm.keras


def test_import_prints_nothing_on_stderr():
    """Importing gradlab.tf_models in a fresh interpreter with no TF variables set writes nothing to stderr."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "PYTHONWARNINGS")}
    code = ("import gradlab.tf_models as tm, os; tm.make_regressor(0)(tm.np.zeros((2, 30), 'float32'));"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['TF_ENABLE_ONEDNN_OPTS'])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.split() == ["3", "0"]


def test_float32_sqrt_max_is_where_squares_overflow():
    """FLOAT32_SQRT_MAX is the largest float32 whose square is finite."""
    limit = np.float32(tm.FLOAT32_SQRT_MAX)
    with np.errstate(over="ignore"):
        assert np.isfinite(np.float32(limit * np.float32(0.9999)) ** 2)
        assert np.isinf(np.float32(limit * np.float32(1.0001)) ** 2)


def test_regression_data_is_the_seeds_split():
    """make_regression(10000, 30, random_state=65), 80/20, float32, y as a column; fixed by the seed."""
    X_train, X_test, y_train, y_test = tm.regression_data()
    assert X_train.shape == (8000, 30) and X_test.shape == (2000, 30)
    assert y_train.shape == (8000, 1) and y_test.shape == (2000, 1)
    assert all(a.dtype == np.float32 for a in (X_train, X_test, y_train, y_test))
    again = tm.regression_data()
    assert all(np.array_equal(a, b) for a, b in zip((X_train, X_test, y_train, y_test), again, strict=True))
    other = tm.regression_data(seed=1)
    assert not np.array_equal(X_train, other[0])
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=10000, n_features=30, random_state=65)
    assert np.isclose(np.sort(np.concatenate([y_train, y_test]).ravel()), np.sort(y).astype(np.float32)).all()
    assert np.isclose(X_train.std(), X.std(), rtol=0.02)


def test_regression_data_scale_multiplies_both():
    """scale multiplies X and y exactly (same split), so the relation between them stays linear."""
    small = tm.regression_data()
    big = tm.regression_data(scale=1.6e8)
    for a, b in zip(small, big, strict=True):
        np.testing.assert_allclose(b, a.astype(np.float64) * 1.6e8, rtol=1e-6)


def test_make_regressor_architecture_and_seed():
    """Dense(35, relu) -> Dense(1) on 30 inputs; same seed, same weights, whatever the model class."""
    model = tm.make_regressor(seed=3)
    dense1, dense2 = model.layers
    assert dense1.units == 35 and dense1.activation.__name__ == "relu"
    assert dense2.units == 1 and dense2.activation.__name__ == "linear"
    assert [w.shape for w in model.get_weights()] == [(30, 35), (35,), (35, 1), (1,)]
    same = tm.make_regressor(seed=3, model_class=tm.GradNormSequential)
    assert isinstance(same, tm.GradNormSequential)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), same.get_weights(), strict=True))
    other = tm.make_regressor(seed=4)
    assert not np.array_equal(model.get_weights()[0], other.get_weights()[0])


def test_digits_data_and_classifier():
    """Digits as (N, 8, 8) float32 images in [0, 1]; the classifier maps them to 10 logits."""
    X_train, X_test, y_train, y_test = tm.digits_data()
    assert X_train.shape[1:] == (8, 8) and X_train.dtype == np.float32
    assert len(X_train) + len(X_test) == 1797 and len(X_test) == 450
    assert X_train.min() >= 0.0 and X_train.max() == 1.0
    assert set(np.unique(y_train)) == set(range(10))
    model = tm.make_digits_classifier(seed=0)
    assert model(X_test[:5]).shape == (5, 10)
    assert [w.shape for w in model.get_weights()] == [(64, 128), (128,), (128, 10), (10,)]


def test_float64_global_norm_skips_none_and_does_not_overflow():
    """float64_global_norm matches NumPy, skips None, and stays finite beyond float32's square limit."""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)).astype(np.float32), None, rng.normal(size=5).astype(np.float32)]
    expected = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads if g is not None))
    assert np.isclose(float(tm.float64_global_norm([tf.constant(g) if g is not None else None for g in grads])),
                      expected, rtol=1e-12)
    huge = [tf.constant([3e19, 4e19], dtype=tf.float32)]
    assert np.isclose(float(tm.float64_global_norm(huge)), 5e19, rtol=1e-6)
    assert np.isinf(float(tf.linalg.global_norm(huge)))   # what a float32 norm would have said


def _first_batch_norm(model, X, y):
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(y - model(X)))
    grads = tape.gradient(loss, variables)
    return float(np.sqrt(sum(np.sum(np.asarray(g, dtype=np.float64) ** 2) for g in grads))), float(loss)


def test_grad_norm_logged_to_tensorboard_and_read_back(tmp_path):
    """GradNormTensorBoard writes one grad_norm per step; read_scalars returns it; step 0 is the true norm."""
    X_train, _, y_train, _ = tm.regression_data()
    X, y = X_train[:320], y_train[:320]
    reference = tm.make_regressor(seed=0)
    norm0, loss0 = _first_batch_norm(reference, tf.constant(X[:32]), tf.constant(y[:32]))

    model = tm.make_regressor(seed=0, model_class=tm.GradNormSequential)
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.SGD(learning_rate=1e-6))
    history = model.fit(X, y, epochs=2, batch_size=32, shuffle=False, verbose=0,
                        callbacks=[tm.GradNormTensorBoard(tmp_path)])
    assert "grad_norm" in history.history

    steps, norms = tm.read_scalars(tmp_path, "grad_norm")
    np.testing.assert_array_equal(steps, np.arange(20))
    assert np.all(np.isfinite(norms)) and np.all(norms > 0)
    assert np.isclose(norms[0], norm0, rtol=1e-4), (norms[0], norm0)
    loss_steps, losses = tm.read_scalars(tmp_path, "step_loss")
    np.testing.assert_array_equal(loss_steps, steps)
    assert np.isclose(losses[0], loss0, rtol=1e-4)
    assert norms[10] != norms[0]   # epoch 2 starts from updated weights
    _, largest = tm.read_scalars(tmp_path, "grad_max")
    assert np.all(largest > 0) and np.all(largest <= norms)


def test_read_scalars_keeps_inf_and_nan_and_reports_missing(tmp_path):
    """read_scalars returns inf and NaN as written, sorted by step; missing files or tags raise."""
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step, value in [(2, float("nan")), (0, 1.5), (1, float("inf"))]:
            tf.summary.scalar("x", value, step=step)
    writer.close()
    steps, values = tm.read_scalars(tmp_path, "x")
    np.testing.assert_array_equal(steps, [0, 1, 2])
    assert values[0] == 1.5 and np.isinf(values[1]) and np.isnan(values[2])
    with pytest.raises(KeyError):
        tm.read_scalars(tmp_path, "y")
    with pytest.raises(FileNotFoundError):
        tm.read_scalars(tmp_path / "empty", "x")


@pytest.mark.slow
def test_scaled_regression_explodes_and_the_log_shows_it(tmp_path):
    """On the data times 1.6e8, plain Adam's loss is NaN just after a logged entry passes FLOAT32_SQRT_MAX.

    Which step crosses the limit depends on floating-point rounding (thread count, machine), so the test
    asserts a window; the exact two-step mechanism is tested deterministically on one variable below.
    """
    X_big, _, y_big, _ = tm.regression_data(scale=1.6e8)
    model = tm.make_regressor(seed=0, model_class=tm.GradNormSequential)
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam())
    history = model.fit(X_big, y_big, epochs=4, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN(), tm.GradNormTensorBoard(tmp_path)])
    assert len(history.history["loss"]) < 4 and np.isnan(history.history["loss"][-1])
    steps, norms = tm.read_scalars(tmp_path, "grad_norm")
    assert np.isfinite(norms[0]) and np.isnan(norms[-1])
    _, largest = tm.read_scalars(tmp_path, "grad_max")
    _, losses = tm.read_scalars(tmp_path, "step_loss")
    first_over = int(np.argmax(largest > tm.FLOAT32_SQRT_MAX))
    assert largest[first_over] > tm.FLOAT32_SQRT_MAX and np.all(np.isfinite(largest[:first_over]))
    # Adam's second moment becomes inf at that step, NaN at the next, and the loss after that is NaN
    first_nan = int(np.argmax(np.isnan(losses)))
    assert first_over < first_nan <= first_over + 3 and first_nan == len(losses) - 1   # TerminateOnNaN stopped there


def test_adam_turns_an_overflowing_entry_into_nan_two_steps_later():
    """An entry beyond FLOAT32_SQRT_MAX: Adam's step for it is 0 (m / inf), then NaN (inf - inf) the step after."""
    weight = keras.Variable(np.zeros(2, np.float32))
    adam = keras.optimizers.Adam(learning_rate=0.001)
    after = []
    for grad in ([2.0 * tm.FLOAT32_SQRT_MAX, 1.0], [1.0, 1.0], [1.0, 1.0]):
        adam.apply([tf.constant(grad, tf.float32)], [weight])
        after.append(weight.numpy().copy())
    assert after[0][0] == 0.0 and np.isclose(after[0][1], -0.001, rtol=1e-4)
    assert np.isnan(after[1][0]) and np.isfinite(after[1][1])
    assert np.isnan(after[2][0]) and np.isclose(after[2][1], -0.003, rtol=1e-3)   # the other entry is unaffected


def test_clipping_summary_cosine():
    """clipping_summary: a common factor keeps cosine 1; clipping one array only changes the direction."""
    grads = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]
    before, after, cosine = tm.clipping_summary(grads, [g * 0.5 for g in grads])
    np.testing.assert_allclose(before, [5.0, 12.0])
    np.testing.assert_allclose(after, [2.5, 6.0])
    assert np.isclose(cosine, 1.0)
    _, _, cosine = tm.clipping_summary(grads, [grads[0], grads[1] * 5 / 12])
    assert cosine < 0.99
    _, _, cosine = tm.clipping_summary(grads, [np.zeros(2), np.zeros(2)])
    assert np.isnan(cosine)


def test_clipping_explorer_redraws_with_the_given_functions():
    """The widget calls the functions it is given, for each mode, and redraws without error."""
    import matplotlib

    matplotlib.use("Agg")
    calls = []

    def per_variable(grads, c):
        calls.append(("clipnorm", c))
        return [g * min(1.0, c / np.linalg.norm(g)) for g in grads]

    def common(grads, c):
        calls.append(("global", c))
        return list(grads)

    grads = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]
    box = tm.clipping_explorer(grads, ["a", "b"], per_variable, common)
    mode, threshold = box.children[0].children
    assert calls and calls[-1][0] == "clipnorm"
    mode.value = "global_clipnorm"
    assert calls[-1][0] == "global"
    threshold.value = 2.0
    assert calls[-1] == ("global", 2.0)
    n = len(calls)
    mode.value = "clipvalue"   # np.clip, neither function
    assert len(calls) == n


def test_keras_clipping_explorer_compute_matches_each_mode():
    """KerasClippingExplorer.compute: per-variable, global and value clipping norms; redraw returns the same."""
    grads = [np.array([3.0, 4.0]), np.array([0.0, 12.0])]

    def per_variable(gs, c):
        return [g * min(1.0, c / np.linalg.norm(g)) for g in gs]

    def common(gs, c):
        total = np.sqrt(sum(float(np.sum(g * g)) for g in gs))
        return [g * min(1.0, c / total) for g in gs]

    explorer = tm.KerasClippingExplorer(grads, ["a", "b"], per_variable, common)
    before, after, _ = explorer.compute("clipnorm", 2.0)
    np.testing.assert_allclose(before, [5.0, 12.0])
    np.testing.assert_allclose(after, [2.0, 2.0])
    _, after, cosine = explorer.compute("global_clipnorm", 2.0)
    np.testing.assert_allclose(after, [2.0 * 5 / 13, 2.0 * 12 / 13])
    assert cosine == pytest.approx(1.0)
    _, after, _ = explorer.compute("clipvalue", 3.0)
    np.testing.assert_allclose(after, [np.hypot(3.0, 3.0), 3.0])
    first = explorer.image.value
    drawn = explorer.redraw(mode="global_clipnorm", threshold=2.0)
    np.testing.assert_allclose(drawn[1], [2.0 * 5 / 13, 2.0 * 12 / 13])
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n" and explorer.image.value != first
    with pytest.raises(ValueError):
        explorer.compute("clip_everything", 1.0)
