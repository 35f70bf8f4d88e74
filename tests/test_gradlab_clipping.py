"""gradlab.clipping: the course's reference clipping, checked against torch and against its own rules."""

import numpy as np
import pytest
import torch
from gradlab import clipping as C


def _grads(rng, dtype=np.float64, scale=1.0):
    shapes = [(3, 4), (4,), (2, 2, 2), ()]
    return [np.asarray(scale * rng.standard_normal(s), dtype=dtype) for s in shapes]


def _torch_params(grads):
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(np.asarray(g)).dtype))
        p.grad = torch.from_numpy(np.array(g, copy=True))
        params.append(p)
    return params


@pytest.mark.parametrize("seed", range(20))
def test_clip_by_global_norm_matches_torch(seed):
    """clip_by_global_norm equals torch.nn.utils.clip_grad_norm_, returned norm included."""
    rng = np.random.default_rng(seed)
    grads = _grads(rng, scale=rng.uniform(0.1, 10))
    max_norm = rng.uniform(0.1, 5)
    params = _torch_params(grads)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    clipped, norm = C.clip_by_global_norm(grads, max_norm)
    assert norm == pytest.approx(float(total), rel=1e-12)
    for c, p in zip(clipped, params, strict=True):
        np.testing.assert_allclose(c, p.grad.numpy(), rtol=1e-5, atol=1e-12)  # torch adds 1e-6 to the norm


@pytest.mark.parametrize("seed", range(10))
def test_clip_by_value_matches_torch(seed):
    """clip_by_value equals torch.nn.utils.clip_grad_value_."""
    rng = np.random.default_rng(seed)
    grads = _grads(rng, scale=3.0)
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, 1.5)
    for c, p in zip(C.clip_by_value(grads, 1.5), params, strict=True):
        np.testing.assert_array_equal(c, p.grad.numpy())


def test_pure_functions_keep_inputs_and_dtypes():
    """Inputs are never modified; float32 stays float32."""
    rng = np.random.default_rng(0)
    grads = _grads(rng, np.float32, scale=10)
    before = [g.copy() for g in grads]
    out_v = C.clip_by_value(grads, 0.5)
    out_n, _ = C.clip_by_global_norm(grads, 0.5)
    out_1 = C.clip_by_norm(grads[0], 0.5)
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_array_equal(g, b)
    assert all(o.dtype == np.float32 for o in out_v + out_n + [out_1])
    assert all(o is not g for o, g in zip(out_n, grads, strict=True))


