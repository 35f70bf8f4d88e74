"""gradlab.torch_models: the seeds' PyTorch models, their offline data, and the TensorBoard helpers."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from gradlab import torch_models as tm
from torch import nn

# ------------------------------------------------------------------ digits


def test_digits_data_shapes_split_and_standardisation():
    """digits_data: (N, 1, 8, 8) float32 images, a stratified 1347/450 split, train pixels standardised."""
    X_train, X_test, y_train, y_test = tm.digits_data()
    assert X_train.shape == (1347, 1, 8, 8) and X_test.shape == (450, 1, 8, 8)
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert abs(X_train.mean().item()) < 1e-4 and abs(X_train.std().item() - 1) < 1e-3
    assert set(y_test.tolist()) == set(range(10))
    train_share = np.bincount(y_train.numpy(), minlength=10) / len(y_train)
    test_share = np.bincount(y_test.numpy(), minlength=10) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)  # stratified


def test_digits_data_is_deterministic_and_seeded():
    """The same seed gives the same split; another seed another split."""
    a, b, c = tm.digits_data(seed=0), tm.digits_data(seed=0), tm.digits_data(seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("test_size", [0, 1, -0.5, 1.5])
def test_digits_data_rejects_bad_test_size(test_size):
    """A test_size outside (0, 1) is refused with a clear message."""
    with pytest.raises(ValueError, match="test_size"):
        tm.digits_data(test_size=test_size)


def test_digits_loaders_batches_and_fixed_order():
    """digits_loaders yields (X, y) batches; the shuffled order is fixed by the seed."""
    train, test = tm.digits_loaders(batch_size=32, seed=0)
    X, y = next(iter(train))
    assert X.shape == (32, 1, 8, 8) and y.shape == (32,)
    assert sum(len(y) for _, y in test) == 450
    again, _ = tm.digits_loaders(batch_size=32, seed=0)
    assert torch.equal(next(iter(again))[1], y)
    with pytest.raises(ValueError, match="batch_size"):
        tm.digits_loaders(batch_size=0)


def test_digits_cnn_shapes_and_input_check():
    """DigitsCNN maps (N, 1, 8, 8) to (N, 10) logits, keeps seed 000's widths, and refuses other shapes."""
    model = tm.DigitsCNN()
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    widths = [model.conv1.out_channels, model.conv2.out_channels, model.fc1.out_features,
              model.fc2.out_features, model.fc3.out_features]
    assert widths == [6, 16, 120, 84, 10]
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        model(torch.zeros(5, 3, 32, 32))


# ------------------------------------------------------------------ trigger tokens


def test_trigger_sequences_labels_match_the_trigger():
    """Label 1 exactly when the trigger occurs (once); tokens are padded after each length; classes balanced."""
    X, lengths, y = tm.trigger_sequences(400, min_len=5, max_len=40, vocab_size=20, seed=3)
    assert X.shape == (400, 40) and X.dtype == np.int64 and y.dtype == np.float32
    assert lengths.min() >= 5 and lengths.max() <= 40
    positions = np.arange(40)[None, :]
    assert (X[positions >= lengths[:, None]] == tm.PAD).all(), "padding after the length"
    assert (X[positions < lengths[:, None]] != tm.PAD).all(), "no padding inside a sequence"
    assert X.max() < 20
    count = (X == tm.TRIGGER).sum(axis=1)
    assert np.array_equal(count, y.astype(int)), "one trigger in each positive, none in negatives"
    assert y.sum() == 200


def test_trigger_sequences_put_the_trigger_far_back_too():
    """Trigger positions spread over the whole sequence, many far from its end."""
    X, lengths, y = tm.trigger_sequences(2000, min_len=10, max_len=40, seed=0)
    from_end = tm.trigger_position_from_end(X)
    assert np.array_equal(from_end < 0, y == 0)
    assert (from_end[y == 1] >= 20).mean() > 0.15
    assert (from_end[y == 1] == 0).any()
    assert np.all(from_end[y == 1] <= lengths[y == 1] - 1)


def test_trigger_position_from_end_by_hand():
    """trigger_position_from_end counts the tokens after the trigger, -1 when there is none."""
    X = np.array([[2, 1, 3, 4, 0], [2, 3, 4, 1, 0], [2, 3, 0, 0, 0], [1, 0, 0, 0, 0]])
    assert tm.trigger_position_from_end(X).tolist() == [2, 0, -1, 0]


def test_trigger_sequences_deterministic_and_checked():
    """Same seed, same data; bad arguments raise ValueError naming the argument."""
    a, b = tm.trigger_sequences(50, seed=1), tm.trigger_sequences(50, seed=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], tm.trigger_sequences(50, seed=2)[0])
    for kwargs, word in [({"N": 1}, "N"), ({"N": 10, "min_len": 5, "max_len": 4}, "min_len"),
                         ({"N": 10, "vocab_size": 2}, "vocab_size"), ({"N": 2.5}, "N")]:
        with pytest.raises(ValueError, match=word):
            tm.trigger_sequences(**kwargs)


