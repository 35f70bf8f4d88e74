"""The wire format between the grader's trusted process and the sandboxed learner process.

JSON with raw bytes in base64, never pickle: decoding builds only exact builtin types, exact NumPy
arrays, torch tensors and TensorFlow tensors, so nothing the learner's process sends can carry code
or an object with a forged ``__eq__`` (an always-equal ``float`` subclass arrives as a plain
``float``). What travels:

=====================  =============================================================================
``None`` ``bool``      JSON literals
``int`` ``str``        JSON numbers and strings
``float``              ``{"$f": repr}`` (nan and inf included)
``complex``            ``{"$c": [re, im]}``
``list``               a JSON array
``tuple``              ``{"$t": [...]}``
``dict`` (str keys)    ``{"$d": {...}}``
NumPy array / scalar   ``{"$nd": {dtype, shape, data}}`` / ``{"$ns": ...}``, numeric or bool dtypes
torch tensor           ``{"$pt": {dtype, shape, data, requires_grad, param, grad}}``
TensorFlow tensor      ``{"$tf": {dtype, shape, data, variable, trainable}}``
handle                 ``{"$h": id}``: an object that stays in the learner's process
shipped function       ``{"$fn": {source, name}}``: a test function sent by source (trusted -> learner)
module attribute       ``{"$ref": {module, name}}``: e.g. ``np.sin`` passed as an argument
=====================  =============================================================================

torch and TensorFlow are imported lazily, only when such a value appears. The same module runs on
both sides (the sandbox imports it as a plain file); ``encode`` and ``decode`` take a ``fallback`` /
``hook`` for the side-specific tags (handles, shipped functions).

Messages are framed on a pipe as a 4-byte big-endian length and the JSON bytes; ``send`` and
``recv`` take deadlines, so a stuck or hostile peer can never block the grader for ever.
"""

from __future__ import annotations

import base64
import json
import math
import os
import select
import struct
import sys
import time

MAX_FRAME = 512 * 1024 * 1024  # bytes of JSON in one message
MAX_DEPTH = 64  # nesting of containers
MAX_NODES = 2_000_000  # values in one message
MAX_ARRAY_BYTES = 256 * 1024 * 1024  # raw bytes of one array or tensor

# What the grader accepts from the learner's process, per message type, checked on the frame's
# announced length before its body is read (the frame cap above is only the outer bound):
SETUP_BYTES_PER_CELL = 32 * 1024  # the setup phase's "cell"/"ready": 2,000 characters of message a cell
CONTROL_BYTES = 64 * 1024  # replies that carry no value ("len", "repr"), and any error reply
REPLY_BYTES = 128 * 1024 * 1024  # replies that carry a value (arrays a learner function returns)


def setup_limit(cells):
    """The largest setup-phase message (a ``cell`` or the ``ready`` with every cell's result)."""
    return CONTROL_BYTES + SETUP_BYTES_PER_CELL * max(0, int(cells))


def reply_limit(op):
    """The largest reply the grader reads for a request ``op``."""
    return CONTROL_BYTES if op in ("len", "repr") else REPLY_BYTES

NUMERIC_DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
)
TORCH_DTYPES = NUMERIC_DTYPES + ("bfloat16",)
TAGS = ("$f", "$c", "$t", "$d", "$nd", "$ns", "$pt", "$tf", "$h", "$fn", "$ref")


class WireError(ValueError):
    """A value that cannot be sent, or a message that is not valid on the wire."""


class Unsendable(WireError):
    """``encode`` met a value of a type that does not travel (and no fallback took it)."""


# ----------------------------------------------------------------------------------------------- encode


def _np():
    import numpy

    return numpy


def _b64(raw):
    return base64.b64encode(raw).decode("ascii")


def _is_torch_tensor(value):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _is_tf_value(value):
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    try:
        return isinstance(value, (tf.Tensor, tf.Variable))
    except Exception:
        return False


def _array_payload(arr):
    np = _np()
    arr = np.asarray(arr)
    if type(arr) is not np.ndarray:
        arr = arr.view(np.ndarray)
    name = arr.dtype.name
    if name not in NUMERIC_DTYPES:
        raise Unsendable(f"NumPy dtype {arr.dtype} does not travel (numeric and bool dtypes only)")
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    raw = np.ascontiguousarray(le).tobytes()
    if len(raw) > MAX_ARRAY_BYTES:
        raise Unsendable(f"array of {len(raw)} bytes is larger than the limit {MAX_ARRAY_BYTES}")
    return {"dtype": name, "shape": [int(n) for n in arr.shape], "data": _b64(raw)}


