"""Unit tests for gradlab.rnn, the reference NumPy RNN that notebooks 02-04 build on.

References are independent of the code under test: torch autograd (a hand-written torch loop for every
activation, and torch.nn.RNN where it has the activation) and central finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradlab import rnn, rnn_tools
from gradlab.data import adding_problem, temporal_order

TORCH_ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda a: a}


def _params(N=3, T=5, D=4, H=6, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, D))
    h0 = rng.normal(size=(N, H))
    Wx = rng.normal(scale=0.5, size=(D, H))
    Wh = rng.normal(scale=0.4, size=(H, H))
    b = rng.normal(scale=0.3, size=H)
    return [a.astype(dtype) for a in (x, h0, Wx, Wh, b)]


def _torch_rnn(x, h0, Wx, Wh, b, dh, activation):
    """Forward with a torch loop, then autograd of sum(h * dh); returns h, grads and dL/dh_t totals."""
    x, h0, Wx, Wh, b = (torch.tensor(a, requires_grad=True) for a in (x, h0, Wx, Wh, b))
    phi = TORCH_ACT[activation]
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = phi(x[:, t] @ Wx + h @ Wh + b)
        h.retain_grad()
        hs.append(h)
    H_all = torch.stack(hs, dim=1)
    (H_all * torch.tensor(dh)).sum().backward()
    grads = [a.grad.numpy() for a in (x, h0, Wx, Wh, b)]
    totals = np.stack([h.grad.numpy() for h in hs], axis=1)
    return H_all.detach().numpy(), grads, totals


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
def test_forward_and_backward_match_torch_autograd(activation):
    """rnn_forward / rnn_backward (and rnn_tools.state_grads) equal a torch loop with autograd, every activation."""
    x, h0, Wx, Wh, b = _params(seed=1)
    dh = np.random.default_rng(2).normal(size=(3, 5, 6))
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b, activation=activation)
    grads = rnn.rnn_backward(dh, cache)
    totals = rnn_tools.state_grads(dh, cache)
    h_ref, grads_ref, totals_ref = _torch_rnn(x, h0, Wx, Wh, b, dh, activation)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(("dx", "dh0", "dWx", "dWh", "db"), grads, grads_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(totals, totals_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_matches_torch_nn_rnn(activation):
    """rnn_forward equals torch.nn.RNN (batch_first) with the same weights, for its two activations."""
    x, h0, Wx, Wh, b = _params(seed=3)
    layer = torch.nn.RNN(4, 6, nonlinearity=activation, batch_first=True).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.tensor(Wx.T))
        layer.weight_hh_l0.copy_(torch.tensor(Wh.T))
        layer.bias_ih_l0.copy_(torch.tensor(b))
        layer.bias_hh_l0.zero_()
        out, _ = layer(torch.tensor(x), torch.tensor(h0)[None])
    h, _ = rnn.rnn_forward(x, h0, Wx, Wh, b, activation=activation)
    np.testing.assert_allclose(h, out.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
def test_step_forward_and_backward_match_torch(activation):
    """rnn_step_forward / rnn_step_backward equal one step of the torch loop with autograd."""
    x, h0, Wx, Wh, b = _params(T=1, seed=4)
    dh = np.random.default_rng(5).normal(size=(3, 1, 6))
    h_ref, grads_ref, _ = _torch_rnn(x, h0, Wx, Wh, b, dh, activation)
    h, cache = rnn.rnn_step_forward(x[:, 0], h0, Wx, Wh, b, activation=activation)
    np.testing.assert_allclose(h, h_ref[:, 0], rtol=1e-12, atol=1e-12)
    dx, dh_prev, dWx, dWh, db = rnn.rnn_step_backward(dh[:, 0], cache)
    for got, want in zip((dx, dh_prev, dWx, dWh, db), (grads_ref[0][:, 0], *grads_ref[1:]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes_are_kept(dtype):
    """Outputs have the documented shapes and keep the input dtype (float32 stays float32)."""
    N, T, D, H = 2, 7, 3, 5
    x, h0, Wx, Wh, b = _params(N, T, D, H, seed=6, dtype=dtype)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    assert h.shape == (N, T, H) and h.dtype == dtype
    grads = rnn.rnn_backward(np.ones((N, T, H), dtype=dtype), cache)
    shapes = [(N, T, D), (N, H), (D, H), (H, H), (H,)]
    assert [g.shape for g in grads] == shapes
    assert all(g.dtype == dtype for g in grads)


def test_float32_agrees_with_float64():
    """The float32 forward and backward agree with float64 to float32 precision."""
    p64 = _params(seed=7)
    p32 = [a.astype(np.float32) for a in p64]
    dh = np.random.default_rng(8).normal(size=(3, 5, 6))
    h64, c64 = rnn.rnn_forward(*p64)
    h32, c32 = rnn.rnn_forward(*p32)
    np.testing.assert_allclose(h32, h64, rtol=1e-5, atol=1e-5)
    for g32, g64 in zip(rnn.rnn_backward(dh.astype(np.float32), c32), rnn.rnn_backward(dh, c64), strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_single_time_step_and_single_sequence():
    """T = 1 and N = 1 work and equal one call of the step functions."""
    x, h0, Wx, Wh, b = _params(N=1, T=1, seed=9)
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    h_step, step_cache = rnn.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    np.testing.assert_allclose(h[:, 0], h_step, rtol=1e-14)
    dh = np.random.default_rng(10).normal(size=h.shape)
    dx, dh0, dWx, dWh, db = rnn.rnn_backward(dh.copy(), cache)
    sdx, sdh0, sdWx, sdWh, sdb = rnn.rnn_step_backward(dh[:, 0], step_cache)
    for got, want in ((dx[:, 0], sdx), (dh0, sdh0), (dWx, sdWx), (dWh, sdWh), (db, sdb)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("N, T", [(3, 5), (1, 5), (3, 1), (1, 1)])
def test_inputs_are_not_modified(N, T):
    """rnn_forward and rnn_backward leave their arguments unchanged, also when N = 1 or T = 1."""
    args = _params(N=N, T=T, seed=11)
    copies = [a.copy() for a in args]
    dh = np.random.default_rng(12).normal(size=(N, T, 6))
    dh_copy = dh.copy()
    _, cache = rnn.rnn_forward(*args)
    rnn.rnn_backward(dh, cache)
    for a, c in zip(args, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(dh, dh_copy, err_msg="rnn_backward modified its dh argument in place")


@pytest.mark.parametrize(
    "which, shape",
    [("x", (3, 4)), ("h0", (3, 5)), ("h0", (2, 6)), ("Wx", (5, 6)), ("Wh", (6, 5)), ("b", (5,)), ("x", (3, 0, 4))],
)
def test_bad_shapes_raise_value_error(which, shape):
    """A wrongly shaped argument (or T = 0) raises ValueError naming the argument."""
    args = dict(zip(("x", "h0", "Wx", "Wh", "b"), _params(), strict=True))
    args[which] = np.zeros(shape)
    with pytest.raises(ValueError, match=which if which != "x" or shape[1:2] != (0,) else "T >= 1"):
        rnn.rnn_forward(**args)


def test_bad_upstream_gradient_and_activation_raise_value_error():
    """rnn_backward rejects a dh of the wrong shape; an unknown activation is rejected."""
    _, cache = rnn.rnn_forward(*_params())
    with pytest.raises(ValueError, match="dh"):
        rnn.rnn_backward(np.zeros((5, 3, 6)), cache)
    with pytest.raises(ValueError, match="activation"):
        rnn.rnn_forward(*_params(), activation="softplus")
    with pytest.raises(ValueError, match="activation"):
        rnn.rnn_step_forward(*[a[:, 0] if a.ndim == 3 else a for a in _params()], activation="gelu")


def _finite_difference(f, params, eps=1e-6):
    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = f()
            p[i] = old - eps
            down = f()
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads[name] = g
    return grads


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-300)


@pytest.mark.parametrize(
    "task, activation",
    [("regression", "tanh"), ("regression", "sigmoid"), ("classification", "tanh"), ("classification", "linear")],
)
def test_rnn_loss_gradients_match_finite_differences(task, activation):
    """rnn_loss's gradients equal central finite differences, on the adding and temporal-order tasks."""
    if task == "regression":
        X, y = adding_problem(4, 6, seed=1)
        params = rnn.init_rnn(2, 5, 1, seed=2)
    else:
        X, y = temporal_order(4, 10, seed=1)
        params = rnn.init_rnn(6, 5, 4, seed=2)
    params["b"] += 0.1  # nonzero biases so that their gradients are exercised
    params["by"] += 0.2
    loss, grads = rnn.rnn_loss(params, X, y, task=task, activation=activation)
    numeric = _finite_difference(lambda: rnn.rnn_loss(params, X, y, task=task, activation=activation)[0], params)
    assert np.isfinite(loss) and loss > 0
    for name in rnn.PARAM_NAMES:
        assert _rel(grads[name], numeric[name]) < 1e-7, name