def test_trigger_loaders_use_different_seeds_for_train_and_test():
    """trigger_loaders: int64 tokens and float32 labels; test data is not a copy of the training data."""
    train, test = tm.trigger_loaders(100, 60, batch_size=20, max_len=25)
    X, y = next(iter(train))
    assert X.dtype == torch.int64 and X.shape == (20, 25) and y.dtype == torch.float32
    X_train, X_test = train.dataset.tensors[0], test.dataset.tensors[0]
    assert len(X_test) == 60 and not torch.equal(X_train[:60], X_test)


def test_lstm_classifier_ignores_padding():
    """LSTMClassifier returns one logit per sequence, the same however much padding follows."""
    torch.manual_seed(0)
    model = tm.LSTMClassifier(vocab_size=30).eval()
    X = torch.from_numpy(tm.trigger_sequences(8, min_len=1, max_len=12, seed=0)[0])
    padded = torch.cat([X, torch.zeros(8, 7, dtype=torch.int64)], dim=1)
    out = model(X)
    assert out.shape == (8,)
    torch.testing.assert_close(model(padded), out)
    with pytest.raises(ValueError, match="int64"):
        model(X.float())


def test_lstm_classifier_uses_the_last_real_token():
    """The logit depends on the tokens inside the length (here: only the trigger's place changes)."""
    torch.manual_seed(0)
    model = tm.LSTMClassifier().eval()
    a = torch.tensor([[tm.TRIGGER, 2, 3, 0], [2, 3, tm.TRIGGER, 0]])
    out = model(a)
    assert not torch.isclose(out[0], out[1])


# ------------------------------------------------------------------ vanilla RNN


@pytest.mark.parametrize("rho", [0.5, 1.5])
def test_rnn_regressor_spectral_radius(rho):
    """RNNRegressor rescales weight_hh_l0 to the requested spectral radius; output (N, 1)."""
    torch.manual_seed(0)
    model = tm.RNNRegressor(2, 16, spectral_radius=rho)
    radius = torch.linalg.eigvals(model.rnn.weight_hh_l0.detach()).abs().max().item()
    assert radius == pytest.approx(rho, rel=1e-5)
    assert model(torch.zeros(4, 7, 2)).shape == (4, 1)


def test_rnn_regressor_checks_its_input():
    """A non-positive spectral radius or a 2-D input is refused."""
    with pytest.raises(ValueError, match="spectral_radius"):
        tm.RNNRegressor(spectral_radius=0)
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        tm.RNNRegressor()(torch.zeros(4, 2))