def _torch_payload(t, fallback, depth, counter):
    import torch

    name = str(t.dtype).removeprefix("torch.")
    if name not in TORCH_DTYPES:
        raise Unsendable(f"torch dtype {t.dtype} does not travel")
    if t.device.type != "cpu" or t.is_sparse or getattr(t, "is_quantized", False):
        t = t.detach().to_dense().cpu() if t.is_sparse else t.detach().cpu()
    data = t.detach().contiguous().reshape(-1)
    if name == "bfloat16":
        data = data.view(torch.int16)
    elif name == "bool":
        data = data.to(torch.uint8)
    raw = data.numpy().astype(data.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
    if len(raw) > MAX_ARRAY_BYTES:
        raise Unsendable(f"tensor of {len(raw)} bytes is larger than the limit {MAX_ARRAY_BYTES}")
    grad = getattr(t, "grad", None) if t.is_leaf else None
    return {
        "dtype": name,
        "shape": [int(n) for n in t.shape],
        "data": _b64(raw),
        "requires_grad": bool(t.requires_grad),
        "param": isinstance(t, torch.nn.Parameter),
        "grad": None if grad is None else _encode(grad, fallback, depth + 1, counter),
    }


def _tf_payload(value):
    tf = sys.modules["tensorflow"]
    is_var = isinstance(value, tf.Variable)
    arr = value.numpy()
    payload = _array_payload(arr)
    payload["variable"] = bool(is_var)
    payload["trainable"] = bool(getattr(value, "trainable", False)) if is_var else False
    return payload


def encode(value, fallback=None):
    """``value`` as JSON-ready data; ``fallback(obj)`` gives the tag for anything else, or raises."""
    return _encode(value, fallback, 0, [0])


def _encode(value, fallback, depth, counter):
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise Unsendable(f"more than {MAX_NODES} values in one message")
    if depth > MAX_DEPTH:
        raise Unsendable(f"nested deeper than {MAX_DEPTH}")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value
    if t is float:
        return {"$f": repr(value)}
    if t is complex:
        return {"$c": [repr(value.real), repr(value.imag)]}
    if t is list:
        return [_encode(v, fallback, depth + 1, counter) for v in value]
    if t is tuple:
        return {"$t": [_encode(v, fallback, depth + 1, counter) for v in value]}
    if t is dict and all(type(k) is str for k in value):
        return {"$d": {k: _encode(v, fallback, depth + 1, counter) for k, v in value.items()}}
    np = sys.modules.get("numpy")
    try:
        if np is not None and isinstance(value, np.ndarray):
            return {"$nd": _array_payload(value)}
        if np is not None and isinstance(value, np.generic) and value.dtype.name in NUMERIC_DTYPES:
            return {"$ns": _array_payload(np.asarray(value))}
        if _is_torch_tensor(value):
            return {"$pt": _torch_payload(value, fallback, depth, counter)}
        if _is_tf_value(value):
            return {"$tf": _tf_payload(value)}
    except Unsendable:
        if fallback is None:
            raise
        return fallback(value)
    if fallback is None:
        raise Unsendable(f"a value of type {t.__module__}.{t.__qualname__} does not travel")
    return fallback(value)


# ----------------------------------------------------------------------------------------------- decode


def _unb64(text, what):
    if type(text) is not str:
        raise WireError(f"{what}: data is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except Exception as exc:
        raise WireError(f"{what}: invalid base64 data") from exc


def _shape(payload, what):
    shape = payload.get("shape")
    if type(shape) is not list or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        raise WireError(f"{what}: invalid shape {shape!r}")
    return tuple(shape)


def _check_payload(payload, keys, what):
    if type(payload) is not dict or not set(keys) <= set(payload) or not set(payload) <= set(keys):
        raise WireError(f"{what}: expected the fields {sorted(keys)}")


def _decode_array(payload, what="array"):
    np = _np()
    if type(payload) is not dict:
        raise WireError(f"{what}: payload is not an object")
    name = payload.get("dtype")
    if name not in NUMERIC_DTYPES:
        raise WireError(f"{what}: dtype {name!r} is not allowed")
    shape = _shape(payload, what)
    raw = _unb64(payload.get("data"), what)
    dtype = np.dtype(name).newbyteorder("<")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise WireError(f"{what}: {len(raw)} bytes do not fit shape {shape} of {name}")
    return np.frombuffer(raw, dtype=dtype).astype(np.dtype(name)).reshape(shape).copy()


def _decode_torch(payload, hook, depth, counter):
    _check_payload(payload, ("dtype", "shape", "data", "requires_grad", "param", "grad"), "tensor")
    import torch

    name = payload["dtype"]
    if name not in TORCH_DTYPES:
        raise WireError(f"tensor: dtype {name!r} is not allowed")
    if type(payload["requires_grad"]) is not bool or type(payload["param"]) is not bool:
        raise WireError("tensor: requires_grad and param must be booleans")
    shape = _shape(payload, "tensor")
    raw = _unb64(payload["data"], "tensor")
    dtype = getattr(torch, name)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if math.prod(shape) * itemsize != len(raw):
        raise WireError(f"tensor: {len(raw)} bytes do not fit shape {shape} of {name}")
    if len(raw) == 0:
        t = torch.empty(shape, dtype=dtype)
    elif name == "bfloat16":
        t = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.bfloat16).reshape(shape).clone()
    elif name == "bool":
        t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.bool).reshape(shape).clone()
    else:
        t = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape).clone()
    can_grad = t.is_floating_point() or t.is_complex()
    if payload["param"]:
        t = torch.nn.Parameter(t, requires_grad=payload["requires_grad"] and can_grad)
    elif payload["requires_grad"] and can_grad:
        t.requires_grad_(True)
    grad = payload["grad"]
    if grad is not None:
        g = _decode(grad, hook, depth + 1, counter)
        if not isinstance(g, torch.Tensor) or g.shape != t.shape:
            raise WireError("tensor: .grad must be a tensor of the same shape")
        if can_grad:
            t.grad = g.detach().to(t.dtype)
    return t