def test_rnn_loss_values_and_dh_total():
    """rnn_loss gives the MSE / cross-entropy it documents and dL/dh_t equal to torch autograd's."""
    X, y = adding_problem(5, 8, seed=3)
    params = rnn.init_rnn(2, 4, 1, seed=4)
    loss, grads, dh_total = rnn_tools.rnn_loss_with_state_grads(params, X, y)
    assert (loss, grads.keys()) == (rnn.rnn_loss(params, X, y)[0], rnn.rnn_loss(params, X, y)[1].keys())
    assert dh_total.shape == (5, 8, 4)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h, hs = torch.zeros(5, 4, dtype=torch.float64), []
    for t in range(8):
        h = torch.tanh(torch.tensor(X[:, t]) @ tp["Wx"] + h @ tp["Wh"] + tp["b"])
        h.retain_grad()
        hs.append(h)
    ref = ((h @ tp["Wy"] + tp["by"] - torch.tensor(y)) ** 2).sum(dim=1).mean()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(dh_total, np.stack([g.grad.numpy() for g in hs], axis=1), rtol=1e-10, atol=1e-14)
    for name in rnn.PARAM_NAMES:
        np.testing.assert_allclose(grads[name], tp[name].grad.numpy(), rtol=1e-10, atol=1e-14)

    Xc, yc = temporal_order(6, 12, seed=5)
    pc = rnn.init_rnn(6, 4, 4, seed=6)
    loss_c, _ = rnn.rnn_loss(pc, Xc, yc, task="classification")
    h, _ = rnn.rnn_forward(Xc, np.zeros((6, 4)), pc["Wx"], pc["Wh"], pc["b"])
    scores = torch.tensor(h[:, -1] @ pc["Wy"] + pc["by"])
    assert loss_c == pytest.approx(torch.nn.functional.cross_entropy(scores, torch.tensor(yc)).item(), rel=1e-12)
    with pytest.raises(ValueError, match="task"):
        rnn.rnn_loss(pc, Xc, yc, task="ranking")


