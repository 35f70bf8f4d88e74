"""PyTorch models and data for notebook 05: the seeds' networks, on data that needs no download.

The seeds train a CNN on CIFAR-10 (seed 000) and an LSTM on a toxic-comment corpus (seed 002); both
need a download. Here they run offline:

* ``DigitsCNN``: seed 000's ``Net`` (conv 6 -> pool -> conv 16 -> pool -> 120 -> 84 -> 10), adapted
  to scikit-learn's bundled 8x8 handwritten digits (``digits_data``, ``digits_loaders``).
* ``LSTMClassifier``: seed 002's recurrent "toxic comment" classifier (embedding -> LSTM -> one logit),
  on ``trigger_sequences``, a generated token data set: a sequence is "toxic" (label 1) when it
  contains the trigger token anywhere, possibly far back from its end.
* ``RNNRegressor``: a vanilla ``nn.RNN`` with a linear read-out, with an optional spectral radius for
  its recurrent matrix, for the exploding-gradient experiment; ``fit_rnn`` trains it on
  ``recall_first_data`` (repeat the first input) with a training-step function it is given.

Plus the glue the notebook needs: ``evaluate_accuracy`` and TensorBoard helpers (``summary_writer``
opens a ``torch.utils.tensorboard.SummaryWriter`` without importing TensorFlow; ``read_scalars``
reads the event files back with TensorBoard's ``EventAccumulator``).

Nothing here clips a gradient: the clipping is what the notebook teaches (``fit_rnn`` calls the
learner's ``train_step``, which does).
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, TensorDataset

from .progress import progress_bar

PAD, TRIGGER = 0, 1
"""Token ids of ``trigger_sequences``: 0 pads, 1 is the trigger ("toxic") token, 2.. are ordinary words."""


# --------------------------------------------------------------------------------------------------
# Digits (seed 000's CNN, offline)
# --------------------------------------------------------------------------------------------------

def digits_data(*, test_size=0.25, seed=0):
    """scikit-learn's 8x8 digits as float32 tensors ``(X_train, X_test, y_train, y_test)``.

    ``X`` has shape (N, 1, 8, 8); the pixel values (0..16) are standardised with the mean and standard
    deviation of the training pixels (standardised inputs train in a few epochs; raw 0..16 or 0..1
    pixels train several times slower). ``y`` holds int64 class labels 0..9. The split is
    stratified and fixed by ``seed`` (1797 images: 1347 / 450 with the default ``test_size``).
    Defined in notebook 05.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size!r}")
    digits = load_digits()
    X = digits.images.astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y)
    mean, std = X_train.mean(), X_train.std()
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return tuple(torch.from_numpy(a) for a in (X_train, X_test, y_train, y_test))


def _loaders(train_tensors, test_tensors, batch_size, seed):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(*train_tensors), batch_size=int(batch_size), shuffle=True,
                       generator=generator)
    test = DataLoader(TensorDataset(*test_tensors), batch_size=512, shuffle=False)
    return train, test


def digits_loaders(*, batch_size=32, test_size=0.25, seed=0):
    """``(train_loader, test_loader)`` over ``digits_data``; the training order is fixed by ``seed``.

    Defined in notebook 05.
    """
    X_train, X_test, y_train, y_test = digits_data(test_size=test_size, seed=seed)
    return _loaders((X_train, y_train), (X_test, y_test), batch_size, seed)


