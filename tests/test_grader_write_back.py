"""Write-back: a learner function's changes to its arguments reach the test only for an in-place exercise.

Issue 15, point 4: a function that computes nothing and overwrites its inputs with its own output used
to pass a test that builds its reference after the call. Now only exercises declared in place (in
gradlab.grading, or ``@in_place`` in their solution cell) are written back, and then without changing
any value's type, shape, dtype, length or keys.
"""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "fixtures")]

from grader_fixture import ASSIGNMENT, SOURCE_NB, cell, solution_nb, with_cell, write_submission  # noqa: E402

from autograder import notebooks  # noqa: E402
from autograder.paths import SOLUTIONS, assignments  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402
from autograder.write_back import declared_in_cell, in_place_exercises, same_kind, sync, write_back  # noqa: E402

LIMITS = Limits(cpu_seconds=60, memory_bytes=2 << 30, wall_seconds=120, cell_seconds=30, call_seconds=30)

# A test that builds its reference from its input AFTER the call (the pattern the rule forbids):
# with write-back on every call, a double() that overwrites x with zeros and returns zeros passed.
LATE_REFERENCE_TEST = '''
"""double returns twice its input (reference built after the call, on purpose)."""
import numpy as np

x = np.array([1.0, 2.0, -3.0])
out = double(x)
assert np.allclose(out, 2 * x), f"got {out}"
'''
OVERWRITING_DOUBLE = '''
def double(x):
    x[...] = 0
    return np.zeros_like(x)
'''


def test_sync_never_changes_type_shape_dtype_length_or_keys():
    a = np.zeros(3)
    sync(a, np.ones(4))  # shape differs: untouched
    sync(a, np.ones(3, dtype=np.float32))  # dtype differs: untouched
    assert np.array_equal(a, np.zeros(3)) and a.dtype == np.float64
    sync(a, np.ones(3))
    assert np.array_equal(a, np.ones(3))
    items = [np.zeros(2), np.zeros(2)]
    first = items[0]
    sync(items, [np.ones(2)])  # shorter: untouched
    sync(items, [np.ones(2), np.ones(2), np.ones(2)])  # longer: untouched
    assert len(items) == 2 and not items[0].any()
    sync(items, [np.ones(2), "text"])  # same length, one element of another kind: only the fitting one
    assert items[0] is first and np.array_equal(first, np.ones(2)) and type(items[1]) is np.ndarray
    d = {"w": np.zeros(2)}
    sync(d, {"w": np.ones(2), "extra": 1})  # other keys: untouched
    assert set(d) == {"w"} and not d["w"].any()
    sync(d, {"w": np.ones(2)})
    assert np.array_equal(d["w"], np.ones(2))
    assert not same_kind((1, 2), [1, 2]) and not same_kind(1.0, 2.0)
    args = [np.zeros(2)]
    write_back(args, {}, [np.ones(2)], {"injected": np.ones(2)})  # kwargs keys differ: kwargs ignored
    assert np.array_equal(args[0], np.ones(2))


def test_sync_of_torch_parameters_keeps_dtype_and_shape():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((2,), 5.0)
    new = torch.nn.Parameter(torch.zeros(2))
    new.grad = torch.full((2,), 1.0)
    sync(p, new)
    assert torch.equal(p.grad, torch.ones(2))
    bad = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    bad.grad = torch.full((2,), 9.0, dtype=torch.float64)
    sync(p, bad)
    assert p.dtype == torch.float32 and torch.equal(p.grad, torch.ones(2))


def test_declared_in_place_exercises():
    """The fixture declares scale_in_place with @in_place; the course's in-place exercises are in the registry."""
    assert in_place_exercises(notebooks.read(SOURCE_NB)) == {"scale_in_place"}
    assert declared_in_cell("@grading.in_place\ndef f(x): pass\n@other\ndef g(x): pass") == {"f"}
    found = set()
    for assignment in assignments():
        found |= in_place_exercises(notebooks.read(SOLUTIONS / assignment / f"{assignment}.ipynb"))
    assert {"guarded_sgd_step", "manual_clip_grad_norm_", "manual_clip_grad_value_"} <= found
    assert not found & {"clip_by_value", "clip_by_norm", "clip_by_global_norm", "double"}


def _source_with(tmp_path, grade_id, source):
    nb = copy.deepcopy(solution_nb())
    cell(nb, grade_id)["source"] = source
    path = tmp_path / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.mark.timeout(300)
def test_a_function_that_overwrites_its_inputs_does_not_pass_a_late_reference(tmp_path):
    """Against a test that builds its reference after the call, overwriting x fails; an honest double
    passes; the in-place exercise (scale_in_place) still gets its updates written back."""
    from autograder.trusted import grade

    source = _source_with(tmp_path, "double_values", LATE_REFERENCE_TEST)
    cheat = write_submission(tmp_path / "subs", "cheat", with_cell("double", OVERWRITING_DOUBLE))
    honest = write_submission(tmp_path / "subs", "honest", solution_nb())
    by_id = {}
    for name, path in (("cheat", cheat), ("honest", honest)):
        result = grade(source, path, limits=LIMITS)
        assert result["status"] == "graded", result["status"]
        by_id[name] = {t["grade_id"]: t["passed"] for t in result["tests"]}
    assert by_id["cheat"]["double_values"] is False, "overwriting the test's input passed"
    assert by_id["honest"]["double_values"] is True
    assert by_id["cheat"]["scale_in_place_updates"] and by_id["honest"]["scale_in_place_updates"]
