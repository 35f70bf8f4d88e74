"""Progress bars reach their end, also when a run diverges and stops early (issue 16, point 8)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.progress import RecordingBar

tm = pytest.importorskip("gradlab.tf_models")
keras = tm.keras




def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.SGD(learning_rate=0.01))
    return model


def test_bar_reaches_its_total_on_a_full_run(recording):
    X, y = np.ones((64, 2), np.float32), np.ones((64, 1), np.float32)
    total = 3 * 2   # 3 epochs of 2 batches of 32
    history = _model().fit(X, y, epochs=3, batch_size=32, verbose=0, callbacks=[tm.ProgressBar(total, "full")])
    assert len(history.history["loss"]) == 3
    (bar,) = recording
    assert bar.total == total and bar.n == total and bar.closed


def test_bar_reaches_its_total_when_terminate_on_nan_stops_the_run(recording):
    X, y = np.ones((64, 2), np.float32), np.ones((64, 1), np.float32)
    y[40] = np.nan   # the second batch's loss is NaN: TerminateOnNaN stops the fit there
    total = 5 * 2
    callbacks = [keras.callbacks.TerminateOnNaN(), tm.ProgressBar(total, "diverges")]
    history = _model().fit(X, y, epochs=5, batch_size=32, verbose=0, shuffle=False, callbacks=callbacks)
    assert len(history.history.get("loss", [])) <= 1   # stopped in the first epoch
    (bar,) = recording
    assert bar.total == total and bar.n == total and bar.closed


def test_a_shared_bar_is_advanced_but_left_open(recording):
    X, y = np.ones((32, 2), np.float32), np.ones((32, 1), np.float32)
    shared = RecordingBar(total=4)
    for _ in range(2):
        _model().fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[tm.ProgressBar(2, bar=shared)])
    assert shared.n == 4 and not shared.closed and recording == [shared]
