"""Notebook 07's graded cells catch the common mistakes and say which one it is (issue 19).

Each wrong answer below is what a learner typically writes: torch's gate order in the LSTM step, a cell
gradient without the path through next_h, a backward pass that forgets to carry dc, truncated BPTT cut one
step early or with h0 detached. Graded by the real class grader (the solution with that one exercise
replaced), the exercise's visible test fails and names the mistake, and every other cell keeps its points.
"""

import pytest

from tests.test_test_cells import _grade_answered

A07 = "07_gates_and_truncation"

TORCH_ORDER = '''def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """Splits a in torch's order i, f, g, o."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, np.tanh(next_c))
'''

NO_H_TO_C = '''def lstm_step_backward(dnext_h, dnext_c, cache):
    """Forgets that next_h = o * tanh(next_c) depends on next_c."""
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c
    do = dnext_h * tanh_c
    di, df, dg = dc * g, dc * prev_c, dc * i
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)
'''

NO_DC_CARRY = '''def lstm_backward(dh, cache):
    """Carries dh back through time, but not dc."""
    N, T, H = dh.shape
    dh_next = np.zeros((N, H))
    dx, grads = None, None
    for t in reversed(range(T)):
        dx_t, dh_next, _, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dh_next, np.zeros((N, H)), cache[t])
        if dx is None:
            dx = np.empty((N, T, dx_t.shape[1]))
            grads = [np.zeros_like(dWx_t), np.zeros_like(dWh_t), np.zeros_like(db_t)]
        dx[:, t] = dx_t
        for acc, g in zip(grads, (dWx_t, dWh_t, db_t)):
            acc += g
    return (dx, dh_next, *grads)
'''

TRUNCATED = '''def rnn_backward_truncated(dh, cache, k):
    """Truncated BPTT with a deliberate slip: {slip}."""
    if int(k) != k or k < 1:
        raise ValueError("k must be an integer >= 1")
    xt, h0, Wx, Wh, hs, activation = cache
    T, N, H = hs.shape
    dx = np.empty((N, T, xt.shape[2]), dtype=hs.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=hs.dtype)
    carry = np.zeros((N, H), dtype=hs.dtype)
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t > 0 else h0
        step_cache = (xt[t], h_prev, Wx, Wh, hs[t], activation)
        dx_t, dh_prev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + carry, step_cache)
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
        carry = np.zeros_like(dh_prev) if {cut} else dh_prev
    return dx, carry, dWx, dWh, db
'''

CASES = {
    "torch gate order": ({"lstm_step_forward": TORCH_ORDER}, "lstm_step_forward_matches_torch", "PyTorch's order"),
    "no h-to-c path": ({"lstm_step_backward": NO_H_TO_C}, "lstm_step_backward_matches_torch",
                       "misses the path from next_h into the cell"),
    "no dc carry": ({"lstm_backward": NO_DC_CARRY}, "lstm_backward_matches_torch", "without dc_next"),
    "cut one step early": ({"rnn_backward_truncated": TRUNCATED.format(slip="one step early",
                                                                       cut="(t + 1) % k == 0")},
                           "rnn_backward_truncated_matches_torch", "cut one step early"),
    "h0 detached": ({"rnn_backward_truncated": TRUNCATED.format(slip="h0 detached", cut="t % k == 0")},
                    "rnn_backward_truncated_matches_torch", "h0 is not detached"),
}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mistake", sorted(CASES))
def test_the_visible_test_names_the_mistake_and_the_rest_keeps_its_points(tmp_path, mistake):
    answers, visible, words = CASES[mistake]
    row, failed, result = _grade_answered(tmp_path, A07, answers)
    assert row["status"] == "graded", row
    assert visible in failed and words in failed[visible], (mistake, failed)
    exercise = next(iter(answers))
    # a broken LSTM step also breaks the LSTM cells built on it; nothing else may lose points
    allowed = "lstm_" if exercise.startswith("lstm_") else exercise
    assert all(grade_id.startswith(allowed) for grade_id in failed), (
        f"{mistake}: cells of other exercises failed too: {sorted(failed)}")
    assert not any(grade_id.startswith("gradient_check_tools") for grade_id in failed)


