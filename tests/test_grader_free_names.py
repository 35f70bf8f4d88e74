"""The names a test cell takes from the learner's notebook (autograder.plan.free_names), scope by scope.

The grader binds, in a test cell's namespace, every name the cell reads and does not bind itself. A name a
function of the test binds (a parameter, a local, a comprehension's variable) binds it in that function only:
a test's helper ``def check(clip_norm, g)`` must not hide the learner's ``clip_norm`` from the rest of the
cell, as it did when any binding anywhere counted for the whole cell (the correct answer then lost its
points to a NameError).
"""

from __future__ import annotations

import pytest
from fixtures.grader_fixture import submission_with, write_source

from autograder import notebooks, trusted
from autograder.plan import free_names
from autograder.sandbox import Limits


@pytest.mark.parametrize("source, expected", [
    ("def check(clip_norm, g):\n    return clip_norm(g)\nassert check(clip_norm, 3)\n", ["clip_norm"]),
    ("def check(clip_norm, g):\n    return clip_norm(g)\nassert check(lambda g: g, 3)\n", []),
    ("def f():\n    v = 1\n    def g():\n        return v + w\n    return g\n", ["w"]),
    ("[k for k in range(3) if k < limit]\n", ["limit"]),
    ("class Case:\n    a = step\n    def m(self):\n        return self.a + rate\n", ["step", "rate"]),
    ("def setup():\n    global W\n    W = 2\nsetup()\nassert rnn(W)\n", ["rnn"]),
    ("x = grad(1)\ngrad = None\n", []),  # bound at module level somewhere in the cell: the cell's own
    ("import numpy as np\ntry:\n    f(np)\nexcept ValueError as err:\n    print(err)\n", ["f"]),
    ("print(len(sorted(data)))\n", ["data"]),  # builtins are never the learner's
])
def test_free_names_are_the_ones_each_scope_leaves_free(source, expected):
    assert free_names(source) == expected


LIMITS = Limits(cpu_seconds=60, memory_bytes=2 << 30, wall_seconds=240, cell_seconds=60, call_seconds=30)
SOURCE_CELLS = [
    notebooks.solution('''
def clip_norm(g, threshold):
    """``g`` rescaled to norm ``threshold`` when it is longer."""
    ### BEGIN SOLUTION
    return g if abs(g) <= threshold else threshold * g / abs(g)
    ### END SOLUTION
''', grade_id="clip_norm"),
    notebooks.tests('''
"""clip_norm: a helper whose parameter is named like the learner's function. [hidden tests: 0 points]"""
def check(clip_norm, g, threshold, want):
    got = clip_norm(g, threshold)
    assert got == want, f"clip_norm({g}, {threshold}) gave {got}, expected {want}"

check(clip_norm, 5.0, 2.0, 2.0)
check(clip_norm, -1.0, 2.0, -1.0)
''', grade_id="clip_norm_test", points=2),
]


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("free-names"), "11_scopes", SOURCE_CELLS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("code, score", [
    ("def clip_norm(g, threshold):\n    return g if abs(g) <= threshold else threshold * g / abs(g)\n", 2.0),
    ("def clip_norm(g, threshold):\n    return threshold * g / abs(g)\n", 0.0),  # also scales up short ones
    ("def clip_norm(g, threshold):\n    return g\n", 0.0),
])
def test_a_helpers_parameter_does_not_hide_the_learners_function(assignment, tmp_path, code, score):
    result = trusted.grade(assignment, submission_with(assignment, code, tmp_path), limits=LIMITS)
    assert result["status"] == "graded", result["status"]
    (test,) = result["tests"]
    assert test["score"] == score, test
    if score == 0:
        assert "NameError" not in f"{test.get('error_type')} {test.get('message')}", test
