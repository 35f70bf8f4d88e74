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
    import torch
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