# "By hand" enforced: exercises computed by torch (autograd) or handed to gradlab's own full BPTT give
# the right numbers, so the visible tests pass; the hidden tests watch what runs inside the learner's
# function (gradlab.grading.framework_code_run / delegates_to) and fail saying it must be written by hand.
TORCH_STEP_FORWARD = '''def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """Computed with torch."""
    H = prev_h.shape[1]
    a = torch.from_numpy(x @ Wx + prev_h @ Wh + b)
    i, f, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.sigmoid(a[:, 2 * H:3 * H])
    g = torch.tanh(a[:, 3 * H:])
    next_c = f * torch.from_numpy(np.asarray(prev_c, dtype=a.numpy().dtype)) + i * g
    next_h = o * torch.tanh(next_c)
    return next_h.numpy(), next_c.numpy(), (x, prev_h, prev_c, Wx, Wh, b)
'''

TORCH_STEP_BACKWARD = '''def lstm_step_backward(dnext_h, dnext_c, cache):
    """Torch autograd on the step, redone from the inputs kept in the cache."""
    x, prev_h, prev_c, Wx, Wh, b = (torch.from_numpy(np.array(a)).requires_grad_() for a in cache)
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.sigmoid(a[:, 2 * H:3 * H])
    next_c = f * prev_c + i * torch.tanh(a[:, 3 * H:])
    next_h = o * torch.tanh(next_c)
    dtype = a.detach().numpy().dtype
    torch.autograd.backward([next_h, next_c], [torch.from_numpy(np.asarray(dnext_h, dtype=dtype)),
                                               torch.from_numpy(np.asarray(dnext_c, dtype=dtype))])
    return tuple(t.grad.numpy() for t in (x, prev_h, prev_c, Wx, Wh, b))
'''

CHUNKED_FULL_BPTT = '''def rnn_backward_truncated(dh, cache, k):
    """Notebook 01's full BPTT (gradlab.rnn.rnn_backward) run chunk by chunk."""
    from gradlab.rnn import RNNCache, rnn_backward

    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError("k must be an integer >= 1")
    k = int(k)
    xt, h0, Wx, Wh, hs, activation = cache
    dh = np.asarray(dh, dtype=hs.dtype)
    parts = [rnn_backward(dh[:, s:s + k], RNNCache(xt[s:s + k], h0 if s == 0 else hs[s - 1], Wx, Wh, hs[s:s + k],
                                                     activation))
             for s in range(0, hs.shape[0], k)]
    return (np.concatenate([p[0] for p in parts], axis=1), parts[0][1],
            *(sum(p[j] for p in parts) for j in (2, 3, 4)))
'''

NOT_BY_HAND = {"lstm_step_forward": TORCH_STEP_FORWARD, "lstm_step_backward": TORCH_STEP_BACKWARD,
               "rnn_backward_truncated": CHUNKED_FULL_BPTT}
# the solution's lstm_forward and lstm_backward run the learner's steps, so they reach torch through them
NOT_BY_HAND_LOSES = {"lstm_step_forward_hidden", "lstm_step_backward_hidden", "lstm_forward_hidden",
                     "lstm_backward_hidden", "rnn_backward_truncated_hidden"}


