"""Unit tests for gradlab.vanishing (the experiment helpers of notebook 02).

gradlab never holds notebook 02's answers, so the helpers that need one take it as an argument; the
reference implementations they get here are written in this file (and checked against gradlab.rnn's
BPTT and against finite differences, not against themselves).
"""

import numpy as np
import pytest
from gradlab import rnn, rnn_tools, vanishing

# ------------------------------------------------------------------------------- references (test-only)


def ref_hidden_grad_norms(dh, h, Wh, activation="tanh"):
    deriv = vanishing.activation_derivative(activation, h)
    N, T, H = h.shape
    norms = np.empty(T)
    carry = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        g = dh[:, t] + carry
        norms[t] = np.linalg.norm(g)
        carry = (g * deriv[:, t]) @ Wh.T
    return norms


def ref_scale(W, rho):
    return W * (rho / np.abs(np.linalg.eigvals(W)).max())


def ref_sigma(W):
    return float(np.linalg.svd(W, compute_uv=False)[0])


def ref_cliff(w, b, T=50):
    w, b = np.broadcast_arrays(np.asarray(w, float), np.asarray(b, float))
    x = np.full(w.shape, 0.5)
    dw = np.zeros_like(x)
    db = np.zeros_like(x)
    for _ in range(T):
        s = 1 / (1 + np.exp(-x))
        dw, db = s + w * s * (1 - s) * dw, 1 + w * s * (1 - s) * db
        x = w * s + b
    s = 1 / (1 + np.exp(-x))
    g = 2 * (s - 0.7) * s * (1 - s)
    return (s - 0.7) ** 2, g * dw, g * db


def ref_cliff_scalar_only(w, b, T=50):
    if np.ndim(w) or np.ndim(b):
        raise TypeError("scalars only")
    return tuple(float(v) for v in ref_cliff(w, b, T))


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("activation", vanishing.ACTIVATIONS)
def test_activation_derivative_matches_finite_differences(activation):
    phi = {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0),
           "linear": lambda a: a}[activation]
    a = np.array([-2.0, -0.7, 0.3, 1.1, 2.5])
    eps = 1e-6
    numeric = (phi(a + eps) - phi(a - eps)) / (2 * eps)
    assert np.allclose(vanishing.activation_derivative(activation, phi(a)), numeric, atol=1e-8)


def test_activation_derivative_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        vanishing.activation_derivative("softplus", np.zeros(3))


def test_recurrent_problem_shapes_determinism_and_upstream():
    p = vanishing.recurrent_problem(8, 20, batch_size=3, input_size=2, seed=5)
    assert p.X.shape == (3, 20, 2) and p.Wh.shape == (8, 8) and p.Wx.shape == (2, 8) and p.dh.shape == (3, 20, 8)
    assert np.all(p.dh[:, :-1] == 0)
    assert np.allclose(np.linalg.norm(p.dh[:, -1], axis=1), 1.0)
    q = vanishing.recurrent_problem(8, 20, batch_size=3, input_size=2, seed=5)
    assert np.array_equal(p.X, q.X) and np.array_equal(p.Wh, q.Wh)
    assert not np.array_equal(p.Wh, vanishing.recurrent_problem(8, 20, batch_size=3, input_size=2, seed=6).Wh)


def test_truncated_moves_upstream_gradient_to_new_end():
    p = vanishing.recurrent_problem(4, 10, batch_size=2)
    s = p.truncated(6)
    assert s.num_steps == 6 and np.array_equal(s.X, p.X[:, :6])
    assert np.array_equal(s.dh[:, -1], p.dh[:, -1]) and np.all(s.dh[:, :-1] == 0)
    for bad in (0, 11, 2.5):
        with pytest.raises(ValueError, match="num_steps"):
            p.truncated(bad)


@pytest.mark.parametrize("kwargs", [dict(num_hiddens=0), dict(num_steps=1.5), dict(batch_size=-1),
                                    dict(input_scale=-0.1)])
def test_recurrent_problem_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        vanishing.recurrent_problem(**kwargs)


def test_hidden_states_is_the_rnn_forward_pass():
    p = vanishing.recurrent_problem(6, 12, batch_size=2, seed=1)
    Wh = 0.7 * p.Wh
    h = vanishing.hidden_states(p, Wh, "sigmoid")
    want, _ = rnn.rnn_forward(p.X, p.h0, p.Wx, Wh, p.b, activation="sigmoid")
    assert np.allclose(h, want)
    with pytest.raises(ValueError, match="shape"):
        vanishing.hidden_states(p, np.eye(5))


