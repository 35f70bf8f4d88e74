"""TensorFlow and Keras helpers for notebook 06: the seed's data and models, gradient-norm logging.

Importing this module imports TensorFlow *quietly*: it sets ``TF_CPP_MIN_LOG_LEVEL=3`` (no C++ log lines)
and ``TF_ENABLE_ONEDNN_OPTS=0`` (no oneDNN banner, which TensorFlow prints before its log level is read)
unless they are already set, and silences TensorFlow's Python logger. Anything written to stderr in a
graded cell scores 0 under nbgrader, so a notebook must import TensorFlow this way (or set the same two
variables itself before ``import tensorflow``).

What is here (none of it answers an exercise of notebook 06):

* ``regression_data`` / ``make_regressor``: the seed's regression experiment (``make_regression`` with
  ``n_samples=10000, n_features=30, random_state=65``, an 80/20 split, Dense(35, relu) -> Dense(1));
* ``digits_data`` / ``make_digits_classifier``: the seed's Keras image classifier, on scikit-learn's
  bundled 8x8 digits instead of MNIST (no download);
* ``GradNormSequential``: a ``keras.Sequential`` whose ``train_step`` also reports the global norm and the
  largest entry of the raw gradients (before the optimizer clips them), computed in float64 so that they
  stay finite where a float32 sum of squares overflows;
* ``GradNormTensorBoard``: a callback that writes them and the step's loss to TensorBoard with
  ``tf.summary`` at every training step;
* ``ProgressBar``: a ``tqdm.auto`` bar over a ``fit`` that reaches its end even when a run stops early;
* ``read_scalars``: reads a scalar back from TensorBoard event files (for tests and plots);
* ``clipping_summary``, ``KerasClippingExplorer`` and ``clipping_explorer``: the notebook's explorer,
  defined in ``gradlab.explorers.keras_clipping`` and imported here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# notebook 06's explorer and its data step live in gradlab.explorers.keras_clipping; the notebook and
# tests/test_gradlab_tf.py reach them from here
from .explorers.keras_clipping import KerasClippingExplorer, clipping_explorer, clipping_summary  # noqa: E402,F401

tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

#: The largest float32 whose square is still finite (about 1.84e19). A gradient entry beyond it makes
#: Adam's second moment (which squares it) and any float32 norm (a sum of squares) overflow to inf.
FLOAT32_SQRT_MAX = float(np.sqrt(np.finfo(np.float32).max))

N_SAMPLES, N_FEATURES, DATA_SEED = 10000, 30, 65


def regression_data(scale=1.0, *, test_size=0.2, seed=0):
    """The seed's regression data: ``(X_train, X_test, y_train, y_test)`` as float32, y of shape (N, 1).

    ``make_regression(n_samples=10000, n_features=30, random_state=65)``, multiplied by ``scale`` (both X
    and y, so the relation between them stays exactly linear), then split 80/20 with
    ``train_test_split(..., test_size=0.2, random_state=seed)``.
    Defined in notebook 06.
    """
    from sklearn.datasets import make_regression
    from sklearn.model_selection import train_test_split

    X, y = make_regression(n_samples=N_SAMPLES, n_features=N_FEATURES, random_state=DATA_SEED)
    X, y = X * scale, (y * scale).reshape(-1, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed)
    return tuple(a.astype(np.float32) for a in (X_train, X_test, y_train, y_test))


def _seed_layers(seed, layers):
    keras.utils.set_random_seed(seed)
    return layers()


def make_regressor(seed=0, *, model_class=None):
    """The seed's MLP: Dense(35, relu) -> Dense(1, linear) on 30 inputs, initialised from ``seed``.

    ``model_class`` (default ``keras.Sequential``) may be ``GradNormSequential`` to log gradient norms;
    the layers and initial weights are the same either way.
    Defined in notebook 06.
    """
    model_class = model_class or keras.Sequential
    return _seed_layers(seed, lambda: model_class([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(35, activation="relu"),
        keras.layers.Dense(1, activation="linear"),
    ]))


def digits_data(*, test_size=0.25, seed=0):
    """scikit-learn's 8x8 digits as images scaled to [0, 1]: ``(X_train, X_test, y_train, y_test)``.

    X has shape (N, 8, 8) and dtype float32 (pixel values 0..16 divided by 16, as the seed divides MNIST
    by 255); y holds integer labels 0..9. The split is stratified and fixed by ``seed``.
    Defined in notebook 06.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return tuple(train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y))