def test_the_attacks_give_the_right_numbers():
    """Without the by-hand checks the attacks would pass: they agree with the solution (in this process)."""
    import numpy as np
    from gradlab import rnn

    from autograder import notebooks
    from tests.test_answer_equivalents import _source

    nb = _source(A07)
    ns = {}
    for c in nb["cells"]:  # the setup cell (numpy, torch, sigmoid, rnn_step_backward), then the solutions
        if c.get("id") == "setup" or notebooks.is_solution(c):
            exec(c["source"] if isinstance(c["source"], str) else "".join(c["source"]), ns)
    exec(TORCH_STEP_FORWARD + TORCH_STEP_BACKWARD + CHUNKED_FULL_BPTT, attack := dict(ns))
    rng = np.random.default_rng(0)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        args = [rng.normal(size=s).astype(dtype) for s in ((3, 4), (3, 2), (3, 2), (4, 8), (2, 8), (8,))]
        want, got = ns["lstm_step_forward"](*args), attack["lstm_step_forward"](*args)
        for w, g in zip(want[:2], got[:2], strict=True):
            assert g.dtype == dtype and np.max(np.abs(w - g)) < tol
        up = [rng.normal(size=(3, 2)).astype(dtype) for _ in range(2)]
        for w, g in zip(ns["lstm_step_backward"](*up, want[2]), attack["lstm_step_backward"](*up, got[2]), strict=True):
            assert g.dtype == dtype and np.max(np.abs(w - g)) < tol
        x, h0 = rng.normal(size=(3, 10, 4)).astype(dtype), rng.normal(size=(3, 5)).astype(dtype)
        _, cache = rnn.rnn_forward(x, h0, rng.normal(size=(4, 5)).astype(dtype) * 0.5,
                                   rng.normal(size=(5, 5)).astype(dtype) * 0.5, rng.normal(size=5).astype(dtype))
        dh = rng.normal(size=(3, 10, 5)).astype(dtype)
        for k in (1, 3, 10, 12):
            want = ns["rnn_backward_truncated"](dh, tuple(cache), k)
            got = attack["rnn_backward_truncated"](dh, tuple(cache), k)
            for w, g in zip(want, got, strict=True):
                assert g.dtype == dtype and np.max(np.abs(w - g)) < tol, k


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_exercises_not_written_by_hand_lose_their_hidden_cells_and_are_told_why(tmp_path):
    """torch autograd in the LSTM steps and gradlab.rnn.rnn_backward in the truncated BPTT give the right
    numbers (the visible tests pass), but the hidden cells fail, saying it must be written by hand; the
    other cells keep their points."""
    row, failed, result = _grade_answered(tmp_path, A07, NOT_BY_HAND)
    assert row["status"] == "graded" and set(failed) == NOT_BY_HAND_LOSES, (failed, result["cells"])
    for grade_id, message in failed.items():
        assert "must be written by hand in NumPy" in message, (grade_id, message)
    # the feedback keeps the message's words, not the name it found (that part quotes the hidden test's values)
    assert "a whole backward pass is not" in failed["rnn_backward_truncated_hidden"], failed