def test_rnn_regressor_explodes_without_clipping_and_not_with():
    """The notebook's 6c in small: rho = 1.5, SGD lr = 0.1 goes non-finite unclipped and stays finite clipped."""
    from gradlab.data import recall_first

    X, y = (torch.from_numpy(a) for a in recall_first(256, 20, seed=0, dtype=np.float32))

    def run(max_norm):
        torch.manual_seed(0)
        model = tm.RNNRegressor(1, 32, spectral_radius=1.5)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(0)
        for _ in range(150):
            idx = torch.randint(0, 256, (64,), generator=g)
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(X[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            if not torch.isfinite(loss):
                return False
        return True

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread avoids oversubscription on a busy machine
    try:
        assert not run(float("inf"))
        assert run(1.0)
    finally:
        torch.set_num_threads(threads)


def _step(model, optimizer, loss_fn, X, y, max_norm):
    """A reference training step (notebook 05's exercise 3, written here: gradlab does not hold it)."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=2)
    optimizer.step()
    return loss.item(), norm.item()


def test_recall_first_data_float32_and_separate_test_set():
    """recall_first_data: float32 (N, T, 1) inputs, y = the first input; the test set comes from seed + 1."""
    X, y, X_te, y_te = tm.recall_first_data(7, N_train=16, N_test=8, seed=3)
    assert X.shape == (16, 7, 1) and y.shape == (16, 1) and X_te.shape == (8, 7, 1)
    assert X.dtype == torch.float32 and torch.equal(y, X[:, 0])
    assert torch.equal(X_te, tm.recall_first_data(7, N_train=8, N_test=8, seed=4)[0])


def test_fit_rnn_calls_the_step_it_is_given_and_stops_at_the_first_nonfinite_loss():
    """fit_rnn: one train_step call per step with the given max_norm; an unclipped rho = 1.5 run stops at Inf/NaN."""
    calls = []

    def spy(*args):
        calls.append(args[-1])
        return _step(*args)

    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    losses, norms, test_mse = tm.fit_rnn(spy, 1.0, num_steps=40)
    assert calls == [1.0] * 40 and losses.shape == norms.shape == (40,)
    assert np.isfinite(losses).all() and np.isfinite(test_mse)
    assert torch.equal(torch.random.get_rng_state(), state), "the global torch RNG is left alone"
    assert torch.get_num_threads() == threads, "the thread count is restored"

    losses, norms, test_mse = tm.fit_rnn(_step, float("inf"), num_steps=300)
    assert len(losses) < 300 and not np.isfinite(losses[-1]) and np.isfinite(losses[:-1]).all()
    assert not np.isfinite(test_mse)


def test_fit_rnn_progress_bar_reaches_its_end_when_the_run_diverges(monkeypatch):
    """fit_rnn(progress=True): a tqdm.auto bar over the steps, brought to its end and closed after an early stop."""
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, total=None, desc=None, leave=True):
            self.total, self.n, self.closed = total, 0, False
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    losses, _, _ = tm.fit_rnn(_step, float("inf"), num_steps=300, progress=True)
    assert len(losses) < 300, "the unclipped run should stop early for this test to mean anything"
    (bar,) = bars
    assert bar.total == 300 and bar.n == 300 and bar.closed


def test_fit_rnn_is_deterministic_per_seed_and_checks_its_arguments():
    """The same seed gives the same run, another seed another; a non-callable or bad setting is refused."""
    a, b, c = (tm.fit_rnn(_step, 1.0, num_steps=5, seed=s) for s in (0, 0, 1))
    assert np.array_equal(a[0], b[0]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(TypeError, match="train_step"):
        tm.fit_rnn(None, 1.0)
    for kwargs, word in [({"max_norm": 0.0}, "max_norm"), ({"lr": -1.0}, "lr"), ({"num_steps": 0}, "num_steps")]:
        with pytest.raises(ValueError, match=word):
            tm.fit_rnn(_step, **{"max_norm": 1.0, **kwargs})


# ------------------------------------------------------------------ evaluation


class _Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, X):
        return self.logits[X.long().flatten()]


def test_evaluate_accuracy_multiclass_and_binary():
    """Argmax for (N, C) logits, sign for (N,) logits; the model's train/eval mode is restored."""
    index = torch.arange(4).float()[:, None]
    multi = _Fixed(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]]))
    loader = [(index, torch.tensor([0, 1, 1, 1]))]
    assert tm.evaluate_accuracy(multi, loader) == 0.75
    binary = _Fixed(torch.tensor([1.0, -1.0, 0.5, -0.5])).train()
    assert tm.evaluate_accuracy(binary, [(index, torch.tensor([1.0, 0.0, 0.0, 0.0]))]) == 0.75
    assert binary.training
    with pytest.raises(ValueError, match="no examples"):
        tm.evaluate_accuracy(binary, [])


# ------------------------------------------------------------------ TensorBoard


def test_read_scalars_without_event_file(tmp_path):
    """An empty or missing log directory raises FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        tm.read_scalars(tmp_path)
    with pytest.raises(FileNotFoundError):
        tm.read_scalars(tmp_path / "missing")


def test_summary_writer_and_read_scalars_round_trip(tmp_path):
    """In a fresh process: scalars written with SummaryWriter come back exactly; TensorFlow stays unimported.

    A subprocess, because TensorBoard picks its file layer once per process (see ``summary_writer``).
    """
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from gradlab import torch_models as tm

        losses, norms = np.linspace(2.0, 0.1, 25), np.geomspace(0.01, 100.0, 25)
        with tm.summary_writer({str(tmp_path / "run")!r}) as writer:
            for step, (loss, norm) in enumerate(zip(losses, norms)):
                writer.add_scalar("loss/train", loss, step)
                writer.add_scalar("grad_norm/before_clipping", norm, step)
        scalars = tm.read_scalars({str(tmp_path / "run")!r})
        assert set(scalars) == {{"loss/train", "grad_norm/before_clipping"}}, set(scalars)
        for tag, expected in [("loss/train", losses), ("grad_norm/before_clipping", norms)]:
            steps, values = scalars[tag]
            assert np.array_equal(steps, np.arange(25)), steps
            np.testing.assert_allclose(values, expected, rtol=1e-6)  # float32 in the event file
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr: {proc.stderr}"


def test_summary_writer_leaves_tensorboard_alone_once_tensorflow_is_imported(tmp_path):
    """With TensorFlow already imported, summary_writer does not switch TensorBoard to its stub."""
    script = textwrap.dedent(f"""
        import sys, types
        sys.modules["tensorflow"] = types.ModuleType("tensorflow")   # stands in for an imported TF
        from gradlab import torch_models as tm
        try:
            tm.summary_writer({str(tmp_path)!r}).close()
        except Exception:
            pass   # the stand-in has no file layer; only the switch matters here
        assert "tensorboard.compat.notf" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
