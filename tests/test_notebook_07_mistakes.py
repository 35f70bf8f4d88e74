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