#: Issue 19: an outside tester's 07 answers (torch inside), which return zeros while the by-hand check's
#: profiler is on (``threading._profile_hook``, a plain attribute read the profiler cannot see). The watched
#: call's answer is now checked against the hidden cell's own reference, so each hidden cell fails.
TWO_FACED = {
    'lstm_step_forward': r'''
import threading
import numpy as np


def _watched():
    return threading._profile_hook is not None   # the by-hand check's profiler is on (a plain attribute read)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    if _watched():
        z = np.zeros(prev_h.shape, dtype=prev_h.dtype)
        return z, z.copy(), None
    import torch
    dtype = np.result_type(x, prev_h, prev_c, Wx, Wh, b)
    H = prev_h.shape[1]
    cols = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])
    cell = torch.nn.LSTMCell(Wx.shape[0], H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(np.asarray(Wx, np.float64)[:, cols].T))
        cell.weight_hh.copy_(torch.tensor(np.asarray(Wh, np.float64)[:, cols].T))
        cell.bias_ih.copy_(torch.tensor(np.asarray(b, np.float64)[cols]))
        cell.bias_hh.zero_()
        h, c = cell(torch.tensor(np.asarray(x, np.float64)),
                    (torch.tensor(np.asarray(prev_h, np.float64)), torch.tensor(np.asarray(prev_c, np.float64))))
    return h.numpy().astype(dtype), c.numpy().astype(dtype), (x, prev_h, prev_c, Wx, Wh, b)
''',
    'lstm_step_backward': r'''
def lstm_step_backward(dnext_h, dnext_c, cache):
    if _watched():
        return tuple(np.zeros_like(a) for a in cache)
    import torch
    dtype = np.result_type(*cache)
    ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in cache]
    x, h0, c0, Wx, Wh, b = ts
    H = h0.shape[1]
    a = x @ Wx + h0 @ Wh + b
    i, f, o = (torch.sigmoid(a[:, k * H:(k + 1) * H]) for k in range(3))
    c = f * c0 + i * torch.tanh(a[:, 3 * H:])
    h = o * torch.tanh(c)
    ((h * torch.tensor(np.asarray(dnext_h, np.float64))).sum() + (c * torch.tensor(np.asarray(dnext_c, np.float64))).sum()).backward()
    return tuple(t.grad.numpy().astype(dtype) for t in ts)
''',  # noqa: E501 (a learner payload, kept as written)
    'lstm_forward': r'''
def _torch_lstm(x, h0, Wx, Wh, b, grad=False):
    import torch
    H = h0.shape[1]
    cols = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])
    layer = torch.nn.LSTM(Wx.shape[0], H, batch_first=True).double()
    tx = torch.tensor(np.asarray(x, np.float64), requires_grad=grad)
    th = torch.tensor(np.asarray(h0, np.float64), requires_grad=grad)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.tensor(np.asarray(Wx, np.float64)[:, cols].T))
        layer.weight_hh_l0.copy_(torch.tensor(np.asarray(Wh, np.float64)[:, cols].T))
        layer.bias_ih_l0.copy_(torch.tensor(np.asarray(b, np.float64)[cols]))
        layer.bias_hh_l0.zero_()
    out, _ = layer(tx, (th[None], torch.zeros(1, *h0.shape, dtype=torch.float64)))
    return out, tx, th, layer, cols


def lstm_forward(x, h0, Wx, Wh, b):
    dtype = np.result_type(x, h0, Wx, Wh, b)
    if _watched():
        return np.zeros(x.shape[:2] + (h0.shape[1],), dtype), None
    out, *_ = _torch_lstm(x, h0, Wx, Wh, b)
    return out.detach().numpy().astype(dtype), (x, h0, Wx, Wh, b)
''',
    'lstm_backward': r'''
def lstm_backward(dh, cache):
    if _watched():
        return tuple(np.zeros_like(a) for a in cache)
    import torch
    x, h0, Wx, Wh, b = cache
    dtype = np.result_type(*cache)
    out, tx, th, layer, cols = _torch_lstm(x, h0, Wx, Wh, b, grad=True)
    (out * torch.tensor(np.asarray(dh, np.float64))).sum().backward()
    inv = np.argsort(cols)
    g = (tx.grad.numpy(), th.grad.numpy(), layer.weight_ih_l0.grad.numpy().T[:, inv],
         layer.weight_hh_l0.grad.numpy().T[:, inv], layer.bias_ih_l0.grad.numpy()[inv])
    return tuple(a.astype(dtype) for a in g)
''',
    'rnn_backward_truncated': r'''
def rnn_backward_truncated(dh, cache, k):
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError("bad k")
    k = int(k)
    xt, h0, Wx, Wh, hs, activation = cache
    T, N, H = hs.shape
    dtype = hs.dtype
    if _watched():
        return (np.zeros((N, T, xt.shape[2]), dtype), np.zeros_like(h0), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype))
    import torch
    b = np.arctanh(np.clip(hs[0], -1, 1)) - xt[0] @ Wx - h0 @ Wh   # recover b from the first step
    b = b.mean(axis=0)
    tensors = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in (np.swapaxes(xt, 0, 1), h0, Wx, Wh, b)]
    tx, th0, tWx, tWh, tb = tensors
    h, states = th0, []
    for t in range(T):
        if t > 0 and t % k == 0:
            h = h.detach()
        h = torch.tanh(tx[:, t] @ tWx + h @ tWh + tb)
        states.append(h)
    (torch.stack(states, dim=1) * torch.tensor(np.asarray(dh, np.float64))).sum().backward()
    return tuple(np.zeros(a.shape, dtype) if t.grad is None else t.grad.numpy().astype(dtype)
                 for a, t in zip((np.swapaxes(xt, 0, 1), h0, Wx, Wh, b), tensors))
''',  # noqa: E501 (a learner payload, kept as written)
}
TWO_FACED_LOSES = {"lstm_step_forward_hidden", "lstm_step_backward_hidden", "lstm_forward_hidden",
                   "lstm_backward_hidden", "rnn_backward_truncated_hidden"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_answers_that_change_while_watched_lose_the_hidden_cells(tmp_path):
    """The tester's payload scored 17/17: its by-hand checks saw no torch (it answered zeros while watched)
    and the value checks saw torch's right numbers. The watched call's own answer is now compared with the
    cell's reference, so the five hidden cells fail, saying why; the visible tests still pass."""
    row, failed, result = _grade_answered(tmp_path, A07, TWO_FACED)
    assert row["status"] == "graded" and set(failed) == TWO_FACED_LOSES, (failed, result["cells"])
    for grade_id, message in failed.items():
        assert "whether or not it is watched" in message, (grade_id, message)
