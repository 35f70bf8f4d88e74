"""Feedback never carries hidden reference values, and a withheld message still gives a hint.

* A small assignment built here (its hidden tests fail with messages that print the reference array
  and the learner's, and with assertion messages that quote hidden-test text) is graded in the
  sandbox with wrong submissions: the page shows neither the reference values nor any run of
  numbers from a hidden test, and each withheld message names the check that failed.
* Every assignment of the real course is graded with a wrong submission (every exercise function's
  numeric results 3 % off, which is what makes assertion messages print values): no test row of a
  hidden test shows an array repr or a run of four or more numbers.
* A missing assignment's page says "not submitted" and nothing else.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from fixtures.grader_fixture import submission_with, write_source  # noqa: E402

from autograder import feedback, notebooks, trusted  # noqa: E402
from autograder.paths import SOLUTIONS, assignments, notebook_path  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

LIMITS = Limits(cpu_seconds=60, memory_bytes=2 << 30, wall_seconds=240, cell_seconds=60, call_seconds=30)
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER_RUN = re.compile(rf"(?<![\w.]){NUMBER}(?:[\s,;:\[\]()]+{NUMBER}){{3,}}(?![\w.])")


def float_run(text):
    """The first run of four or more numbers with a float among them (an array's values), or None."""
    for match in NUMBER_RUN.finditer(text):
        if any(not re.fullmatch(r"[-+]?\d+", n) for n in re.findall(NUMBER, match.group(0))):
            return match.group(0)
    return None
ARRAY_REPR = re.compile(r"\b(?:array|tensor|Tensor)\(")
SEED = 20240607

SOURCE_CELLS = [
    notebooks.code("import numpy as np", id="setup"),
    notebooks.solution('''
def scale_grad(g, factor):
    """``g`` times ``factor``, as a float array."""
    ### BEGIN SOLUTION
    return np.asarray(g, dtype=float) * factor
    ### END SOLUTION
''', grade_id="scale_grad"),
    notebooks.tests(f'''
"""scale_grad multiplies every entry by the factor."""
import numpy as np  # noqa: E402

assert np.allclose(scale_grad([1.0, 2.0], 2.0), [2.0, 4.0]), "scale_grad([1, 2], 2) should be [2, 4]"
### BEGIN HIDDEN TESTS
rng = np.random.default_rng({SEED})
g = rng.normal(size=6)
reference = g * 0.37
got = scale_grad(g, 0.37)
assert np.allclose(got, reference), f"expected {{reference}}, got {{got}}"
### END HIDDEN TESTS
''', grade_id="scale_grad_hidden_values", points=1),
    notebooks.tests('''
"""scale_grad keeps the direction of a gradient."""
import numpy as np  # noqa: E402

### BEGIN HIDDEN TESTS
h = np.array([0.25, -1.5, 2.0, 3.0])
out = scale_grad(h, 3.0)
assert np.allclose(out / np.linalg.norm(out), h / np.linalg.norm(h)), "the direction of the gradient changed"
assert np.allclose(out, 3.0 * h), repr(out - 3.0 * h)
### END HIDDEN TESTS
''', grade_id="scale_grad_direction", points=1),
]
HIDDEN_REFERENCE = np.random.default_rng(SEED).normal(size=6) * 0.37


def _numbers(text):
    return [float(m) for m in re.findall(rf"(?<![\w.]){NUMBER}(?![\w.])", text)]


def _test_rows(page):
    """The tests table of a feedback page (the learner's own output below it is theirs to print)."""
    start = page.find("<h2>Tests</h2>")
    return page[start:page.find("</table>", start)] if start >= 0 else ""


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    return write_source(tmp_path_factory.mktemp("feedback-source"), "09_hidden", SOURCE_CELLS)



HEAD = "import numpy as np\ndef scale_grad(g, factor):\n    out = np.asarray(g, dtype=float) * factor\n"
WRONG = {  # each passes the visible case ([1, 2]) and fails the hidden ones
    "three_percent_off": HEAD + "    return out if out.size <= 2 else out * 1.03\n",
    "direction_changed": HEAD + "    return np.sort(out)\n",
    "prints_in_exception": HEAD + ("    if out.size > 2:\n"
                                   "        raise ValueError('bad ' + ' '.join(f'{v:.6f}' for v in out))\n"
                                   "    return out\n"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_submissions_see_no_hidden_values(assignment, tmp_path, name):
    """A wrong answer's feedback shows no reference value of a hidden case and no run of numbers."""
    reference = HIDDEN_REFERENCE  # computed before any learner code runs
    result = trusted.grade(assignment, submission_with(assignment, WRONG[name], tmp_path), limits=LIMITS)
    result.update(learner="mallory", assignment="09_hidden")
    assert result["status"] == "graded", result["status"]
    assert all(not t["passed"] for t in result["tests"]), result["tests"]
    page = feedback.render(result)
    rows = _test_rows(page)
    assert rows, page
    assert not float_run(rows) and not ARRAY_REPR.search(rows), rows
    shown = _numbers(rows)
    for value in reference:
        for scale in (1.0, 1.03, 1 / 0.37):  # the reference, the learner's 3 % off, the case's input
            assert not any(abs(x - value * scale) < 5e-4 * max(1.0, abs(value)) for x in shown if x not in (0.0,)), (
                value, rows)
    assert json.dumps(result).count("withheld") >= 1, result["tests"]


@pytest.mark.timeout(300)
def test_a_withheld_message_names_the_check_that_failed(assignment, tmp_path):
    """An assertion message that quotes hidden-test text is withheld, and the hint is its own words."""
    submission = submission_with(assignment, WRONG["direction_changed"], tmp_path)
    result = trusted.grade(assignment, submission, limits=LIMITS)
    test = next(t for t in result["tests"] if t["grade_id"] == "scale_grad_direction")
    assert not test["passed"]
    assert test["message"] == "the direction of the gradient changed", test


def test_the_hint_without_own_words_is_the_docstring_line():
    """A withheld message with no words of the test's own (a bare repr) falls back to the docstring line."""
    source = notebooks.new_notebook(SOURCE_CELLS)
    plan = trusted.build_plan(source, None)
    test = next(t for t in plan.tests if t.grade_id == "scale_grad_direction")
    quoting = "h = np.array([0.25, -1.5, 2.0, 3.0]) is what failed"
    assert plan.secrets.found_in(quoting)
    message = trusted.test_message(test, quoting, plan.secrets)
    assert message.startswith(trusted.WITHHELD) and "scale_grad keeps the direction of a gradient" in message
    assert "0.25" not in message


@pytest.mark.parametrize("text", [
    "expected [ 0.1  0.2  0.3  0.4], got [0.2 0.2 0.2 0.2]",
    "array([1., 2.])",
    "tensor([0.5000, 1.0000], requires_grad=True)",
    "values 1, 2, 3, 4, 5, 6, 7",
    "mismatch at 1e-3 2.5e-2 -7 8.0",
])
def test_hidden_test_messages_are_reduced_to_words(text):
    """Defence in depth: a hidden test's message loses its arrays and runs of numbers, keeps its words."""
    source = notebooks.new_notebook(SOURCE_CELLS)
    plan = trusted.build_plan(source, None)
    hidden = next(t for t in plan.tests if t.grade_id == "scale_grad_hidden_values")
    message = trusted.test_message(hidden, text, plan.secrets)
    assert not float_run(message) and not ARRAY_REPR.search(message), message
    assert trusted.VALUES_WITHHELD in message

    def words(t):
        return [w for w in re.sub(r"[\d.,\[\]()+-]", " ", t).split()
                if w.isalpha() and len(w) > 1 and w not in ("array", "tensor")]

    assert words(message.replace(trusted.VALUES_WITHHELD, " ")) == words(text), message


def test_a_shape_in_a_hidden_test_message_stays():
    """A short run of integers (a case's shape) is words enough: it stays."""
    plan = trusted.build_plan(notebooks.new_notebook(SOURCE_CELLS), None)
    hidden = next(t for t in plan.tests if t.grade_id == "scale_grad_hidden_values")
    text = "N, T, D, H = (1, 5, 3, 4), float64: off by 0.0134"
    assert trusted.test_message(hidden, text, plan.secrets) == text


def test_visible_test_messages_keep_their_numbers():
    """Only tests with hidden parts lose their numbers: a visible-only test shows what it computed."""
    cells = SOURCE_CELLS[:2] + [notebooks.tests('''
"""scale_grad on a visible case."""
assert False, "expected [1, 2, 3, 4]"
''', grade_id="visible_only", points=1)]
    plan = trusted.build_plan(notebooks.new_notebook(cells), None)
    test = next(t for t in plan.tests if t.grade_id == "visible_only")
    assert trusted.test_message(test, "expected [1, 2, 3, 4]", plan.secrets) == "expected [1, 2, 3, 4]"


def test_missing_assignment_page_says_not_submitted_and_nothing_else():
    """A learner with no folder for an assignment gets a page that says so and nothing else."""
    from grader_fixture import SOURCE_NB

    from autograder.job import failed_result

    result = failed_result(SOURCE_NB, "missing")
    result.update(learner="alice", assignment="00_fixture")
    assert result["tests"], "the result still lists every test (the CSV row and gradebook need them)"
    page = feedback.render(result)
    body = re.sub(r"<[^>]+>", " ", page.split("<body>", 1)[1])
    assert " ".join(body.split()) == "00_fixture Not submitted."
    assert "double_values" not in page and "not graded" not in page


def _css_rules(css):
    """{selector: {property: value}} of a flat stylesheet (a rule's selector list split at commas)."""
    rules = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        decls = dict(d.split(":", 1) for d in body.replace("\n", "").split(";") if ":" in d)
        for sel in selectors.split(","):
            rules.setdefault(sel.strip(), {}).update({k.strip(): v.strip() for k, v in decls.items()})
    return rules


def test_the_table_fits_a_narrow_viewer_and_long_messages_wrap():
    """JupyterLab's HTML viewer in a narrow panel cut the details column off: the table takes its
    container's width (fixed layout) and its cells, notes and output wrap long words anywhere."""
    rules = _css_rules(feedback._CSS)
    assert rules["table"].get("width") == "100%" and rules["table"].get("table-layout") == "fixed", rules["table"]
    for sel in ("td", "th"):
        assert rules[sel].get("overflow-wrap") == "anywhere", (sel, rules[sel])
    assert rules["pre"].get("white-space") == "pre-wrap" and rules["pre"].get("overflow-wrap") == "anywhere"
    assert rules["body"].get("overflow-wrap") == "anywhere", "notes and cell errors wrap too"
    page = feedback.render({"learner": "alice", "assignment": "00_fixture", "status": "graded", "score": 0,
                            "max_score": 1, "tests": [{"summary": "s", "grade_id": "g", "points": 1, "score": 0,
                                                       "passed": False, "message": "x" * 400}]})
    assert f"<style>{feedback._CSS}</style>" in page and "x" * 400 in page


def _perturbing(source):
    """``source`` (an exercise cell) with every function it defines returning results 3 % off."""
    try:
        names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return source
    return source + f'''

def _tg_off(value):
    import numpy as _np
    if isinstance(value, float) or (isinstance(value, _np.ndarray) and value.dtype.kind == "f"):
        return value * 1.03
    if isinstance(value, (list, tuple)):
        return type(value)(_tg_off(v) for v in value)
    return value

def _tg_wrap(f):
    import functools
    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        return _tg_off(f(*args, **kwargs))
    return wrapped

for _tg_name in {names!r}:
    globals()[_tg_name] = _tg_wrap(globals()[_tg_name])
'''


COURSE = assignments(SOLUTIONS) if SOLUTIONS.is_dir() else []


@pytest.mark.timeout(900)
@pytest.mark.parametrize("assignment_id", COURSE)
def test_course_feedback_of_wrong_answers_shows_no_hidden_values(assignment_id, tmp_path):
    """Each course assignment, answered 3 % off everywhere: no hidden test's row shows values."""
    source = notebook_path(assignment_id)
    nb = notebooks.read(source)
    hidden_ids = {notebooks.grade_id(c) for c in nb["cells"]
                  if notebooks.is_test(c) and trusted.HIDDEN_MARK in trusted.cell_source(c)}
    if not hidden_ids:
        pytest.skip(f"{assignment_id} has no hidden tests")
    for c in nb["cells"]:
        if notebooks.is_solution(c):
            c["source"] = _perturbing(trusted.cell_source(c).replace("### BEGIN SOLUTION", "")
                                      .replace("### END SOLUTION", ""))
    path = tmp_path / assignment_id / f"{assignment_id}.ipynb"
    path.parent.mkdir()
    for extra in source.parent.iterdir():  # the files the notebook reads
        if extra.is_file() and extra.suffix != ".ipynb":
            (path.parent / extra.name).write_bytes(extra.read_bytes())
    path.write_text(json.dumps(nb), encoding="utf-8")
    result = trusted.grade(source, path, limits=Limits(wall_seconds=600))
    result.update(learner="mallory", assignment=assignment_id)
    failed = [t for t in result["tests"] if t["grade_id"] in hidden_ids and not t["passed"]]
    for t in failed:
        row = feedback._e(t["message"] or "")
        assert not float_run(row) and not ARRAY_REPR.search(row), (t["grade_id"], t["message"])
    rows = _test_rows(feedback.render(result))
    for t in failed:
        assert feedback._e(t["summary"]) in rows
