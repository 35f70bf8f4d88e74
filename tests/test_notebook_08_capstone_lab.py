"""gradlab.capstone, notebook 08's laboratory: the stacked RNNs compute what one torch RNN computes, the torch
views share memory with the stack, and train_stack applies exactly the clipping function it is given."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradlab import capstone  # noqa: E402


def _torch_loss_and_grads(stack, k, X, y):
    """Network k of the stack, rebuilt in torch (float64) and differentiated by autograd."""
    params = [torch.tensor(stack.arrays[n][k], requires_grad=True) for n in capstone.PARAM_NAMES]
    Wx, Wh, b, Wy, by = params
    h = torch.zeros(X.shape[1], stack.H, dtype=torch.float64)
    Xk = torch.from_numpy(X[k])
    for t in range(X.shape[2]):
        h = torch.tanh(Xk[:, t] @ Wx.T + h @ Wh.T + b)
    loss = torch.nn.functional.cross_entropy(h @ Wy.T + by, torch.from_numpy(y[k]))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in params]


def test_stacked_loss_and_gradients_match_torch_autograd():
    """Three networks, T = 12: every loss and every gradient equals torch autograd's to 1e-12."""
    stack = capstone.RNNStack([0, 1, 2], num_hiddens=8, spectral_radius=1.2)
    X, y = capstone.order_batches([0, 1, 2], 5, 12, step=0)
    assert X.shape == (3, 5, 12, capstone.NUM_SYMBOLS) and y.shape == (3, 5)
    losses = stack.loss_and_grads(X, y)
    for k in range(3):
        loss, grads = _torch_loss_and_grads(stack, k, X, y)
        assert losses[k] == pytest.approx(loss, abs=1e-12)
        for name, g in zip(capstone.PARAM_NAMES, grads, strict=True):
            np.testing.assert_allclose(stack.grads[name][k], g, atol=1e-12, err_msg=name)
    rho = np.abs(np.linalg.eigvals(stack.arrays["Wh"][1])).max()
    assert rho == pytest.approx(1.2)


def test_torch_views_share_memory_and_a_replaced_grad_is_copied_back():
    """Clipping p.grad in place changes the stack's gradient; assigning a new .grad is synced back."""
    stack = capstone.RNNStack([0, 1], num_hiddens=4)
    X, y = capstone.order_batches([0, 1], 3, 10, step=1)
    stack.loss_and_grads(X, y)
    before = stack.grads["Wh"][1].copy()
    params = stack.parameters(1)
    params[1].grad.mul_(0.5)
    np.testing.assert_allclose(stack.grads["Wh"][1], 0.5 * before)
    params[0].grad = torch.zeros_like(params[0].grad)           # a new tensor, not in place
    stack.sync_grads(1)
    assert not stack.grads["Wx"][1].any() and stack.grads["Wx"][0].any()
    with torch.no_grad():
        params[2].add_(1.0)                                      # the weights are views too
    assert (stack.arrays["b"][1] == 1.0).all() and (stack.arrays["b"][0] == 0.0).all()


def test_train_stack_clips_where_told_and_records_it():
    """Same seed, same batches: a clip to 1e-3 makes every step that small and is flagged on every step; the
    unclipped twin's steps are lr * ||g||; a network that diverges is frozen and scored as failed."""
    calls = []

    def tiny(params):
        calls.append(len(params))
        torch.nn.utils.clip_grad_norm_(params, 1e-3)

    out = capstone.train_stack([None, tiny], T=10, seeds=[3, 3], lr=0.1, num_steps=6, num_test=50)
    assert calls == [5] * 6
    assert out["clipped"][:, 1].all() and not out["clipped"][:, 0].any()
    assert out["loss"][0, 0] == out["loss"][0, 1], "both start from the same weights and batch"
    np.testing.assert_allclose(out["step_norm"][:, 1], 0.1 * 1e-3, rtol=1e-4)
    np.testing.assert_allclose(out["step_norm"][:, 0], 0.1 * out["grad_norm"][:, 0], rtol=1e-9)
    assert out["test_error"].shape == (2,) and (out["diverged_at"] == -1).all()

    seen = []

    def poison(params):                                       # a NaN gradient on the third step
        seen.append(1)
        if len(seen) == 3:
            params[0].grad[0, 0] = float("nan")

    blown = capstone.train_stack([poison, None], T=10, seeds=[0, 0], lr=0.1, num_steps=6, num_test=50)
    assert blown["diverged_at"].tolist() == [3, -1], "the NaN weights give a NaN loss on the next step"
    assert np.isnan(blown["loss"][4:, 0]).all() and np.isfinite(blown["loss"][:, 1]).all(), "frozen after"
    assert len(seen) == 3, "a diverged network's clipping function is not called again"
    assert blown["test_error"][0] == 1.0 and blown["test_error"][1] < 1.0


def test_smoothness_is_the_gradient_change_over_the_step():
    """With smoothness=True, L_t = ||g(theta_t+1) - g(theta_t)|| / ||theta_t+1 - theta_t||, checked by hand."""
    out = capstone.train_stack([None], T=10, seeds=[1], lr=0.2, num_steps=1, num_test=10, smoothness=True)
    stack = capstone.RNNStack([1])
    X, y = capstone.order_batches([1], 32, 10, step=0)
    stack.loss_and_grads(X, y)
    g0 = {n: g.copy() for n, g in stack.grads.items()}
    for n in capstone.PARAM_NAMES:
        stack.arrays[n] -= 0.2 * g0[n]
    stack.loss_and_grads(X, y)
    diff = math.sqrt(sum(((stack.grads[n] - g0[n]) ** 2).sum() for n in capstone.PARAM_NAMES))
    step = 0.2 * math.sqrt(sum((g ** 2).sum() for g in g0.values()))
    assert out["smoothness"][0, 0] == pytest.approx(diff / step, rel=1e-9)


def test_success_rate_and_spearman():
    """success_rate counts errors strictly below the bound; spearman is 1 for any increasing relation."""
    assert capstone.success_rate([[0.0, 0.005, 0.01, 0.5]], 0.01).tolist() == [0.5]
    x = np.linspace(0.1, 5, 30)
    assert capstone.spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert capstone.spearman(x, -x ** 3) == pytest.approx(-1.0)
    assert capstone.spearman(np.r_[x, np.nan], np.r_[x, 1.0]) == pytest.approx(1.0)
