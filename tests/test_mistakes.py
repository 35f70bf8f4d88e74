"""The tests catch the mistakes learners make (tests/mistakes/: the course's catalogue, one file per notebook).

Every mistake is the solution notebook with one exercise cell changed. All of them are graded by the class
grader in one batch (``grade_all``, one worker per core), mistakes of unrelated exercises of a notebook
sharing a submission (``mistakes.pack``: no test cell depends on both). The source they are graded against
is solutions/ with, after its graded cells, a copy of each test cell's visible part: the one job gives both
the grader's verdict (the graded cells, exactly as solutions/ has them) and the one Validate gives (the
visible parts alone). Asserted:

* every mistake loses points on its exercise (a test cell naming one of the cell's functions fails);
* every "common" mistake also fails the visible part of such a cell, so the learner sees it before grading;
* every "harmless" variant keeps every point, and its visible parts pass;

And for point 13 of issue 16: a correct formula that NumPy warns about on a zero gradient fails Validate
(nbgrader itself, on the released notebook) and loses the same cell in the grader: they agree.
"""

import json
import os
import subprocess

import pytest

from autograder import notebooks
from autograder.paths import COURSE, assignments, nbgrader_env, notebook_path
from tests import mistakes as catalogue_

CATALOGUE = catalogue_.catalogue()
ALL = [m for a in CATALOGUE for m in CATALOGUE[a]]
IDS = [f"{m['assignment'][:2]}-{m['grade_id']}-{m['name']}" for m in ALL]


def test_every_assignment_has_a_catalogue_that_fits_its_solutions():
    """Each assignment has tests/mistakes/NN_topic.py; each mistake applies to its cell and parses."""
    assert set(catalogue_.catalogue_files()) <= set(assignments()), "a catalogue file names no assignment"
    missing = [a for a in assignments() if not CATALOGUE[a]]
    assert not missing, f"no catalogue of mistakes for {missing}: add tests/mistakes/<assignment>.py"
    found = [p for a, ms in CATALOGUE.items() for p in catalogue_.problems(a, ms)]
    assert not found, found


def test_every_exercise_has_at_least_three_mistakes():
    """At least three mistakes per exercise (a solution cell with a grade id), at least one of them common."""
    short = {}
    for a, ms in CATALOGUE.items():
        for gid in catalogue_.exercise_cells(notebooks.read(notebook_path(a))):
            mine = [m for m in ms if m["grade_id"] == gid and m["kind"] != "harmless"]
            if len(mine) < 3 or not any(m["kind"] == "common" for m in mine):
                short[f"{a} {gid}"] = len(mine)
    assert not short, f"exercises with fewer than 3 mistakes (or none common): {short}"


