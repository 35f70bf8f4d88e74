"""Issue 15 (F1, F2, F5): the "by hand" checks look at what runs, not at names.

``gradlab.grading.framework_code_run`` is what the hidden tests of 03, 05 and 06 call (in the learner's
process) to refuse an exercise that hands its work to the framework: every class of attack an outside
tester used is tried here on the real functions, and so are honest answers, which must pass. The notebooks'
own hidden cells are graded with such answers by the real grader in tests/test_test_cells.py.
"""

import os
import sys
import threading
import types

import numpy as np
import pytest
from gradlab import grading
from gradlab.grading import BY_HAND, delegates_to, framework_code_run

torch = pytest.importorskip("torch")
clip_grad = torch.nn.utils.clip_grad


def _param(values):
    p = torch.nn.Parameter(torch.zeros(len(values), dtype=torch.float64))
    p.grad = torch.tensor(values, dtype=torch.float64)
    return p


def honest_clip_grad_norm_(parameters, max_norm):
    grads = [p.grad for p in parameters]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        g.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def honest_clip_by_value(grads, clip_value):
    return [np.clip(np.asarray(g), -clip_value, clip_value) for g in grads]


def _copies(func, module):
    """The ways an outside tester copied a framework function: same code object with other globals,
    code with another file name, and the decorator's inner function copied by hand."""
    inner = func
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    return {
        "FunctionType(f.__code__)": types.FunctionType(func.__code__, dict(vars(module)), "mine", func.__defaults__,
                                                       func.__closure__),
        "inner code, renamed file": types.FunctionType(inner.__code__.replace(co_filename="mine.py", co_name="mine"),
                                                       dict(vars(module)), "mine", inner.__defaults__),
        "alias": func,
    }


@pytest.mark.parametrize("how", ["FunctionType(f.__code__)", "inner code, renamed file", "alias"])
def test_a_copy_of_clip_grad_norm_is_caught(how):
    fn = _copies(clip_grad.clip_grad_norm_, clip_grad)[how]
    p = _param([3.0, 4.0])
    ran = framework_code_run(lambda: fn([p], 1.0), **BY_HAND["torch"])
    assert ran and all("clip_grad" in r for r in ran), ran
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.8], dtype=torch.float64), atol=1e-5)  # it did run


@pytest.mark.parametrize("how", ["FunctionType(f.__code__)", "inner code, renamed file", "alias"])
def test_a_copy_of_clip_grad_value_is_caught(how):
    fn = _copies(clip_grad.clip_grad_value_, clip_grad)[how]
    ran = framework_code_run(lambda: fn([_param([3.0, -4.0])], 1.0), **BY_HAND["torch"])
    assert ran, how


def test_a_copy_whose_helpers_are_copied_too_is_caught_by_its_code():
    """Every function of clip_grad.py copied with another file name into fresh globals: no frame is in
    torch's file, yet each copy's bytecode, names and constants are torch's."""
    copied = dict(vars(clip_grad))
    for name, value in vars(clip_grad).items():
        if isinstance(value, types.FunctionType) and value.__code__.co_filename == clip_grad.__file__:
            copied[name] = types.FunctionType(value.__code__.replace(co_filename="mine.py"), copied, name,
                                              value.__defaults__, value.__closure__)
    inner = clip_grad.clip_grad_norm_
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    fn = types.FunctionType(inner.__code__.replace(co_filename="mine.py"), copied, "mine", inner.__defaults__)
    ran = framework_code_run(lambda: fn([_param([3.0, 4.0])], 1.0), **BY_HAND["torch"])
    assert any("a copy of its code" in r for r in ran), ran


def test_honest_torch_code_passes():
    p = _param([3.0, 4.0])
    assert framework_code_run(lambda: honest_clip_grad_norm_([p], 1.0), **BY_HAND["torch"]) == []
    assert float(p.grad.norm()) == pytest.approx(1.0, rel=1e-5)


def test_numpy_by_hand_refuses_any_torch_op():
    """03 is NumPy by hand: torch.clamp, a tensor method or torch's Python code count, whatever the name."""

    def with_clamp(grads, c):
        return [torch.clamp(torch.from_numpy(np.array(g)), -c, c).numpy() for g in grads]

    def with_method(grads, c):
        return [torch.from_numpy(np.array(g)).clamp_(-c, c).numpy() for g in grads]

    alias = torch.clamp

    def with_alias(grads, c):
        return [np.asarray(alias(torch.as_tensor(np.array(g)), -c, c)) for g in grads]

    for fn in (with_clamp, with_method, with_alias):
        ran = framework_code_run(lambda fn=fn: fn([np.array([5.0, -0.5])], 1.0), **BY_HAND["numpy"])
        assert ran and all(r.startswith("torch") for r in ran), (fn.__name__, ran)
    assert framework_code_run(lambda: honest_clip_by_value([np.array([5.0, -0.5])], 1.0), **BY_HAND["numpy"]) == []