def _decode_tf(payload):
    _check_payload(payload, ("dtype", "shape", "data", "variable", "trainable"), "tf tensor")
    if type(payload["variable"]) is not bool or type(payload["trainable"]) is not bool:
        raise WireError("tf tensor: variable and trainable must be booleans")
    arr = _decode_array({k: payload[k] for k in ("dtype", "shape", "data")}, "tf tensor")
    import tensorflow as tf

    if payload["variable"]:
        return tf.Variable(arr, trainable=payload["trainable"])
    return tf.constant(arr)


def _decode_float(text, what="float"):
    if type(text) is not str or len(text) > 40:
        raise WireError(f"{what}: expected the repr of a float")
    try:
        return float(text)
    except ValueError as exc:
        raise WireError(f"{what}: {text!r} is not a float") from exc


def decode(data, hook=None):
    """Rebuild a value from ``encode``'s output; ``hook(tag, payload)`` decodes $h, $fn and $ref."""
    return _decode(data, hook, 0, [0])


def _decode(data, hook, depth, counter):
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise WireError(f"more than {MAX_NODES} values in one message")
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH}")
    t = type(data)
    if data is None or t is bool or t is str or t is int:
        return data
    if t is list:
        return [_decode(v, hook, depth + 1, counter) for v in data]
    if t is not dict or len(data) != 1:
        raise WireError(f"unexpected {t.__name__} on the wire")
    (tag, payload), = data.items()
    if tag == "$f":
        return _decode_float(payload)
    if tag == "$c":
        if type(payload) is not list or len(payload) != 2:
            raise WireError("complex: expected [re, im]")
        return complex(_decode_float(payload[0]), _decode_float(payload[1]))
    if tag == "$t":
        if type(payload) is not list:
            raise WireError("tuple: expected a list")
        return tuple(_decode(v, hook, depth + 1, counter) for v in payload)
    if tag == "$d":
        if type(payload) is not dict:
            raise WireError("dict: expected an object")
        return {str(k): _decode(v, hook, depth + 1, counter) for k, v in payload.items()}
    if tag == "$nd":
        _check_payload(payload, ("dtype", "shape", "data"), "array")
        return _decode_array(payload)
    if tag == "$ns":
        _check_payload(payload, ("dtype", "shape", "data"), "scalar")
        arr = _decode_array(payload, "scalar")
        if arr.shape != ():
            raise WireError("scalar: shape must be ()")
        return arr[()]
    if tag == "$pt":
        return _decode_torch(payload, hook, depth, counter)
    if tag == "$tf":
        return _decode_tf(payload)
    if tag in ("$h", "$fn", "$ref"):
        if hook is None:
            raise WireError(f"{tag} is not accepted here")
        return hook(tag, payload)
    raise WireError(f"unknown tag {tag!r}")


# ----------------------------------------------------------------------------------------------- frames


def dumps(message):
    """One message as bytes (JSON; NaN/Infinity never appear since floats travel as reprs)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def loads(raw):
    """Parse one message; anything but a JSON object is a WireError."""
    try:
        message = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise WireError(f"malformed message: {type(exc).__name__}") from exc
    if type(message) is not dict:
        raise WireError("a message must be a JSON object")
    return message


class PeerClosed(WireError):
    """The other end of the pipe closed (the learner's process died or the grader went away)."""


class Timeout(WireError):
    """No complete message arrived before the deadline."""


def _wait(fd, event, deadline):
    poller = select.poll()
    poller.register(fd, event | select.POLLHUP | select.POLLERR)
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise Timeout("timed out")
        ready = poller.poll(None if remaining is None else max(1, int(remaining * 1000)))
        if ready:
            return ready[0][1]


def send(fd, message, deadline=None):
    """Write one framed message to ``fd`` (non-blocking writes, so a peer that stops reading times out)."""
    body = dumps(message)
    if len(body) > MAX_FRAME:
        raise WireError(f"message of {len(body)} bytes is larger than the limit {MAX_FRAME}")
    data = memoryview(struct.pack(">I", len(body)) + body)
    blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    try:
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                _wait(fd, select.POLLOUT, deadline)
                continue
            except (BrokenPipeError, OSError) as exc:
                raise PeerClosed(f"pipe closed while sending ({exc.__class__.__name__})") from exc
            data = data[n:]
    finally:
        os.set_blocking(fd, blocking)


def _read_exact(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(n - got, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise PeerClosed("pipe closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd, deadline=None):
    """Read one framed message from ``fd``; ``deadline`` is a time.monotonic() value or None."""
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > MAX_FRAME:
        raise WireError(f"message of {size} bytes announced, limit is {MAX_FRAME}")
    return loads(_read_exact(fd, size, deadline))