def test_packing_keeps_mistakes_apart():
    """Two mistakes share a submission only when no test cell depends on both of their exercises."""
    for a, ms in CATALOGUE.items():
        deps = catalogue_.dependencies(notebooks.read(notebook_path(a)))
        for group in catalogue_.pack(a, ms):
            cells = [m["grade_id"] for m in group]
            assert len(set(cells)) == len(cells), (a, cells)
            for d in deps.values():
                assert len(d & set(cells)) <= 1, (a, cells, d)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every mistake in one batch; {(assignment, grade_id, name): (mistake, result, group)}.

    One learner; each submission is an assignment of its own (NN_topic_jK), graded against a copy of
    solutions/NN_topic that keeps only the test cells its mistakes can reach (and their visible copies)."""
    from autograder.grade import grade_all, result_path

    tmp = tmp_path_factory.mktemp("mistakes")
    source, submitted, out = tmp / "source", tmp / "submitted", tmp / "out"
    jobs = {}
    for a, ms in CATALOGUE.items():
        for k, group in enumerate(catalogue_.pack(a, ms) if ms else []):
            name = f"{a}_j{k:02d}"
            catalogue_.source_with_visible_copies(a, source, name, keep=catalogue_.reached(a, group))
            dest = submitted / "learner" / name
            dest.mkdir(parents=True)
            nb = catalogue_.mistaken_notebook(a, group)
            (dest / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
            jobs[name] = (a, group)
    rows = grade_all(submitted, out, source=source, workers=os.cpu_count() or 1, progress=False)
    assert all(r["status"] == "graded" for r in rows), [r for r in rows if r["status"] != "graded"]
    assert len(rows) == len(jobs)
    by_mistake = {}
    for name, (a, group) in jobs.items():
        result = json.loads(result_path(out, "learner", name).read_text())
        for m in group:
            by_mistake[(a, *catalogue_.key(m))] = (m, result, group)
    return by_mistake


def _verdicts(result):
    full = {t["grade_id"]: t for t in result["tests"]
            if not t["grade_id"].endswith(catalogue_.VISIBLE_SUFFIX) and t["grade_id"] != catalogue_.RESET_ID}
    visible = {t["grade_id"].removesuffix(catalogue_.VISIBLE_SUFFIX): t for t in result["tests"]
               if t["grade_id"].endswith(catalogue_.VISIBLE_SUFFIX)}
    return full, visible


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("mistake", ALL, ids=IDS)
def test_the_tests_catch_the_mistake(graded, mistake):
    """A mistake loses points on its exercise; a common one fails a visible test; a harmless one keeps all."""
    a = mistake["assignment"]
    m, result, group = graded[(a, *catalogue_.key(mistake))]
    nb = notebooks.read(notebook_path(a))
    mine = catalogue_.own_tests(nb, m["grade_id"])
    full, visible = _verdicts(result)
    assert result["status"] == "graded", result["status"]
    reachable = catalogue_.reached(a, group)
    lost = {gid: full[gid]["message"] for gid in mine if not full[gid]["passed"]}
    seen = {gid: visible[gid]["message"] for gid in mine if not visible[gid]["passed"]}
    if m["kind"] == "harmless":
        failed = {gid: full[gid]["message"] for gid in reachable if not full[gid]["passed"]}
        assert not failed and not seen, f"{m['why']}: not a mistake, yet it lost {failed} (visible: {seen})"
        return
    assert lost, f"{m['why']}: no test of {m['grade_id']} fails ({sorted(mine)} all pass): it costs nothing"
    if m["kind"] == "common":
        assert seen, (f"{m['why']}: a common mistake, but every visible test of {m['grade_id']} passes, so "
                      f"Validate does not show it (the grader fails {sorted(lost)})")


# ------------------------------------------------------------------------------------- point 13: agree

WARNING = ("03_clipping_by_hand", "clip_by_norm", "warns_on_zero")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_validate_and_the_grader_agree_on_a_formula_that_warns(graded, tmp_path):
    """clip_by_norm written as grad * min(1, max_norm / norm) is right but warns on a zero gradient (0 division):
    nbgrader validate fails clip_by_norm_basics on it (stderr in a test cell), and so does the grader."""
    a = WARNING[0]
    m, result, _ = graded[WARNING]
    full, visible = _verdicts(result)
    assert not full["clip_by_norm_basics"]["passed"] and "stderr" in full["clip_by_norm_basics"]["message"], full
    assert not visible["clip_by_norm_basics"]["passed"]
    # nbgrader validate on the released notebook with every exercise answered as solutions/ does, that one
    # with the mistake; the slow experiment cells are left out (no graded cell depends on them)
    released = notebooks.read(COURSE / a / f"{a}.ipynb")
    answers = catalogue_.exercise_cells(catalogue_.mistaken_notebook(a, [m]))
    cells = []
    for cell in released["cells"]:
        if notebooks.is_slow(cell):
            continue
        if notebooks.is_solution(cell) and notebooks.grade_id(cell) in answers:
            cell["source"] = answers[notebooks.grade_id(cell)]
        cells.append(cell)
    released["cells"] = cells
    path = tmp_path / a / f"{a}.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps(released), encoding="utf-8")
    # as a learner runs it: nbgrader_env() sets PYTHONWARNINGS=ignore for the course's own tools, which the kernel
    # would inherit (and the RuntimeWarning would never reach stderr); a learner's Validate has no such setting
    env = nbgrader_env()
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(["nbgrader", "validate", str(path)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    failing = _failed_in_validate(log, released)
    assert "VALIDATION FAILED" in log and "clip_by_norm_basics" in failing and "RuntimeWarning" in log, log[-3000:]
    # the grader's submission packs other exercises' mistakes with this one: only the tests this one reaches
    mine = catalogue_.reached(a, [m])
    assert failing == {gid for gid, t in visible.items() if gid in mine and not t["passed"]}, (failing, log[-3000:])


def _failed_in_validate(log, nb):
    """The grade ids of the test cells that nbgrader validate's LOG lists as failed. It names no grade id: after
    "The following cell failed:" it prints the cell's source, each line indented and cut with "..." at its
    width; a cell is known by its first line (its docstring, unique among the notebook's test cells)."""
    firsts = {notebooks.grade_id(c): "".join(c["source"]).split("\n", 1)[0]
              for c in nb["cells"] if notebooks.is_test(c)}
    assert len(set(firsts.values())) == len(firsts), "two test cells start with the same line"
    failing = set()
    for block in log.split("The following cell failed:")[1:]:
        shown = next(line for line in block.splitlines() if line.strip()).strip().removesuffix("...")
        found = [gid for gid, first in firsts.items() if first.startswith(shown)]
        assert len(found) == 1, (shown, found)
        failing |= set(found)
    return failing