def test_a_code_copy_of_a_gradlab_helper_is_a_delegation():
    """F2: gradlab.training.grad_norm copied by its code (the tripwire on the function object missed it)."""
    from gradlab import training

    names = grading.ANSWER_EQUIVALENTS["global_norm"]
    grads = [np.array([3.0, 4.0])]
    for copy in (types.FunctionType(training.grad_norm.__code__, dict(vars(training)), "global_norm"),
                 types.FunctionType(training.grad_norm.__code__.replace(co_filename="x.py"), dict(vars(training)),
                                    "global_norm")):
        assert delegates_to(copy, lambda copy=copy: copy(grads), names) == ["gradlab.training.grad_norm"]

    def wraps_it(gs):
        return training.grad_norm(gs)

    assert delegates_to(wraps_it, lambda: wraps_it(grads), names) == ["gradlab.training.grad_norm"]

    def by_hand(gs):
        return float(np.sqrt(sum(np.sum(np.asarray(g, float) ** 2) for g in gs)))

    assert delegates_to(by_hand, lambda: by_hand(grads), names) == []


def test_switching_the_profiler_off_is_named():
    def sneaky(grads, c):
        sys.setprofile(None)
        return [torch.clamp(torch.from_numpy(np.array(g)), -c, c).numpy() for g in grads]

    ran = framework_code_run(lambda: sneaky([np.array([5.0])], 1.0), **BY_HAND["numpy"])
    assert any("switching the check off" in r for r in ran), ran
    assert sys.getprofile() is None


def test_reaching_for_the_record_is_named():
    def sneaky(grads, c):
        sys._getframe(1)
        return grads

    ran = framework_code_run(lambda: sneaky([np.array([5.0])], 1.0), **BY_HAND["numpy"])
    assert any("_getframe" in r for r in ran), ran


def test_a_thread_is_watched_too():
    def threaded(grads, c):
        out = []
        t = threading.Thread(target=lambda: out.append(torch.clamp(torch.ones(2), -c, c)))
        t.start()
        t.join()
        return grads

    ran = framework_code_run(lambda: threaded([np.array([5.0])], 1.0), **BY_HAND["numpy"])
    assert any(r.startswith("torch") for r in ran), ran


def test_a_replaced_setprofile_stops_the_check():
    saved = sys.setprofile
    sys.setprofile = lambda f: None
    try:
        with pytest.raises(RuntimeError, match="replaced"):
            framework_code_run(lambda: None, **BY_HAND["numpy"])
    finally:
        sys.setprofile = saved


def test_trivial_code_is_not_matched_by_its_twins():
    """A lambda or a two-line helper has twins everywhere: only named, substantial code is matched by its code."""
    identity = lambda x: x  # noqa: E731
    assert framework_code_run(lambda: identity(1), functions=("gradlab.grading._genuine",)) == []
    assert not grading._distinctive(identity.__code__)


@pytest.mark.skipif(os.environ.get("TG_SKIP_TF") == "1", reason="TensorFlow not wanted")
def test_tensorflow_and_keras_clipping_caught_honest_tf_ops_pass():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from tensorflow.python.ops import clip_ops

    def honest(grads, clip_norm):
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
        scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm)
        return [g * scale for g in grads], norm

    def via_keras(grads, c):
        variables = [keras.Variable(np.zeros_like(g)) for g in grads]
        keras.optimizers.SGD(learning_rate=1.0, clipnorm=c).apply([tf.constant(g) for g in grads], variables)
        return [-np.asarray(v) for v in variables]

    values = [tf.Variable(np.ones((2, 3), np.float32) * 3), tf.Variable(np.ones(3, np.float32))]
    assert framework_code_run(lambda: honest(values, 1.0), **BY_HAND["tensorflow"]) == []
    for how, fn in _copies(clip_ops.clip_by_global_norm, clip_ops).items():
        assert framework_code_run(lambda fn=fn: fn(values, 1.0), **BY_HAND["tensorflow"]), how
    arrays = [np.ones((2, 3), np.float32) * 3, np.ones(3, np.float32)]
    assert framework_code_run(lambda: via_keras(arrays, 1.0), **BY_HAND["tensorflow"])


