"""Issue 15 (F3): hidden inputs never reach the learner through feedback.

A learner who cannot see a hidden test's inputs could make their function show them: raise an exception
whose message holds ``repr`` of its arguments, print them to stderr, or return them as a string that the
test formats into its failure message. Graded here in the sandbox, every such submission's result and
feedback page carry none of the hidden inputs, and each failed row still says, in the test's own words,
which check failed. A failure in a test's visible part keeps the learner's own text (it is their case).
"""

from __future__ import annotations

import codecs
import json

import pytest
from fixtures.grader_fixture import submission_with, write_source

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
    return write_source(tmp_path_factory.mktemp("hidden-inputs"), "10_hidden", SOURCE_CELLS)


def _grade(assignment, tmp_path, code):
    result = trusted.grade(assignment, submission_with(assignment, code, tmp_path), limits=LIMITS)
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


# Issue 15, point 8: the learner's process lives for the whole grading run, so what a hidden part sends into it
# (a hidden case's inputs, a shipped function's code) can come out later, in the feedback of a test that has no
# hidden part, unless every test after a hidden part ran is shown in its own words only.
SHIPPED_SECRET = "TG-SHIPPED-CODE-8x3v"  # a constant in a function a hidden part ships to the learner's process
LATER_SOURCE = [
    notebooks.code("import numpy as np", id="setup"),
    SOURCE_CELLS[1],
    notebooks.tests('''
"""shout: the first visible check."""
assert shout("first") == "FIRST!", f"shout('first') gave {shout('first')!r}"
''', grade_id="shout_first", points=1),
    notebooks.tests(f'''
"""shout: capitals and an exclamation mark. [hidden tests: 1 point]"""
assert shout("{VISIBLE}") == "{VISIBLE.upper()}!", f"shout of the visible case gave {{shout('{VISIBLE}')!r}}"
### BEGIN HIDDEN TESTS
from gradlab.grading import in_learner_process


@in_learner_process
def shout_twice(learner_shout):
    tag = "{SHIPPED_SECRET}"
    return learner_shout(tag)[:0] + learner_shout("twice")


assert shout("{SECRET}") == "{SECRET.upper()}!", "shout is wrong on a hidden case"
assert shout_twice(shout) == "TWICE!", "shout is wrong when called from the learner's process"
### END HIDDEN TESTS
''', grade_id="shout_hidden", points=1),
    notebooks.tests('''
"""shout: a later visible check."""
assert shout("later") == "LATER!", f"shout('later') gave {shout('later')!r}"
''', grade_id="shout_later", points=1),
]
ROT13 = ("import codecs\n"
         "def _rot(text):\n"
         "    return codecs.encode(text, 'rot13')\n")
HONEST_UNTIL = ("def shout(word):\n"
                "    _SEEN.append(word)\n"
                "    if word != 'later':\n"
                "        return word.upper() + '!'\n")
LATER_LEAKS = {  # each passes every test before the last, then shows there what the hidden part sent in
    "recorded_raise": ROT13 + "_SEEN = []\n" + HONEST_UNTIL + "    raise ValueError(_rot(' '.join(_SEEN)))\n",
    "recorded_own_type": ROT13 + "_SEEN = []\n" + HONEST_UNTIL
    + "    raise type(_rot('_'.join(_SEEN)).replace('-', '_'), (Exception,), {})('x')\n",
    "recorded_stderr": ROT13 + "import sys\n_SEEN = []\n" + HONEST_UNTIL
    + "    print(_rot(' '.join(_SEEN)), file=sys.stderr)\n    return 'LATER!'\n",
    "recorded_return": ROT13 + "_SEEN = []\n" + HONEST_UNTIL + "    return _rot(' '.join(_SEEN))\n",
    "recorded_exit": "import os\n_SEEN = []\n" + HONEST_UNTIL
    + "    os._exit(len(''.join(_SEEN)) % 256)\n",
    "gc_walk_shipped": ROT13 + "_SEEN = []\n" + HONEST_UNTIL + '''
    import gc, types
    found = []
    for o in gc.get_objects():
        if type(o).__name__ == "Server" and hasattr(o, "shipped"):
            for key, fn in o.shipped.items():
                found += [str(k) for k in key]
                found += [c for c in fn.__code__.co_consts if isinstance(c, str)]
        elif isinstance(o, types.FunctionType) and o.__module__ == "__tg_shipped__":
            found += [c for c in o.__code__.co_consts if isinstance(c, str)]
    raise ValueError(_rot(" | ".join(found) or "nothing found"))
''',
}


@pytest.fixture(scope="module")
def later_assignment(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("hidden-later"), "10_hidden", LATER_SOURCE)


def _forms(text):
    rot = codecs.encode(text, "rot13")
    return {f(t) for t in (text, rot, rot.replace("-", "_"), text.replace("-", "_")) for f in (str, str.lower,
                                                                                              str.upper)}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(LATER_LEAKS))
def test_what_a_hidden_part_sent_in_never_comes_out_in_a_later_test(later_assignment, tmp_path, name):
    """Recorded during the hidden part (or found by walking the learner process's objects), shown in the
    feedback of a later test that has no hidden part: none of it reaches the result or the feedback page."""
    result = _grade(later_assignment, tmp_path, LATER_LEAKS[name])
    first, hidden, later = result["tests"]
    assert first["passed"] and hidden["passed"], result["tests"]  # the learner passes all until the last
    assert not later["passed"], later
    page = feedback.render(result)
    for text in (json.dumps(result), page):
        for secret in (SECRET, SHIPPED_SECRET):
            for form in _forms(secret):
                assert form not in text, (name, form)
    if name == "recorded_exit":  # the exit code it chose (the length of what it saw) is not shown either
        code = len("first" + VISIBLE + SECRET + SHIPPED_SECRET + "twice" + "later") % 256
        assert f"exit code {code}" not in json.dumps(result) and "withheld" in later["message"], later
        return
    assert "hidden test has already run" in later["message"] or "shout" in later["message"], later
    if name == "recorded_stderr":
        assert "stderr" in later["message"], later
    if name == "recorded_own_type":
        assert later["error_type"] == trusted.TYPE_WITHHELD, later


@pytest.mark.timeout(300)
def test_a_visible_test_before_any_hidden_part_keeps_the_learners_text(later_assignment, tmp_path):
    """Before any hidden part has run in the process, a failure shows the learner's own message; after, it
    shows the test's own words (the assertion's message, its values left out)."""
    head = "def shout(word):\n    if word not in ('first', 'later'):\n        return word.upper() + '!'\n"
    source = head + "    raise ValueError(f'cannot shout {word}')\n"
    first, hidden, later = _grade(later_assignment, tmp_path, source)["tests"]
    assert first["error_type"] == "ValueError" and "cannot shout first" in first["message"], first
    assert hidden["passed"] and not later["passed"] and "cannot shout" not in later["message"], later
    assert later["error_type"] == "ValueError" and "hidden test has already run" in later["message"], later
    first, hidden, later = _grade(later_assignment, tmp_path, head + "    return 'quiet ' + word\n")["tests"]
    assert "'quiet first'" in first["message"] and hidden["passed"], (first, hidden)
    assert "quiet" not in later["message"] and "shout('later') gave" in later["message"], later