def test_reference_hidden_grad_norms_agrees_with_gradlab_bptt():
    """The test-only reference used below is itself checked against gradlab.rnn_tools' BPTT."""
    p = vanishing.recurrent_problem(6, 15, batch_size=3, seed=2)
    for activation in vanishing.ACTIVATIONS:
        h, cache = rnn.rnn_forward(p.X, p.h0, p.Wx, p.Wh, p.b, activation=activation)
        dh_total = rnn_tools.state_grads(p.dh, cache)
        want = np.linalg.norm(dh_total.transpose(1, 0, 2).reshape(15, -1), axis=1)
        assert np.allclose(ref_hidden_grad_norms(p.dh, h, p.Wh, activation), want)


def test_non_normal_matrix_has_small_rho_and_large_sigma():
    W = vanishing.non_normal_matrix(4, rho=0.9, coupling=1.0)
    assert np.isclose(np.abs(np.linalg.eigvals(W)).max(), 0.9)
    assert ref_sigma(W) > 1.7
    assert not np.allclose(W @ W.T, W.T @ W)  # non-normal
    with pytest.raises(ValueError):
        vanishing.non_normal_matrix(1)


def test_non_normal_matrix_gradients_grow_for_many_steps_although_rho_is_below_one():
    """rho = 0.9, yet ||(W^T)^k|| and the BPTT gradient norms rise for ~30 steps before rho wins."""
    W = vanishing.non_normal_matrix(4, rho=0.9, coupling=1.0)
    assert np.abs(np.linalg.eigvals(W)).max() < 1
    products = np.array([np.linalg.norm(np.linalg.matrix_power(W.T, k), 2) for k in range(1, 201)])
    peak = int(np.argmax(products)) + 1
    assert 25 <= peak <= 35  # the notebook's plot says "~30 steps"
    assert np.all(np.diff(products[:peak]) > 0)  # rising at every step up to the peak
    assert products[peak - 1] / products[0] > 100 and products.max() > 100
    assert products[-1] < 1e-2 and abs(products[-1] / products[-2] - 0.9) < 0.02  # then rho = 0.9 wins
    # the same through BPTT: a linear RNN whose loss reads only the last of 60 states
    dh = np.zeros((1, 60, 4))
    dh[0, -1] = [0.0, 0.0, 0.0, 1.0]
    norms = ref_hidden_grad_norms(dh, np.zeros((1, 60, 4)), W, "linear")
    steps_back = norms[::-1]  # ||dL/dh|| 0, 1, 2, ... steps before the loss
    assert np.all(np.diff(steps_back[:20]) > 0) and steps_back.max() > 100 * steps_back[0]


def test_geometric_rate_recovers_known_rates():
    k = np.arange(50)[::-1]  # steps back, for t = 0..49
    for r in (0.5, 0.97, 1.0, 1.3):
        assert np.isclose(vanishing.geometric_rate(3.0 * r ** k), r)
    curve = 0.8 ** k
    curve[-5:] = 10.0  # a transient near the loss, skipped
    assert np.isclose(vanishing.geometric_rate(curve, skip=5), 0.8)
    with_zeros = 0.8 ** k
    with_zeros[:10] = 0.0  # underflow to zero is ignored
    assert np.isclose(vanishing.geometric_rate(with_zeros), 0.8)
    with pytest.raises(ValueError):
        vanishing.geometric_rate([1.0])
    with pytest.raises(ValueError):
        vanishing.geometric_rate(np.ones((2, 2)))


@pytest.mark.parametrize("activation", vanishing.ACTIVATIONS)
def test_grad_norm_curve_uses_the_given_functions_and_bounds_hold(activation):
    p = vanishing.recurrent_problem(16, 60, seed=3)
    data = vanishing.grad_norm_curve(p, 1.2, 40, activation, hidden_grad_norms=ref_hidden_grad_norms,
                                     scale_to_spectral_radius=ref_scale, largest_singular_value=ref_sigma)
    assert data["t"].shape == data["norms"].shape == data["bound"].shape == (40,)
    Wh = ref_scale(p.Wh, 1.2)
    h, cache = rnn.rnn_forward(p.X[:, :40], p.h0, p.Wx, Wh, p.b, activation=activation)
    dh = np.zeros_like(h)
    dh[:, -1] = p.dh[:, -1]
    dh_total = rnn_tools.state_grads(dh, cache)
    assert np.allclose(data["norms"], np.linalg.norm(dh_total[0], axis=1))
    assert data["gamma"] == (0.25 if activation == "sigmoid" else 1.0)
    assert np.isclose(data["sigma_max"], ref_sigma(Wh))
    assert np.all(data["norms"] <= data["bound"] * (1 + 1e-9))


