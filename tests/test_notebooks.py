"""Both directions, graded by nbgrader itself: each solution scores full marks, each release scores 0.

For every assignment in solutions/, a temporary nbgrader course is made with two learners: one submits
the solution notebook, the other submits the released notebook untouched. ``nbgrader autograde`` runs
both; the gradebook must show full marks for the first and 0 on every graded cell for the second.
Assignments are graded in parallel, each in its own temporary course (own gradebook).
"""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.paths import COURSE, SOLUTIONS, assignments, nbgrader_env

ASSIGNMENTS = assignments()
SOLVER, BLANK = "solution_learner", "untouched_release"

pytestmark = pytest.mark.slow


def _autograde(assignment, tmp):
    root = Path(tmp) / assignment
    shutil.copytree(SOLUTIONS / assignment, root / "solutions" / assignment)
    nb_name = f"{assignment}.ipynb"
    for learner, source in ((SOLVER, SOLUTIONS), (BLANK, COURSE)):
        dest = root / "submitted" / learner / assignment
        dest.mkdir(parents=True)
        shutil.copy(source / assignment / nb_name, dest / nb_name)
    env = nbgrader_env(TG_COURSE_ROOT=root, TG_RELEASE_DIR=root / "release", TG_GRADEBOOK=root / "gradebook.db")
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
    return scores, "\n".join(log)


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
    scores, log = autograded[assignment]
    got = scores[SOLVER]
    failed = {name: s for name, s in got["cells"].items() if s[0] != s[1]}
    assert not failed, f"solution lost points on {failed}\n{log[-3000:]}"
    assert got["total"][0] == got["total"][1] > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero_on_every_graded_cell(autograded, assignment):
    """nbgrader autograde gives the released notebook, untouched, 0 on every graded cell."""
    scores, _ = autograded[assignment]
    got = scores[BLANK]
    nonzero = {name: s for name, s in got["cells"].items() if s[0] != 0}
    assert not nonzero, f"an untouched release earns points on {nonzero}"
    assert got["cells"], "no graded cells found"
