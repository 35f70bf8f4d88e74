"""Every graded test cell can fail visibly, and says what its hidden part holds.

Static checks over every test cell of solutions/ (the source of truth):

* its visible part (the source with the ``### BEGIN/END HIDDEN TESTS`` block taken out, as a learner
  sees it) uses at least one exercise function of the notebook at the top level of the cell (a call,
  or passed to an ``@in_learner_process`` helper) and asserts something at the top level;
* its one-line docstring ends with ``[hidden tests: N points]`` (N the cell's points) when it has a
  hidden part, ``[no hidden tests]`` otherwise.

And, run by nbgrader itself: ``nbgrader validate --invert`` succeeds on every released notebook, i.e.
every graded cell of an untouched release fails.
"""

import ast
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from autograder import notebooks
from autograder.paths import COURSE, assignments, nbgrader_env, notebook_path

ASSIGNMENTS = assignments()
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
TAG = re.compile(r"\[(?:hidden tests: (\d+) points?|no hidden tests)\]$")


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _exercise_functions(nb):
    """Names of the functions defined at the top level of the notebook's solution cells."""
    names = set()
    for cell in nb["cells"]:
        if notebooks.is_solution(cell) and cell["cell_type"] == "code":
            tree = ast.parse(_src(cell))
            names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names


def _top_level_nodes(tree):
    """Every node of the module except what sits inside a def or class (helpers only count if called)."""
    stack, out = list(tree.body), []
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _test_cells(assignment):
    nb = notebooks.read(notebook_path(assignment))
    return nb, [c for c in nb["cells"] if notebooks.is_test(c)]


def visible_part_problems(src, exercises):
    """What is wrong with a test cell's visible part, in words (an empty list when nothing is)."""
    visible = HIDDEN.sub("", src)
    try:
        tree = ast.parse(visible)
    except SyntaxError as err:
        return [f"the visible part does not parse ({err.msg})"]
    nodes = _top_level_nodes(tree)
    used = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} & exercises
    asserts = any(isinstance(n, ast.Assert) for n in nodes) or any(
        isinstance(n, ast.Raise) and n.exc is not None and "AssertionError" in ast.unparse(n.exc) for n in nodes)
    problems = []
    if not used:
        problems.append("its visible part never calls an exercise function, so an untouched notebook passes it")
    if not asserts:
        problems.append("its visible part asserts nothing")
    return problems


def docstring_problems(src, points):
    first = src.split("\n", 1)[0].strip()
    if not (first.startswith('"""') and first.endswith('"""')):
        return ["it does not open with a one-line docstring"]
    match = TAG.search(first[3:-3])
    hidden = "### BEGIN HIDDEN TESTS" in src
    if match is None:
        return ["its docstring does not end with [hidden tests: N points] or [no hidden tests]"]
    if hidden and match.group(1) is None:
        return ["it has hidden tests but its docstring says [no hidden tests]"]
    if hidden and int(match.group(1)) != points:
        return [f"its docstring says {match.group(1)} hidden points, the cell has {points}"]
    if not hidden and match.group(1) is not None:
        return ["its docstring announces hidden tests it does not have"]
    return []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_cell_has_a_visible_part_that_can_fail(assignment):
    """Each test cell's visible part calls an exercise function and asserts (so Validate can fail it)."""
    nb, cells = _test_cells(assignment)
    exercises = _exercise_functions(nb)
    assert exercises and cells
    problems = {notebooks.grade_id(c): p for c in cells if (p := visible_part_problems(_src(c), exercises))}
    assert not problems, problems


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_docstring_says_what_the_hidden_part_holds(assignment):
    """Each test cell's docstring ends with [hidden tests: N points] (N = its points) or [no hidden tests]."""
    _, cells = _test_cells(assignment)
    problems = {notebooks.grade_id(c): p for c in cells
                if (p := docstring_problems(_src(c), notebooks.nbgrader_meta(c)["points"]))}
    assert not problems, problems


def test_the_checks_catch_a_docstring_only_cell():
    """A cell whose visible part is a docstring and imports is refused; so is a wrong points count."""
    src = '"""clip_by_norm keeps the direction [hidden tests: 2 points]"""\nimport numpy as np\n\n' \
          "### BEGIN HIDDEN TESTS\nassert clip_by_norm(np.ones(2), 1.0) is not None\n### END HIDDEN TESTS\n"
    assert len(visible_part_problems(src, {"clip_by_norm"})) == 2
    assert docstring_problems(src, 2) == []
    assert docstring_problems(src, 3) and docstring_problems(src.replace("[hidden tests: 2 points]", ""), 2)
    helper_only = '"""x [no hidden tests]"""\ndef check():\n    assert clip_by_norm(1, 1)\n'
    assert visible_part_problems(helper_only, {"clip_by_norm"}), "a call inside a helper never run is no test"
    ok = '"""x [no hidden tests]"""\nout = clip_by_norm(1, 1)\nassert out == 1, "scale the whole vector"\n'
    assert visible_part_problems(ok, {"clip_by_norm"}) == [] and docstring_problems(ok, 1) == []


