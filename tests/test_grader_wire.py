"""The wire codec: exact round trips, no pickle, and nothing forged crosses to the trusted side."""

import json
import math

import numpy as np
import pytest

from autograder import wire


def roundtrip(value):
    return wire.decode(json.loads(wire.dumps({"v": wire.encode(value)}))["v"])


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**80, 1.5, -0.0, "text", "", 3 + 4j, [1, [2, "x"]], (1, (2.5, None)),
    {"a": [1, 2], "b": {"c": (True,)}},
])
def test_plain_values_round_trip_with_exact_types(value):
    """Builtin values come back equal and of exactly the same types, nested containers included."""
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_special_floats_round_trip():
    """nan, inf and -inf survive (JSON itself has no literal for them)."""
    back = roundtrip([math.nan, math.inf, -math.inf])
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf


@pytest.mark.parametrize("dtype", ["bool", "int8", "int64", "uint16", "float16", "float32", "float64", "complex128"])
def test_numpy_arrays_round_trip(dtype):
    """Arrays keep dtype, shape and values; non-contiguous and big-endian inputs are normalised."""
    arr = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)[:, ::2]
    back = roundtrip(arr)
    assert type(back) is np.ndarray and back.dtype == arr.dtype and back.shape == arr.shape
    assert np.array_equal(back, arr) and back.flags.writeable
    big = np.arange(3, dtype=">f8")
    assert np.array_equal(roundtrip(big), big)


def test_numpy_scalars_and_empty_arrays():
    """NumPy scalars come back as NumPy scalars; empty and 0-d arrays keep their shapes."""
    assert type(roundtrip(np.float32(1.5))) is np.float32
    assert roundtrip(np.zeros((0, 3))).shape == (0, 3)
    assert roundtrip(np.array(2.0)).shape == ()


def test_object_and_structured_dtypes_do_not_travel():
    """Object, string and structured arrays are refused by encode and by decode."""
    for arr in (np.array([object()]), np.array(["a"]), np.zeros(2, dtype=[("a", "f8")])):
        with pytest.raises(wire.Unsendable):
            wire.encode(arr)
    for dtype in ("object", "O", "|O", "V8", "<U1", "[('a','O')]"):
        with pytest.raises(wire.WireError):
            wire.decode({"$nd": {"dtype": dtype, "shape": [1], "data": "AAAAAAAAAAA="}})


def test_decode_rejects_forged_or_inconsistent_payloads():
    """Wrong byte counts, bad shapes, unknown tags, pickle-like payloads and deep nesting are refused."""
    bad = [
        {"$nd": {"dtype": "float64", "shape": [2], "data": "AAAAAAAAAAA="}},
        {"$nd": {"dtype": "float64", "shape": [-1], "data": ""}},
        {"$nd": {"dtype": "float64", "shape": [1], "data": "not base64!"}},
        {"$pickle": "gASVAAAAAAAAAAB9lC4="},
        {"a": 1},
        {"$f": "__import__('os')"},
        {"$h": 1},
        {"$fn": {"source": "def f(): pass", "name": "f"}},
    ]
    for data in bad:
        with pytest.raises(wire.WireError):
            wire.decode(data)
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError):
        wire.encode(deep)
    with pytest.raises(wire.WireError):
        wire.loads(b"\x80\x04\x95pickle")


def test_always_equal_float_subclass_arrives_as_a_plain_float():
    """A float subclass whose __eq__ always says True crosses as an exact, honest float."""
    class Always(float):
        def __eq__(self, other):
            return True

        __hash__ = float.__hash__

    data = wire.encode(Always(0.0), fallback=lambda obj: {"$h": 1})
    assert data == {"$h": 1}, "a float subclass must not be sent as a float"
    marker = object()
    assert wire.decode(data, hook=lambda tag, payload: marker) is marker
    forged = wire.decode({"$f": "0.0"})  # whatever the learner's process writes, a float is a float
    assert type(forged) is float and forged != 2.5
    with pytest.raises(wire.Unsendable):
        wire.encode(Always(0.0))


def test_unknown_objects_become_handles_only_through_the_fallback():
    """Objects outside the list need a fallback (the sandbox's handle table) to travel."""
    class Thing:
        pass

    with pytest.raises(wire.Unsendable):
        wire.encode(Thing())
    assert wire.encode([Thing()], fallback=lambda obj: {"$h": 7}) == [{"$h": 7}]
    assert wire.decode([{"$h": 7}], hook=lambda tag, p: ("handle", p)) == [("handle", 7)]


def test_torch_tensors_and_parameters_round_trip_with_grad():
    """Tensors keep dtype and requires_grad; Parameters keep their class and .grad."""
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.arange(6.0).reshape(2, 3))
    p.grad = torch.ones(2, 3) * 0.5
    back = roundtrip([p, torch.tensor([1, 2], dtype=torch.int64), torch.ones(2, dtype=torch.bfloat16),
                      torch.tensor([True, False])])
    assert isinstance(back[0], torch.nn.Parameter) and back[0].requires_grad
    assert torch.equal(back[0].detach(), p.detach()) and torch.equal(back[0].grad, p.grad)
    assert back[1].dtype == torch.int64 and back[2].dtype == torch.bfloat16 and back[3].dtype == torch.bool


def test_tensorflow_tensors_and_variables_round_trip():
    """TensorFlow constants and variables come back with their values, dtype and trainable flag."""
    tf = pytest.importorskip("tensorflow")
    back = roundtrip([tf.constant([1.0, 2.0]), tf.Variable([[3]], trainable=False)])
    assert isinstance(back[0], tf.Tensor) and back[0].numpy().tolist() == [1.0, 2.0]
    assert isinstance(back[1], tf.Variable) and not back[1].trainable and back[1].numpy().tolist() == [[3]]


def test_frames_over_a_pipe_with_deadline():
    """send/recv frame messages over a pipe; recv times out instead of blocking for ever."""
    import os
    import time

    r, w = os.pipe()
    try:
        wire.send(w, {"op": "x", "value": wire.encode(np.arange(3))})
        msg = wire.recv(r, time.monotonic() + 5)
        assert np.array_equal(wire.decode(msg["value"]), np.arange(3))
        with pytest.raises(wire.Timeout):
            wire.recv(r, time.monotonic() + 0.2)
        os.write(w, b"\xff\xff\xff\xff")
        with pytest.raises(wire.WireError):
            wire.recv(r, time.monotonic() + 1)
    finally:
        os.close(r)
        os.close(w)