def _watched():
    return threading._profile_hook is not None or sys.getprofile() is not None


def two_faced_clip_by_value(grads, clip_value):
    """Issue 19: torch's clamp normally, zeros while the by-hand check's profiler is on."""
    if threading._profile_hook is not None:  # a plain attribute read: the profiler sees no call
        return [np.zeros_like(np.asarray(g)) for g in grads]
    return [torch.from_numpy(np.asarray(g)).clamp(-clip_value, clip_value).numpy() for g in grads]


def test_result_true_returns_the_watched_calls_value():
    grads = [np.array([5.0, -0.5]), np.ones((2, 2)) * -3.0]
    ran, value = framework_code_run(lambda: honest_clip_by_value(grads, 1.0), result=True, **BY_HAND["numpy"])
    assert ran == []
    assert [v.tolist() for v in value] == [[1.0, -0.5], [[-1.0, -1.0], [-1.0, -1.0]]]
    assert framework_code_run(lambda: honest_clip_by_value(grads, 1.0), **BY_HAND["numpy"]) == [], "old return kept"
    ran, value = framework_code_run(lambda: 1 / 0, result=True)
    assert value is None, "a call that raises brings back None (a value check then fails)"


def test_a_function_that_answers_differently_when_watched_fails_the_value_check():
    rng = np.random.default_rng(1919)
    grads = [rng.normal(0, 3, size=(3, 2)), rng.normal(0, 3, size=4)]
    expected = [np.clip(g, -1.0, 1.0) for g in grads]  # the reference, from private copies
    assert all(np.array_equal(o, e) for o, e in zip(two_faced_clip_by_value(grads, 1.0), expected, strict=True)), \
        "unwatched it answers right (with torch)"
    ran, value = framework_code_run(lambda: two_faced_clip_by_value([g.copy() for g in grads], 1.0),
                                    result=True, **BY_HAND["numpy"])
    assert ran == [], "the attack hides its torch call from the profiler"
    assert not all(np.array_equal(o, e) for o, e in zip(value, expected, strict=True)), \
        "but the value brought back is wrong"
    # and the honest function passes both checks on the same inputs
    ran, value = framework_code_run(lambda: honest_clip_by_value([g.copy() for g in grads], 1.0),
                                    result=True, **BY_HAND["numpy"])
    assert ran == [] and all(np.array_equal(o, e) for o, e in zip(value, expected, strict=True))


def test_delegates_to_returns_the_value_too():
    from gradlab.training import grad_norm

    def two_faced_global_norm(grads):
        if _watched():
            return 0.0
        return grad_norm(grads)

    grads = [np.array([3.0, 4.0]), np.array([12.0])]
    hits, value = delegates_to(two_faced_global_norm, lambda: two_faced_global_norm(grads),
                               ("gradlab.training.grad_norm",), result=True)
    assert value == 0.0 and not np.isclose(value, 13.0), "the watched value gives the trick away"
    assert delegates_to(two_faced_global_norm, lambda: two_faced_global_norm(grads),
                        ("gradlab.training.grad_norm",)) in ([], ["sys.getprofile (switching the check off)"])


def test_an_in_place_function_that_skips_its_work_when_watched_is_caught_by_the_grads_after():
    """05's pattern: an in-place exercise returns None, so the value checked is each parameter's .grad after the
    watched call, against torch's own clip_grad_value_ run on private copies."""

    def two_faced_clip_grad_value_(parameters, clip_value):
        if _watched():
            return None  # leaves the gradients as they were
        torch.nn.utils.clip_grad_value_(parameters, clip_value)
        return None

    def honest_clip_grad_value_(parameters, clip_value):
        for p in parameters:
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)

    gen = torch.Generator().manual_seed(1905)
    grads = [3.0 * torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((3, 2), (4,))]
    ref = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for q, g in zip(ref, grads, strict=True):
        q.grad = g.clone()
    torch.nn.utils.clip_grad_value_(ref, 1.0)

    def watched_grads(fn):
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        ran = framework_code_run(lambda: fn(params, 1.0), **BY_HAND["torch"])
        return ran, [p.grad for p in params]

    ran, after = watched_grads(two_faced_clip_grad_value_)
    assert ran == [], "the attack hides its torch call from the profiler"
    assert not all(torch.equal(a, q.grad) for a, q in zip(after, ref, strict=True)), \
        "but the gradients it left are unclipped"
    ran, after = watched_grads(honest_clip_grad_value_)
    assert ran == [] and all(torch.equal(a, q.grad) for a, q in zip(after, ref, strict=True)), \
        "the honest answer passes both"