class DigitsCNN(nn.Module):
    """Seed 000's CIFAR-10 ``Net`` resized for 1x8x8 digits: same layer widths (6, 16, 120, 84, 10).

    The 5x5 valid convolutions of the original would shrink an 8x8 image to nothing, so both
    convolutions are 3x3 with padding 1; each 2x2 max-pool halves the side (8 -> 4 -> 2).
    Input (N, 1, 8, 8), output logits (N, 10).
    Defined in notebook 05.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, X):
        if X.ndim != 4 or tuple(X.shape[1:]) != (1, 8, 8):
            raise ValueError(f"DigitsCNN expects images of shape (N, 1, 8, 8), got {tuple(X.shape)}")
        X = self.pool(torch.relu(self.conv1(X)))
        X = self.pool(torch.relu(self.conv2(X)))
        X = torch.flatten(X, 1)
        X = torch.relu(self.fc1(X))
        X = torch.relu(self.fc2(X))
        return self.fc3(X)


# --------------------------------------------------------------------------------------------------
# Generated "toxic comment" tokens (seed 002's LSTM, offline)
# --------------------------------------------------------------------------------------------------

def trigger_sequences(N, *, min_len=10, max_len=40, vocab_size=30, seed=0):
    """A generated token data set: label 1 ("toxic") when the trigger token occurs in the sequence.

    Returns ``X`` (N, max_len) int64 token ids, right-padded with ``PAD`` (0) after each sequence's
    length; ``lengths`` (N,) int64 in [min_len, max_len]; ``y`` (N,) float32 in {0, 1}, half of each
    (rounded down for the 1s), in random order. Ordinary tokens are drawn uniformly from
    2..vocab_size-1; a positive sequence holds exactly one ``TRIGGER`` (1) at a uniformly random
    position, so it is often far from the end: a model that reads the sequence left to right must
    carry that one token across up to ``max_len - 1`` steps.
    Defined in notebook 05.
    """
    if int(N) != N or N < 2:
        raise ValueError(f"N must be an integer >= 2, got {N!r}")
    if int(min_len) != min_len or int(max_len) != max_len or not 1 <= min_len <= max_len:
        raise ValueError(f"need integers 1 <= min_len <= max_len, got min_len={min_len!r}, max_len={max_len!r}")
    if int(vocab_size) != vocab_size or vocab_size < 3:
        raise ValueError(f"vocab_size must be an integer >= 3 (pad, trigger, a word), got {vocab_size!r}")
    N, min_len, max_len = int(N), int(min_len), int(max_len)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=N)
    X = rng.integers(2, vocab_size, size=(N, max_len))
    X[np.arange(max_len)[None, :] >= lengths[:, None]] = PAD
    y = np.zeros(N, dtype=np.float32)
    y[: N // 2] = 1.0
    rng.shuffle(y)
    positive = np.flatnonzero(y)
    where = (rng.random(positive.size) * lengths[positive]).astype(np.int64)
    X[positive, where] = TRIGGER
    return X.astype(np.int64), lengths.astype(np.int64), y


def trigger_position_from_end(X):
    """For each row of ``X`` from ``trigger_sequences``: how many tokens follow the trigger (-1: none).

    Defined in notebook 05.
    """
    X = np.asarray(X)
    lengths = (X != PAD).sum(axis=1)
    has = (X == TRIGGER).any(axis=1)
    first = np.argmax(X == TRIGGER, axis=1)
    return np.where(has, lengths - 1 - first, -1)


def trigger_loaders(N_train=2000, N_test=500, *, batch_size=64, seed=0, **kwargs):
    """``(train_loader, test_loader)`` of ``(X, y)`` batches from ``trigger_sequences``.

    Train and test sets come from different seeds (``seed`` and ``seed + 1``); extra keyword
    arguments (``min_len``, ``max_len``, ``vocab_size``) go to ``trigger_sequences``.
    Defined in notebook 05.
    """
    X_tr, _, y_tr = trigger_sequences(N_train, seed=seed, **kwargs)
    X_te, _, y_te = trigger_sequences(N_test, seed=seed + 1, **kwargs)
    train = (torch.from_numpy(X_tr), torch.from_numpy(y_tr))
    test = (torch.from_numpy(X_te), torch.from_numpy(y_te))
    return _loaders(train, test, batch_size, seed)


class LSTMClassifier(nn.Module):
    """Seed 002's recurrent text classifier: embedding -> LSTM -> linear, one logit per sequence.

    The seed calls ``model(feature, batch_length)``; here the lengths are read from the padding
    (``PAD`` = 0 after each sequence), so the model takes the padded token ids alone, ``(N, T)``
    int64, and returns logits of shape (N,) (use ``nn.BCEWithLogitsLoss``). Padded steps are packed
    away (``pack_padded_sequence``), so the final state is the state after each sequence's last token.
    Defined in notebook 05.
    """

    def __init__(self, vocab_size=30, embed_dim=16, num_hiddens=32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, num_hiddens, batch_first=True)
        self.fc = nn.Linear(num_hiddens, 1)

    def forward(self, X):
        if X.ndim != 2 or X.dtype != torch.int64:
            raise ValueError(f"LSTMClassifier expects int64 token ids of shape (N, T), got "
                             f"{X.dtype} of shape {tuple(X.shape)}")
        lengths = (X != PAD).sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(X), lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.fc(h_n[-1]).squeeze(-1)


# --------------------------------------------------------------------------------------------------
# Vanilla RNN (the exploding-gradient experiment)
# --------------------------------------------------------------------------------------------------

class RNNRegressor(nn.Module):
    """``nn.RNN`` (tanh) with a linear read-out of the last hidden state: input (N, T, D), output (N, 1).

    ``spectral_radius``, when given, rescales the recurrent matrix ``rnn.weight_hh_l0`` after
    PyTorch's default initialisation so that its largest absolute eigenvalue is that value (the
    knob of notebook 02: above 1 the backward pass multiplies the gradient by a growing product).
    """

    def __init__(self, input_size=2, num_hiddens=32, *, spectral_radius=None, nonlinearity="tanh"):
        super().__init__()
        self.rnn = nn.RNN(input_size, num_hiddens, batch_first=True, nonlinearity=nonlinearity)
        self.fc = nn.Linear(num_hiddens, 1)
        if spectral_radius is not None:
            if not spectral_radius > 0:
                raise ValueError(f"spectral_radius must be positive, got {spectral_radius!r}")
            with torch.no_grad():
                W = self.rnn.weight_hh_l0
                W.mul_(spectral_radius / torch.linalg.eigvals(W).abs().max())

    def forward(self, X):
        if X.ndim != 3:
            raise ValueError(f"RNNRegressor expects inputs of shape (N, T, D), got {tuple(X.shape)}")
        outputs, _ = self.rnn(X)
        return self.fc(outputs[:, -1])


def recall_first_data(T=20, *, N_train=1024, N_test=512, seed=0, device="cpu"):
    """``(X_train, y_train, X_test, y_test)``: float32 tensors of ``gradlab.data.recall_first``.

    The task of ``fit_rnn``: repeat the first of ``T`` inputs. Train and test sets come from
    different seeds (``seed`` and ``seed + 1``).
    Defined in notebook 05.
    """
    from .data import recall_first

    train = recall_first(N_train, T, seed=seed, dtype=np.float32)
    test = recall_first(N_test, T, seed=seed + 1, dtype=np.float32)
    return tuple(torch.from_numpy(a).to(device) for a in (*train, *test))


class _Threads:
    """Run a block with ``num`` torch threads (tiny models run faster on one), then restore the count."""

    def __init__(self, num):
        self.num, self.saved = num, None

    def __enter__(self):
        if self.num is not None:
            self.saved = torch.get_num_threads()
            torch.set_num_threads(int(self.num))

    def __exit__(self, *exc):
        if self.saved is not None:
            torch.set_num_threads(self.saved)


def fit_rnn(train_step, max_norm, *, lr=0.1, spectral_radius=1.5, num_steps=300, T=20, batch_size=64,
            num_hiddens=32, seed=0, device="cpu", data=None, progress=False, num_threads=1):
    """Train an ``RNNRegressor`` on ``recall_first`` with SGD, one ``train_step`` call per mini-batch.

    ``train_step(model, optimizer, loss_fn, X, y, max_norm) -> (loss, grad_norm)`` is the step to use
    (the learner's, in notebook 05: this function does no clipping itself); ``max_norm=inf`` means no
    clipping. The model (``num_hiddens`` tanh units, recurrent matrix of spectral radius
    ``spectral_radius``), the data (``recall_first_data(T, seed=seed)`` unless ``data`` gives the four
    tensors) and the mini-batch order are all fixed by ``seed``; the global torch RNG is left as it was.
    Training stops at the first non-finite loss. ``progress``: True, a label or an existing bar for
    a ``tqdm.auto`` bar over the steps that reaches its end also when the run stops early
    (``gradlab.progress.progress_bar``).

    Returns ``(losses, norms, test_mse)``: the loss and pre-clipping gradient norm of every step taken
    (float64 arrays; a diverged run is shorter than ``num_steps`` and ends with its non-finite loss)
    and the held-out MSE of the final weights (NaN or Inf for ruined weights).
    """
    if not callable(train_step):
        raise TypeError(f"train_step must be a function (the one you wrote in the notebook), got {train_step!r}")
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive (inf: no clipping), got {max_norm!r}")
    X_all, y_all, X_te, y_te = data if data is not None else recall_first_data(T, seed=seed, device=device)
    with _Threads(num_threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = RNNRegressor(X_all.shape[-1], num_hiddens, spectral_radius=spectral_radius).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        batches = torch.Generator().manual_seed(seed)
        loss_fn = nn.MSELoss()
        label = f"RNN, max_norm={max_norm}" if progress is True else progress
        losses, norms = [], []
        with progress_bar(label, int(num_steps)) as bar:
            for _ in range(int(num_steps)):
                bar.update(1)
                idx = torch.randint(0, len(X_all), (batch_size,), generator=batches).to(X_all.device)
                loss, norm = train_step(model, optimizer, loss_fn, X_all[idx], y_all[idx], max_norm)
                losses.append(float(loss))
                norms.append(float(norm))
                if not math.isfinite(losses[-1]):
                    break
        with torch.no_grad():
            test_mse = nn.functional.mse_loss(model(X_te), y_te).item()
    return np.array(losses), np.array(norms), test_mse


# --------------------------------------------------------------------------------------------------
# Evaluation and TensorBoard
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_accuracy(model, loader, device="cpu"):
    """Fraction of correct predictions of ``model`` over ``loader``'s ``(X, y)`` batches.

    Logits of shape (N, C) are read as C-class scores (argmax); logits of shape (N,) as one binary
    logit (positive means class 1). The model is put in eval mode and back in the mode it had.
    Defined in notebook 05.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            logits = model(X)
            pred = logits.argmax(dim=1) if logits.ndim == 2 else (logits > 0).to(y.dtype)
            correct += (pred == y).sum().item()
            total += y.numel()
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("the loader yielded no examples")
    return correct / total


def summary_writer(log_dir, **kwargs):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing to ``log_dir``, without importing TensorFlow.

    TensorBoard imports TensorFlow for file access when it can find it (seconds of start-up, and
    log lines on stderr). When TensorFlow is not imported yet, an empty ``tensorboard.compat.notf``
    module is registered first (TensorBoard's own switch), so that TensorBoard uses its bundled file
    layer, which is all a local log directory needs; the event files are the same. TensorBoard
    makes that choice once per process, so ``tf.summary`` is unavailable in a process that imports
    TensorFlow only after this call (notebook 05 never does). If TensorFlow is already imported,
    nothing is changed.
    """
    if "tensorflow" not in sys.modules and "tensorboard.compat.notf" not in sys.modules:
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir), **kwargs)


def read_scalars(log_dir):
    """Every scalar in the TensorBoard event files of ``log_dir``: ``{tag: (steps, values)}`` arrays.

    Uses TensorBoard's own ``EventAccumulator`` (what the TensorBoard UI reads), keeping every
    point (no reservoir sampling). Raises ``FileNotFoundError`` when ``log_dir`` holds no event file.
    Defined in notebook 05.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    log_dir = Path(log_dir)
    if not log_dir.is_dir() or not any(log_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event file in {log_dir}")
    accumulator = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()[SCALARS]:
        events = accumulator.Scalars(tag)
        scalars[tag] = (np.array([e.step for e in events], dtype=np.int64),
                        np.array([e.value for e in events], dtype=np.float64))
    return scalars
