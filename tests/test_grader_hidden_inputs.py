"""Issue 15 (F3): hidden inputs never reach the learner through feedback.

A learner who cannot see a hidden test's inputs could make their function show them: raise an exception
whose message holds ``repr`` of its arguments, print them to stderr, or return them as a string that the
test formats into its failure message. Graded here in the sandbox, every such submission's result and
feedback page carry none of the hidden inputs, and each failed row still says, in the test's own words,
which check failed. A failure in a test's visible part keeps the learner's own text (it is their case).
"""

from __future__ import annotations

import json

import pytest

from autograder import feedback, notebooks, trusted
from autograder.sandbox import Limits

LIMITS = Limits(cpu_seconds=60, memory_bytes=2 << 30, wall_seconds=240, cell_seconds=60, call_seconds=30)
SECRET = "TG-HIDDEN-INPUT-5k2q"  # a hidden case's input (a string, so no number filter can hide it)
VISIBLE = "visible-case-input"

SOURCE_CELLS = [
    notebooks.code("import numpy as np", id="setup"),
    notebooks.solution('''
def shout(word):
    """``word`` in capitals with an exclamation mark."""
    ### BEGIN SOLUTION
    return word.upper() + "!"
    ### END SOLUTION
''', grade_id="shout"),
    notebooks.tests(f'''
"""shout: capitals and an exclamation mark. [hidden tests: 1 point]"""
assert shout("{VISIBLE}") == "{VISIBLE.upper()}!", f"shout of the visible case gave {{shout('{VISIBLE}')!r}}"
### BEGIN HIDDEN TESTS
word = "{SECRET}"
got = shout(word)
assert got == word.upper() + "!", f"shout gave {{got!r}} on a hidden case"
### END HIDDEN TESTS
''', grade_id="shout_hidden", points=1),
]

HEAD = "import sys\ndef shout(word):\n"
VISIBLE_OK = f"    if word == {VISIBLE!r}:\n        return word.upper() + '!'\n"
LEAKS = {  # each passes the visible case and tries to show the hidden input
    "raises_builtin": HEAD + VISIBLE_OK + "    raise ValueError(f'bad input {word!r}')\n",
    "raises_assertion": HEAD + VISIBLE_OK + "    raise AssertionError(f'input was {word!r}')\n",
    "raises_own_type": HEAD + VISIBLE_OK + "    raise type('Leak', (Exception,), {})(word)\n",
    "prints_to_stderr": HEAD + VISIBLE_OK + ("    print('input:', word, file=sys.stderr)\n"
                                             "    return word.upper() + '!'\n"),
    "returns_it": HEAD + VISIBLE_OK + "    return 'input: ' + word\n",
}


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    path = tmp_path_factory.mktemp("hidden-inputs") / "10_hidden" / "10_hidden.ipynb"
    path.parent.mkdir()
    notebooks.write(notebooks.new_notebook(SOURCE_CELLS), path)
    return path


def _grade(assignment, tmp_path, code):
    nb = notebooks.read(assignment)
    for c in nb["cells"]:
        if notebooks.is_solution(c):
            c["source"] = code
    path = tmp_path / "10_hidden.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    result = trusted.grade(assignment, path, limits=LIMITS)
    result.update(learner="mallory", assignment="10_hidden")
    return result


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(LEAKS))
def test_a_hidden_input_never_reaches_the_feedback(assignment, tmp_path, name):
    result = _grade(assignment, tmp_path, LEAKS[name])
    assert result["status"] == "graded", result["status"]
    (test,) = result["tests"]
    assert not test["passed"], test
    page = feedback.render(result)
    for text in (json.dumps(result), page):
        assert SECRET not in text and SECRET.lower() not in text and SECRET.upper() not in text, name
    assert "hidden test" in test["message"] or "withheld" in test["message"], test
    if name == "prints_to_stderr":
        assert "stderr" in test["message"], test  # why it failed, without what was written
    else:
        assert "shout" in test["message"], test  # which check failed, in the test's own words
    if name == "raises_own_type":
        assert test["error_type"] == trusted.TYPE_WITHHELD, test  # the learner chose that name


@pytest.mark.timeout(300)
def test_a_visible_failure_keeps_the_learners_text(assignment, tmp_path):
    """In the visible part the learner's own exception message and stderr are theirs to see."""
    code = HEAD + "    print('warned about', word, file=sys.stderr)\n    return word.upper() + '!'\n"
    (test,) = _grade(assignment, tmp_path, code)["tests"]
    assert not test["passed"] and "It wrote" in test["message"] and VISIBLE in test["message"], test
    code = HEAD + "    raise ValueError(f'cannot shout {word}')\n"
    (test,) = _grade(assignment, tmp_path, code)["tests"]
    assert test["error_type"] == "ValueError" and f"cannot shout {VISIBLE}" in test["message"], test