def test_init_rnn_shapes_seed_and_spectral_radius():
    """init_rnn gives the documented shapes and dtype, is deterministic per seed, and sets the radius."""
    p = rnn_tools.init_rnn(3, 8, 2, seed=0, spectral_radius=1.5, dtype=np.float32)
    assert {k: v.shape for k, v in p.items()} == {"Wx": (3, 8), "Wh": (8, 8), "b": (8,), "Wy": (8, 2), "by": (2,)}
    assert all(v.dtype == np.float32 for v in p.values())
    assert rnn_tools.spectral_radius(p["Wh"]) == pytest.approx(1.5, rel=1e-5)
    q = rnn_tools.init_rnn(3, 8, 2, seed=0, spectral_radius=1.5, dtype=np.float32)
    assert all(np.array_equal(p[k], q[k]) for k in p)
    r = rnn.init_rnn(3, 8, 2, seed=1)
    assert not np.allclose(r["Wh"], rnn.init_rnn(3, 8, 2, seed=0)["Wh"])


def test_spectral_radius_of_known_matrices():
    """spectral_radius is the largest |eigenvalue|, also for complex eigenvalues and non-normal matrices."""
    assert rnn_tools.spectral_radius(np.diag([0.5, -2.0, 1.0])) == pytest.approx(2.0)
    rotation = 0.9 * np.array([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-0.9i
    assert rnn_tools.spectral_radius(rotation) == pytest.approx(0.9)
    shear = np.array([[0.5, 10.0], [0.0, 0.5]])  # non-normal: radius 0.5, largest singular value > 10
    assert rnn_tools.spectral_radius(shear) == pytest.approx(0.5)
    assert np.linalg.norm(shear, 2) > 10


def test_rnn_tools_refuses_bad_input():
    """rnn_tools raises clear errors for a non-square matrix, a non-positive radius and a mis-shaped dh."""
    with pytest.raises(ValueError, match="square"):
        rnn_tools.spectral_radius(np.ones((2, 3)))
    with pytest.raises(ValueError, match="positive"):
        rnn_tools.init_rnn(2, 4, 1, spectral_radius=0.0)
    x, h0, Wx, Wh, b = _params(seed=3)
    _, cache = rnn.rnn_forward(x, h0, Wx, Wh, b)
    with pytest.raises(ValueError, match="shape"):
        rnn_tools.state_grads(np.zeros((1, 1, 1)), cache)


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
@pytest.mark.parametrize("shared_x", [True, False])
def test_models_on_a_leading_axis_match_one_at_a_time(activation, shared_x):
    """K models stacked on a leading axis (as gradlab.training.train_many runs them) give each model's own
    forward and backward, computed here model by model first."""
    K, N, T, D, H = 3, 2, 5, 4, 6
    rng = np.random.default_rng(21)
    x = rng.normal(size=(N, T, D)) if shared_x else rng.normal(size=(K, N, T, D))
    h0 = rng.normal(size=(K, N, H))
    Wx, Wh, b = rng.normal(scale=0.5, size=(K, D, H)), rng.normal(scale=0.4, size=(K, H, H)), rng.normal(size=(K, H))
    dh = rng.normal(size=(K, N, T, H))
    expected = []
    for k in range(K):
        xk = x if shared_x else x[k]
        hk, ck = rnn.rnn_forward(xk, h0[k], Wx[k], Wh[k], b[k], activation=activation)
        expected.append((hk, *rnn.rnn_backward(dh[k], ck)))
    h, cache = rnn.rnn_forward(x, h0, Wx, Wh, b, activation=activation)
    got = (h, *rnn.rnn_backward(dh, cache))
    for i, name in enumerate(("h", "dx", "dh0", "dWx", "dWh", "db")):
        want = np.stack([e[i] for e in expected])
        assert got[i].shape == want.shape, f"{name}: shape {got[i].shape} != {want.shape}"
        np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_rnn_loss_of_stacked_models_matches_each_model(task):
    """rnn_loss on parameters with a leading model axis returns each model's loss and gradients."""
    if task == "regression":
        X, y = adding_problem(16, 7, seed=3)
        out = 1
    else:
        X, y = temporal_order(16, 12, seed=3)
        out = 4
    models = [rnn.init_rnn(X.shape[2], 5, out, seed=s) for s in range(3)]
    expected = [rnn.rnn_loss(p, X, y, task=task) for p in models]
    stacked = {k: np.stack([p[k] for p in models]) for k in rnn.PARAM_NAMES}
    losses, grads = rnn.rnn_loss(stacked, X, y, task=task)
    np.testing.assert_allclose(losses, [e[0] for e in expected], rtol=1e-12)
    for k in rnn.PARAM_NAMES:
        np.testing.assert_allclose(grads[k], np.stack([e[1][k] for e in expected]), rtol=1e-10, atol=1e-14,
                                   err_msg=k)


def test_rnn_loss_of_stacked_models_on_their_own_batches_matches_each_model():
    """Classification with K models, each on its own batch: X (K, N, T, D) and labels (K, N) (notebook 08's
    gradlab.capstone trains this way) give each model's own loss and gradients, computed one at a time first."""
    batches = [temporal_order(9, 11, seed=s) for s in (4, 5, 6)]
    models = [rnn.init_rnn(6, 5, 4, seed=s) for s in range(3)]
    expected = [rnn.rnn_loss(p, X, y, task="classification") for p, (X, y) in zip(models, batches, strict=True)]
    stacked = {k: np.stack([p[k] for p in models]) for k in rnn.PARAM_NAMES}
    X, y = np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])
    losses, grads = rnn.rnn_loss(stacked, X, y, task="classification")
    assert losses.shape == (3,)
    np.testing.assert_allclose(losses, [e[0] for e in expected], rtol=1e-12)
    for k in rnn.PARAM_NAMES:
        np.testing.assert_allclose(grads[k], np.stack([e[1][k] for e in expected]), rtol=1e-10, atol=1e-14,
                                   err_msg=k)
    shared, _ = rnn.rnn_loss(stacked, X, np.broadcast_to(y[0], y.shape), task="classification")
    assert not np.allclose(shared, losses), "each model is scored against its own labels, not the first's"


def test_rnn_tools_reads_only_public_names_of_rnn():
    """gradlab.rnn_tools, gradlab.vanishing, gradlab.training and gradlab.capstone use gradlab.rnn's public
    API only."""
    import ast
    import inspect

    from gradlab import capstone, training, vanishing

    for module in (rnn_tools, vanishing, training, capstone):
        tree = ast.parse(inspect.getsource(module))
        private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and isinstance(node.value, ast.Name) and node.value.id == "rnn" and node.attr.startswith("_")]
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").endswith("rnn") for alias in node.names if alias.name.startswith("_")]
        assert not private + imported, f"{module.__name__} reaches into gradlab.rnn's privates: {private + imported}"