def make_digits_classifier(seed=0):
    """The seed's classifier for 8x8 images: Flatten -> Dense(128, relu) -> Dense(10) logits. Defined in notebook 06."""
    return _seed_layers(seed, lambda: keras.Sequential([
        keras.Input(shape=(8, 8)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ]))


def float64_global_norm(grads):
    """sqrt of the sum of squares of every entry of every non-None tensor, computed in float64.

    Defined in notebook 06.
    """
    squares = [tf.reduce_sum(tf.square(tf.cast(g, tf.float64))) for g in grads if g is not None]
    return tf.sqrt(tf.add_n(squares))


class GradNormSequential(keras.Sequential):
    """A ``keras.Sequential`` whose training step also returns ``grad_norm``, ``grad_max``, ``step_loss``.

    ``grad_norm`` is the global norm of the raw gradients of this step, *before* the optimizer applies
    its ``clipnorm`` / ``clipvalue`` / ``global_clipnorm``, computed in float64 (so that it is still
    finite where a float32 sum of squares would overflow); ``grad_max`` is the largest absolute entry
    of those gradients. ``step_loss`` is this step's loss (Keras's ``loss`` is the running mean over the
    epoch). Everything else is Keras's usual ``train_step``.
    Defined in notebook 06.
    """

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        grad_norm = float64_global_norm(grads)
        grad_max = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(tf.cast(g, tf.float64)))
                                           for g in grads if g is not None]))
        self.optimizer.apply(grads, self.trainable_variables)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        logs = {m.name: m.result() for m in self.metrics}
        logs["grad_norm"] = grad_norm
        logs["grad_max"] = grad_max
        logs["step_loss"] = loss
        return logs


class GradNormTensorBoard(keras.callbacks.Callback):
    """Write ``grad_norm``, ``grad_max``, ``step_loss`` to TensorBoard (``tf.summary``) for every step.

    Use with a model that reports them (``GradNormSequential``). The step number counts optimizer steps
    from 0 over the whole ``fit``. Open the logs with ``tensorboard --logdir <logdir>``.

    Each step's values are kept in memory and written at the end of every epoch (and of training, also
    when ``TerminateOnNaN`` stops it) by one ``tf.function`` that loops over them: the same events
    ``tf.summary.scalar(tag, value, step=step)`` would write (float32 scalars, the scalars plugin's
    metadata), but an eager ``tf.summary.scalar`` per step costs more than a small model's whole step.
    Defined in notebook 06.
    """

    def __init__(self, logdir, tags=("grad_norm", "grad_max", "step_loss")):
        super().__init__()
        self.logdir = str(logdir)
        self.tags = tuple(tags)
        self._writer = None
        self._step = 0
        self._pending = []   # (tag, step, value) not written yet

    def on_train_begin(self, logs=None):
        from tensorboard.plugins.scalar import metadata

        self._writer = tf.summary.create_file_writer(self.logdir)
        self._step = 0
        self._pending = []
        writer = self._writer
        plugin = metadata.create_summary_metadata(display_name=None, description=None).SerializeToString()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int64),
                                      tf.TensorSpec([None], tf.float64)])
        def write(tags, steps, values):
            with writer.as_default():
                for i in tf.range(tf.shape(steps)[0]):
                    # tf.summary.scalar's own write, without the loop's name scope in the tag
                    tf.summary.write(tag=tags[i], tensor=tf.cast(values[i], tf.float32), step=steps[i],
                                     metadata=plugin)

        self._write = write

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self._pending.extend((tag, self._step, float(logs[tag])) for tag in self.tags if tag in logs)
        self._step += 1

    def _flush(self):
        if self._pending:
            tags, steps, values = zip(*self._pending, strict=True)
            self._write(tf.constant(tags), tf.constant(steps, tf.int64), tf.constant(values, tf.float64))
            self._pending = []
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._flush()
            self._writer.close()


class ProgressBar(keras.callbacks.Callback):
    """A ``tqdm.auto`` bar over a ``fit``'s training steps that always reaches its end.

    ``total`` is the number of steps the whole ``fit`` would take (epochs x batches per epoch); the bar
    moves one step per batch, and at the end of training (also when ``TerminateOnNaN`` stops a run that
    diverged early) it is set to ``total`` and closed, so a finished cell never shows a stalled bar. Pass
    an existing ``bar`` to share one bar between several ``fit`` calls (it is then left open).
    Defined in notebook 06.
    """

    def __init__(self, total, desc=None, *, bar=None):
        super().__init__()
        self.total = int(total)
        self.desc = desc
        self._shared = bar
        self.bar = bar

    def on_train_begin(self, logs=None):
        if self._shared is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, leave=False)
        self._done = 0

    def on_train_batch_end(self, batch, logs=None):
        self._done += 1
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.update(self.total - self._done)   # a run stopped early still reaches its end
        if self._shared is None:
            self.bar.close()


def read_scalars(logdir, tag):
    """Read a scalar written with ``tf.summary.scalar`` back from the event files in ``logdir``.

    Returns ``(steps, values)``: an int64 array and a float64 array sorted by step (inf and NaN are kept
    as written). Raises ``FileNotFoundError`` when ``logdir`` holds no event file and ``KeyError`` when
    none of them holds ``tag``.
    Defined in notebook 06.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    files = sorted(Path(logdir).glob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"no TensorBoard event file in {logdir}")
    points = {}
    for path in files:
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag != tag:
                    continue
                if value.HasField("tensor"):
                    number = float(tensor_util.make_ndarray(value.tensor))
                else:  # TF1-style simple_value
                    number = float(value.simple_value)
                points[int(event.step)] = number
    if not points:
        raise KeyError(f"no scalar {tag!r} in {logdir}")
    steps = np.array(sorted(points), dtype=np.int64)
    return steps, np.array([points[s] for s in steps], dtype=np.float64)