def test_grad_norm_curve_calls_the_learner_function():
    calls = []

    def spy(dh, h, Wh, activation):
        calls.append(activation)
        return np.full(h.shape[1], 2.0)

    p = vanishing.recurrent_problem(4, 10)
    data = vanishing.grad_norm_curve(p, 0.9, 5, "tanh", hidden_grad_norms=spy, scale_to_spectral_radius=ref_scale,
                                     largest_singular_value=ref_sigma)
    assert calls == ["tanh"] and np.all(data["norms"] == 2.0)


def test_find_wall_brackets_the_jump_of_the_cliff():
    lo, hi = vanishing.find_wall(ref_cliff, 5.0, -3.5, -1.5)
    assert abs(hi - lo) < 1e-12
    assert ref_cliff(5.0, lo)[0] > 0.25 >= ref_cliff(5.0, hi)[0]
    g = np.hypot(*ref_cliff(5.0, 0.5 * (lo + hi))[1:])
    assert g > 1e3  # the wall is steep
    with pytest.raises(ValueError, match="does not cross"):
        vanishing.find_wall(ref_cliff, 5.0, -1.5, -1.0)


def test_cliff_surface_vectorised_and_scalar_only_agree():
    ws, bs, E = vanishing.cliff_surface(ref_cliff, (2.0, 8.0), (-6.0, 1.0), num=9)
    assert ws.shape == (9,) and bs.shape == (9,) and E.shape == (9, 9)
    assert np.isclose(E[3, 5], ref_cliff(ws[5], bs[3])[0])
    _, _, E2 = vanishing.cliff_surface(ref_cliff_scalar_only, (2.0, 8.0), (-6.0, 1.0), num=9)
    assert np.allclose(E, E2)


def test_sgd_path_plain_steps_follow_the_gradient():
    path = vanishing.sgd_path(ref_cliff, (3.0, -1.0), 0.5, 3)
    assert path.shape == (4, 2)
    _, gw, gb = ref_cliff(3.0, -1.0)
    assert np.allclose(path[1], [3.0 - 0.5 * gw, -1.0 - 0.5 * gb])


def test_sgd_path_clipping_bounds_every_step_and_keeps_direction():
    lo, hi = vanishing.find_wall(ref_cliff, 5.0, -3.5, -1.5)
    start = (5.0, 0.5 * (lo + hi))
    plain = vanishing.sgd_path(ref_cliff, start, 0.1, 1)
    clipped = vanishing.sgd_path(ref_cliff, start, 0.1, 1, clip=1.0)
    d_plain, d_clip = plain[1] - plain[0], clipped[1] - clipped[0]
    assert np.linalg.norm(d_plain) > 100
    assert np.isclose(np.linalg.norm(d_clip), 0.1)
    assert np.allclose(d_clip / np.linalg.norm(d_clip), d_plain / np.linalg.norm(d_plain))
    run = vanishing.sgd_path(ref_cliff, (5.2, -3.2), 3.0, 40, clip=0.5)
    assert np.hypot(*np.diff(run, axis=0).T).max() <= 1.5 + 1e-12


def test_sgd_path_stops_when_leaving_the_box_or_on_non_finite_gradient():
    path = vanishing.sgd_path(ref_cliff, (5.0, -2.6123613990049925), 1.0, 50, stop_at=100.0)
    assert len(path) == 2 and np.abs(path[-1]).max() > 100

    def nan_grad(w, b):
        return 0.0, float("nan"), 0.0

    assert vanishing.sgd_path(nan_grad, (0.0, 0.0), 1.0, 5).shape == (1, 2)


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(lr=-1.0), dict(lr=1.0, clip=0.0)])
def test_sgd_path_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        vanishing.sgd_path(ref_cliff, (1.0, 0.0), num_steps=2, **kwargs)
