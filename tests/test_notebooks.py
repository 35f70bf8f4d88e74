"""Both directions, graded by nbgrader itself: each solution scores full marks, each release scores 0.

For every assignment in solutions/, a temporary nbgrader course is made with two learners: one submits
the solution notebook, the other submits the released notebook untouched. ``nbgrader autograde`` runs
both; the gradebook must show full marks for the first and 0 on every graded cell for the second.
Assignments are graded in parallel, each in its own temporary course (own gradebook).

nbgrader runs every cell with ``allow_errors=True`` and scores only the graded cells, so a failing
experiment assert would cost no points. The solution's autograded notebook is therefore also read
back: no cell may end in an error (every claim an experiment asserts holds), and no cell writes to
stderr (nbgrader scores a graded cell that does as 0; elsewhere it is noise a learner must not see).
The kernels run as ``make lab``'s do (inline plots, Python's default warning filters), and an IPython
startup file (tests/fixtures/plot_audit.py) checks that every figure drawn has a title and axis labels.
"""

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.paths import COURSE, SOLUTIONS, assignments, nbgrader_env

ASSIGNMENTS = assignments()
SOLVER, BLANK = "solution_learner", "untouched_release"
PLOT_AUDIT = Path(__file__).parent / "fixtures" / "plot_audit.py"

pytestmark = pytest.mark.slow


def _autograde(assignment, tmp):
    root = Path(tmp) / assignment
    shutil.copytree(SOLUTIONS / assignment, root / "solutions" / assignment)
    nb_name = f"{assignment}.ipynb"
    for learner, source in ((SOLVER, SOLUTIONS), (BLANK, COURSE)):
        dest = root / "submitted" / learner / assignment
        dest.mkdir(parents=True)
        shutil.copy(source / assignment / nb_name, dest / nb_name)
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(PLOT_AUDIT, startup / "00-plot-audit.py")
    env = nbgrader_env(TG_COURSE_ROOT=root, TG_RELEASE_DIR=root / "release", TG_GRADEBOOK=root / "gradebook.db",
                       IPYTHONDIR=root / "ipython", TG_PLOT_AUDIT=root / "plot-audit.jsonl")
    for var in ("MPLBACKEND", "PYTHONWARNINGS"):  # as in make lab: inline figures, warnings shown
        env.pop(var, None)
    log = []
    for cmd in (["nbgrader", "generate_assignment", assignment, "--force"],
                ["nbgrader", "autograde", assignment, "--force"]):
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
        log.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{log[-1][-4000:]}"
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for learner in (SOLVER, BLANK):
            nb = gb.find_submission_notebook(assignment, assignment, learner)
            scores[learner] = {
                "total": (nb.score, nb.max_score),
                "cells": {g.name: (g.score, g.max_score) for g in nb.grades if g.max_score},
            }
    autograded = json.loads((root / "autograded" / SOLVER / assignment / nb_name).read_text())
    audit = root / "plot-audit.jsonl"
    plots = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
    return scores, "\n".join(log), autograded, plots


def _cell_label(cell):
    meta = cell.get("metadata", {})
    return meta.get("nbgrader", {}).get("grade_id") or cell.get("id", "?")


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nbgrader-course")
    workers = max(1, min(len(ASSIGNMENTS), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = dict(zip(ASSIGNMENTS, pool.map(lambda a: _autograde(a, tmp), ASSIGNMENTS), strict=True))
    return results


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
