"""What the learner's process reports is screened before it reaches feedback or results (no root needed),
and the sandbox knows which gradlab modules answer an assignment's exercises."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import SOURCE_NB, solution_nb  # noqa: E402

from autograder import feedback, notebooks, sandbox, trusted  # noqa: E402
from autograder.paths import SOLUTIONS, assignments, notebook_path  # noqa: E402
from autograder.sandbox import Sandbox, answer_modules, filtered_gradlab  # noqa: E402

SHIPPED_LINE = "shipped_token = 'TG-HIDDEN-SHIPPED-9c1e'"


@pytest.fixture(scope="module")
def plan():
    return trusted.build_plan(notebooks.read(SOURCE_NB), solution_nb())


@pytest.mark.parametrize("name", [
    "TG-HIDDEN-SHIPPED-9c1e",  # not an identifier
    SHIPPED_LINE,
    "x" * 62,  # too long
    "Error\nwith a newline",
    "Ünïcode",
    "",
    42,
])
def test_exception_type_names_that_are_not_identifiers_are_withheld(plan, name):
    """A learner exception class may be named anything: only identifier-like names are shown."""
    assert trusted.safe_type_name(name, plan.secrets) == trusted.TYPE_WITHHELD


def test_identifier_like_type_names_that_quote_a_secret_are_withheld():
    """An identifier-like name is still screened for quotes of hidden tests and solutions."""
    source = {"cells": [{"cell_type": "code", "metadata": {}, "source":
                         "### BEGIN HIDDEN TESTS\nx = reference_helper_that_is_secret_ok.compute(1)\n"
                         "### END HIDDEN TESTS\n"}]}
    secrets = trusted.Secrets(source)
    assert trusted.safe_type_name("reference_helper_that_is_secret_ok.compute", secrets) == trusted.TYPE_WITHHELD
    assert trusted.safe_type_name("ValueError", secrets) == "ValueError"
    assert trusted.safe_type_name("my_module.MyError", secrets) == "my_module.MyError"
    assert trusted.safe_type_name(None, secrets) is None


def test_cell_results_are_screened_and_labelled_by_the_grader(plan):
    """A setup cell's reported label, type name and message cannot carry hidden text."""
    forged = {"label": SHIPPED_LINE, "ok": "yes", "error": {"type": SHIPPED_LINE, "message": SHIPPED_LINE * 2}}
    clean = trusted._clean_cell(forged, plan, 0)
    assert clean["label"] == plan.setup[0]["label"]
    assert clean["ok"] is False and clean["error_type"] == trusted.TYPE_WITHHELD
    assert "TG-HIDDEN" not in str(clean)


def test_status_notes_and_failed_test_messages_are_screened(plan):
    """Status (grades.csv), notes and failure messages pass the redaction screen."""
    plan = trusted.build_plan(notebooks.read(SOURCE_NB), solution_nb())
    plan.notes.append(f"note {SHIPPED_LINE}")
    result = trusted._result(plan, status=f"protocol error ({SHIPPED_LINE})",
                             tests=trusted._failed_tests(plan, f"not graded: {SHIPPED_LINE}"))
    text = str(result)
    assert "TG-HIDDEN" not in text and len(result["status"]) <= trusted.STATUS_CHARS + 10
    result.update(learner="x", assignment="00_fixture")
    assert "TG-HIDDEN" not in feedback.render(result)


def _exercises(assignment):
    nb = notebooks.read(notebook_path(assignment))
    return {notebooks.grade_id(c) for c in nb["cells"] if notebooks.is_solution(c)}


COURSE = assignments(SOLUTIONS) if SOLUTIONS.is_dir() else []


@pytest.mark.parametrize("assignment", COURSE)
def test_modules_that_answer_an_assignment_are_found(assignment):
    """answer_modules finds every gradlab module that defines a public name of one of the exercises."""
    import importlib
    import inspect

    exercises = _exercises(assignment)
    hidden = {"gradlab." + ".".join(p.with_suffix("").parts) for p in answer_modules(exercises)}
    for path in sorted(sandbox.GRADLAB.glob("*.py")):
        if path.name == "__init__.py":
            continue
        name = f"gradlab.{path.stem}"
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional dependency missing: read the source only
            continue
        answers = [a for a, obj in vars(module).items()
                   if a in exercises and (inspect.isfunction(obj) or inspect.isclass(obj))]
        if answers:
            assert name in hidden, f"{name} defines {answers} of {assignment} but is not left out"


def test_known_answer_modules_are_left_out():
    """The modules the reviewer named: rnn (01), rnn_tools (02), clipping (03)."""
    found = {a: [str(p) for p in answer_modules(_exercises(a))] for a in COURSE}
    for assignment, module in (("01_rnn_from_scratch", "rnn.py"), ("02_vanishing_exploding", "rnn_tools.py"),
                               ("03_clipping_by_hand", "clipping.py")):
        if assignment in found:
            assert module in found[assignment], found


def test_the_filtered_copy_lacks_only_the_answer_modules(tmp_path):
    """filtered_gradlab copies gradlab without the hidden modules nor their compiled files."""
    src = tmp_path / "gradlab"
    (src / "__pycache__").mkdir(parents=True)
    for name in ("__init__", "answers", "helpers"):
        (src / f"{name}.py").write_text("def clip_by_value(g, c):\n    return g\n" if name == "answers" else "X = 1\n")
        (src / "__pycache__" / f"{name}.cpython-311.pyc").write_bytes(b"pyc")
    hidden = answer_modules({"clip_by_value"}, src)
    assert [str(p) for p in hidden] == ["answers.py"]
    copy = filtered_gradlab(tmp_path / "copy", hidden, src)
    names = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    assert names == ["__init__.py", "__pycache__", "__pycache__/__init__.cpython-311.pyc",
                     "__pycache__/helpers.cpython-311.pyc", "helpers.py"]


def test_root_script_binds_the_filtered_gradlab_in_place_of_gradlab(tmp_path):
    """In root mode, the sandbox of an assignment mounts the filtered copy where gradlab is."""
    sb = Sandbox(mode="root", exercises={"clip_by_value"})
    assert sb.hidden_modules and "gradlab.clipping" in " ".join(sb.protections)
    sb._gradlab = tmp_path / "gradlab"
    script = sb._root_script(Path("/tmp/tg-x/root"), Path("/tmp/tg-runner"), 3, 4)
    target = str(sandbox.GRADLAB.resolve())
    assert f"mount --bind -o ro,nosuid,nodev {tmp_path / 'gradlab'} /tmp/tg-x/root{target}" in script
    assert f"mount --bind -o ro,nosuid,nodev {target} " not in script
    assert "gradlab.clipping" in " ".join(Sandbox(mode="userns", exercises={"clip_by_value"}).not_enforced)
