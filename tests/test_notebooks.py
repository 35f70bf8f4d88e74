"""Both directions, graded by nbgrader itself: each solution scores full marks, each release scores 0.

For every assignment in solutions/, a temporary nbgrader course is made with two learners: one submits
the solution notebook, the other submits the released notebook untouched (without its ``slow`` cells, as
the class grader runs it; ``nbgrader validate --invert`` in tests/test_test_cells.py executes all of them).
``nbgrader autograde`` runs both; the gradebook must show full marks for the first and 0 on every graded
cell for the second. Assignments are graded in parallel, each in its own temporary course (own gradebook),
once per session (the ``autograded_course`` fixture of tests/conftest.py, tests/fixtures/nbgrader_course.py).

nbgrader runs every cell with ``allow_errors=True`` and scores only the graded cells, so a failing
experiment assert would cost no points. The solution's autograded notebook is therefore also read
back: no cell may end in an error (every claim an experiment asserts holds), and no cell writes to
stderr (nbgrader scores a graded cell that does as 0; elsewhere it is noise a learner must not see).
The kernels run as a learner's JupyterLab outside ``make lab`` runs them (inline plots, Python's default
warning filters, no TensorFlow quieting variables), and an IPython startup file (tests/fixtures/plot_audit.py)
checks that every figure drawn has a title and axis labels.
"""

import json

import pytest
from nbgrader_course import BLANK, PLOT_AUDIT, SOLVER, longest_first  # tests/fixtures, on sys.path from conftest.py

from autograder.paths import assignments

ASSIGNMENTS = assignments()

pytestmark = pytest.mark.slow


def _cell_label(cell):
    meta = cell.get("metadata", {})
    return meta.get("nbgrader", {}).get("grade_id") or cell.get("id", "?")


@pytest.fixture
def autograded(autograded_course):
    autograded_course.prefetch(longest_first(ASSIGNMENTS))   # queued at once, slowest first: graded in parallel
    return autograded_course


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(autograded, assignment):
    """nbgrader autograde gives the solution notebook, submitted as a learner would, full marks."""
    scores, log, _, _ = autograded[assignment]
    got = scores[SOLVER]
    failed = {name: s for name, s in got["cells"].items() if s[0] != s[1]}
    assert not failed, f"solution lost points on {failed}\n{log[-3000:]}"
    assert got["total"][0] == got["total"][1] > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero_on_every_graded_cell(autograded, assignment):
    """nbgrader autograde gives the released notebook, untouched, 0 on every graded cell."""
    scores, _, _, _ = autograded[assignment]
    got = scores[BLANK]
    nonzero = {name: s for name, s in got["cells"].items() if s[0] != 0}
    assert not nonzero, f"an untouched release earns points on {nonzero}"
    assert got["cells"], "no graded cells found"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_runs_every_cell_without_error(autograded, assignment):
    """Every cell of the autograded solution ran without an error: each experiment's asserts hold."""
    _, _, nb, _ = autograded[assignment]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("execution_count") for c in code), "some code cells did not run"
    errors = {_cell_label(c): f"{o.get('ename')}: {o.get('evalue', '')[:300]}"
              for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"}
    assert not errors, f"cells of the solution raised: {errors}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_writes_nothing_to_stderr(autograded, assignment):
    """No cell of the solution writes to stderr (warnings, logs, plain tqdm)."""
    _, _, nb, _ = autograded[assignment]
    stderr = {_cell_label(c): "".join(o.get("text", ""))[:300] for c in nb["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"}
    assert not stderr, f"cells of the solution wrote to stderr: {stderr}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_plot_has_a_title_and_axis_labels(autograded, assignment):
    """Every figure the notebook draws (inline, saved or in a widget) has a title and labelled axes."""
    _, _, _, plots = autograded[assignment]
    problems = {entry["cell"].splitlines()[0] if entry["cell"] else "?": entry["problems"] for entry in plots}
    assert not problems, f"figures without a title or axis labels, by the first line of their cell: {problems}"


def test_plot_audit_reports_a_figure_without_labels(tmp_path, monkeypatch):
    """The plot audit logs an unlabelled figure and passes a labelled one (sharing the y label)."""
    import importlib.util
    import io

    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("TG_PLOT_AUDIT", str(log))
    monkeypatch.setattr(FigureCanvasBase, "print_figure", FigureCanvasBase.print_figure)  # restored after
    spec = importlib.util.spec_from_file_location("plot_audit", PLOT_AUDIT)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    fig, (left, right) = plt.subplots(1, 2, sharey=True)
    for ax in (left, right):
        ax.plot([1, 2])
        ax.set(title="t", xlabel="x")
    left.set_ylabel("y")
    fig.savefig(io.BytesIO(), format="png")
    assert not log.exists()
    right.set_title("")
    left.set_xlabel("")
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["problems"] for e in entries] == [["t: no x label", "axes 1: no title"]]