def test_properties_over_random_cases():
    """Norm clipping keeps the direction, is idempotent, does nothing below the threshold."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        grads = _grads(rng, scale=rng.uniform(0.01, 100))
        max_norm = rng.uniform(0.1, 10)
        clipped, norm = C.clip_by_global_norm(grads, max_norm)
        flat, cflat = np.concatenate([g.ravel() for g in grads]), np.concatenate([c.ravel() for c in clipped])
        assert np.linalg.norm(cflat) <= max_norm * (1 + 1e-12)
        assert cflat @ flat / (np.linalg.norm(cflat) * np.linalg.norm(flat)) == pytest.approx(1, abs=1e-12)
        again, _ = C.clip_by_global_norm(clipped, max_norm)
        np.testing.assert_allclose(np.concatenate([a.ravel() for a in again]), cflat, rtol=1e-12)
        if norm <= max_norm:
            np.testing.assert_array_equal(cflat, flat)


def test_value_clipping_can_change_direction():
    """Value clipping turns (10, 1) into (1, 1): a different direction."""
    (out,) = C.clip_by_value([np.array([10.0, 1.0])], 1.0)
    np.testing.assert_array_equal(out, [1.0, 1.0])


def test_zero_and_nonfinite():
    """A zero gradient stays zero; NaN/Inf norms give all-NaN results and the non-finite norm."""
    z = np.zeros((2, 3))
    np.testing.assert_array_equal(C.clip_by_norm(z, 1.0), z)
    clipped, norm = C.clip_by_global_norm([z, np.zeros(2)], 1.0)
    assert norm == 0.0 and all(not c.any() for c in clipped)
    for bad in (np.inf, np.nan):
        g = [np.array([1.0, bad]), np.ones(3)]
        clipped, norm = C.clip_by_global_norm(g, 1.0)
        assert not np.isfinite(norm)
        assert all(np.isnan(c).all() for c in clipped)
        assert np.isnan(C.clip_by_norm(g[0], 1.0)).all()
    v = C.clip_by_value([np.array([np.nan, np.inf, -np.inf])], 2.0)[0]
    assert np.isnan(v[0]) and v[1] == 2.0 and v[2] == -2.0


def test_float32_norm_does_not_overflow():
    """global_norm accumulates in float64: float32 entries of 1e20 give a finite norm."""
    g = [np.full(4, 1e20, dtype=np.float32)]
    assert C.global_norm(g) == pytest.approx(2e20, rel=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, np.nan, np.inf])
def test_bad_thresholds_raise(bad):
    """A threshold that is not a positive finite number is refused with a clear message."""
    with pytest.raises(ValueError, match="positive"):
        C.clip_by_global_norm([np.ones(2)], bad)
    with pytest.raises(ValueError, match="positive"):
        C.clip_by_value([np.ones(2)], bad)


def test_single_array_instead_of_list_is_refused():
    """Passing one array where a list of gradients is expected raises TypeError."""
    with pytest.raises(TypeError, match="list"):
        C.clip_by_global_norm(np.ones(3), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_fast_version_matches_pure_one(dtype):
    """clip_grads_by_global_norm_ clips in place like clip_by_global_norm and returns the norm before."""
    rng = np.random.default_rng(3)
    grads = _grads(rng, dtype, scale=5)
    expected, expected_norm = C.clip_by_global_norm(grads, 1.0)
    ids = [id(g) for g in grads]
    norm = C.clip_grads_by_global_norm_(grads, 1.0)
    assert [id(g) for g in grads] == ids
    assert norm == pytest.approx(expected_norm, rel=1e-5 if dtype == np.float32 else 1e-12)
    for g, e in zip(grads, expected, strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_in_place_fast_version_is_bit_identical_on_float64():
    """On float64 (what notebook 04 trains in) the in-place clip gives clip_by_global_norm's bits exactly."""
    rng = np.random.default_rng(5)
    for scale in (0.01, 5.0):
        grads = _grads(rng, np.float64, scale=scale)
        expected, expected_norm = C.clip_by_global_norm(grads, 1.0)
        assert C.clip_grads_by_global_norm_(grads, 1.0) == expected_norm
        for g, e in zip(grads, expected, strict=True):
            np.testing.assert_array_equal(g, e)


def test_in_place_fast_version_edge_cases():
    """Below the threshold nothing changes; float32 overflow is recovered; NaN fills with NaN."""
    g = [np.array([0.3, 0.4])]
    assert C.clip_grads_by_global_norm_(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g[0], [0.3, 0.4])
    big = [np.full(4, 1e20, dtype=np.float32), np.full((2, 2), 1e20, dtype=np.float32)[:, :1]]
    norm = C.clip_grads_by_global_norm_(big, 1.0)
    assert norm == pytest.approx(np.sqrt(6) * 1e20, rel=1e-5)
    assert np.isfinite(big[0]).all()
    assert float(np.sqrt(sum(float(np.sum(b.astype(np.float64) ** 2)) for b in big))) == pytest.approx(1, rel=1e-5)
    bad = [np.array([1.0, np.nan])]
    assert np.isnan(C.clip_grads_by_global_norm_(bad, 1.0)) and np.isnan(bad[0]).all()
    with pytest.raises(TypeError):
        C.clip_grads_by_global_norm_([np.arange(3)], 1.0)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        C.clip_grads_by_global_norm_([ro], 1.0)


def test_in_place_fast_version_matches_torch_on_many_tensors():
    """On 2M float32 parameters in 40 tensors the in-place clip agrees with clip_grad_norm_."""
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(50_000).astype(np.float32) for _ in range(40)]
    params = _torch_params(grads)
    total = torch.nn.utils.clip_grad_norm_(params, 10.0)
    norm = C.clip_grads_by_global_norm_(grads, 10.0)
    assert norm == pytest.approx(float(total), rel=1e-4)
    for g, p in zip(grads, params, strict=True):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-7)