def _validate_invert(assignment):
    path = COURSE / assignment / f"{assignment}.ipynb"
    proc = subprocess.run(["nbgrader", "validate", "--invert", str(path)], env=nbgrader_env(),
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def validated():
    workers = max(1, min(len(ASSIGNMENTS), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(_validate_invert, ASSIGNMENTS), strict=True))


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_invert_fails_every_graded_cell_of_the_release(validated, assignment):
    """`nbgrader validate --invert` succeeds on the untouched release: every graded cell fails."""
    rc, log = validated[assignment]
    assert rc == 0 and "Success! The notebook does not pass any tests." in log, log[-3000:]


# A submission that hands a "by hand" exercise to the framework's own clipping function: graded by the
# real class grader, it loses exactly those cells, and the feedback says why.
DELEGATING = {
    "03_clipping_by_hand": {
        "clip_by_value": '''def clip_by_value(grads, clip_value):
    """Delegates to torch."""
    import torch
    if not (np.isfinite(clip_value) and clip_value > 0):
        raise ValueError("clip_value must be positive and finite")
    params = [torch.nn.Parameter(torch.zeros(np.shape(g), dtype=torch.from_numpy(np.asarray(g)).dtype))
              for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(np.array(g))
    torch.nn.utils.clip_grad_value_(params, clip_value)
    return [p.grad.numpy() for p in params]
''',
        "global_norm": '''def global_norm(grads):
    """Delegates to torch."""
    import torch
    if not grads:
        return 0.0
    params = [torch.nn.Parameter(torch.zeros(np.shape(g), dtype=torch.float64)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(np.array(g, dtype=np.float64))
    return float(torch.nn.utils.clip_grad_norm_(params, float("inf")))
''',
    },
    "06_tensorflow_keras": {
        "clip_by_global_norm_tf": '''def clip_by_global_norm_tf(grads, clip_norm):
    """Delegates to TensorFlow."""
    return tf.clip_by_global_norm(grads, clip_norm)
''',
    },
}
# the solution's clip_by_global_norm calls the learner's global_norm, so it reaches torch through it
LOSES = {"03_clipping_by_hand": {"clip_by_value_matches_torch", "global_norm_random_and_float32",
                                 "clip_by_global_norm_matches_torch"},
         "06_tensorflow_keras": {"clip_by_global_norm_tf_matches_tf"}}


def _grade_answered(tmp_path, assignment, answers):
    """Grade the solution of ``assignment`` with the exercise cells ``answers`` ({grade_id: source})
    replaced, with the real class grader: (its grades.csv row, {grade_id: message} of failed tests, result)."""
    import json
    import shutil

    from autograder.grade import grade_all, result_path
    from autograder.paths import SOLUTIONS

    source = tmp_path / "source"
    shutil.copytree(SOLUTIONS / assignment, source / assignment)
    nb = notebooks.read(notebook_path(assignment))
    for cell in nb["cells"]:
        if notebooks.is_solution(cell) and notebooks.grade_id(cell) in answers:
            cell["source"] = answers[notebooks.grade_id(cell)]
    dest = tmp_path / "submitted" / "learner" / assignment
    dest.mkdir(parents=True)
    (dest / f"{assignment}.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "out"
    (row,) = grade_all(tmp_path / "submitted", out, source=source, workers=1, progress=False)
    result = json.loads(result_path(out, "learner", assignment).read_text())
    failed = {t["grade_id"]: t["message"] or "" for t in result["tests"] if not t["passed"]}
    return row, failed, result


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("assignment", sorted(DELEGATING))
def test_a_submission_delegating_to_the_framework_loses_those_cells_and_is_told_why(tmp_path, assignment):
    """Handing a by-hand exercise to torch or TensorFlow fails its hidden test with a message saying so."""
    row, failed, result = _grade_answered(tmp_path, assignment, DELEGATING[assignment])
    assert row["status"] == "graded" and set(failed) == LOSES[assignment], (failed, result["cells"])
    for grade_id, message in failed.items():
        assert "by hand" in message or "must not call" in message, (grade_id, message)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_global_norm_handed_to_a_gradlab_helper_loses_its_hidden_cell(tmp_path):
    """03's global_norm that is gradlab.training.grad_norm under another name (reachable: 03's setup imports
    gradlab.training) loses the hidden cell, told why; every other cell keeps its points."""
    answers = {"global_norm": "from gradlab.training import grad_norm as global_norm\n"}
    row, failed, result = _grade_answered(tmp_path, "03_clipping_by_hand", answers)
    assert row["status"] == "graded" and set(failed) == {"global_norm_random_and_float32"}, (failed, result["cells"])
    assert "by hand" in failed["global_norm_random_and_float32"], failed
