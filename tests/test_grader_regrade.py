"""Regrading follows the submission: a re-run regrades what changed (the submitted files or the source
notebook), fills a `missing` row once the submission appears, and nothing else; --regrade [--only]
forces it; --assignment grades, and writes rows for, a subset."""

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, MAX_SCORE, SOURCE_NB, blank_nb, solution_nb, write_submission  # noqa: E402

from autograder.__main__ import main as cli  # noqa: E402
from autograder.grade import grade_all, result_path  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)
OTHER = "01_fixture_again"
LIMITS_JSON = json.dumps({"wall_seconds": 120, "cell_seconds": 30, "call_seconds": 30, "cpu_seconds": 60})


def _mtimes(out):
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}


def _changed(before, after):
    return sorted(k.removesuffix(".json") for k in after if before.get(k) != after[k])


def _scores(rows):
    return {(r["learner"], r["assignment"]): (r["score"], r["status"]) for r in rows}


@pytest.fixture
def course(tmp_path):
    """A source with two assignments (the fixture twice), alice submitting both, bob only the first."""
    source = tmp_path / "source"
    (source / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NB, source / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    (source / OTHER).mkdir()
    shutil.copy(SOURCE_NB, source / OTHER / f"{OTHER}.ipynb")
    subs, out = tmp_path / "submitted", tmp_path / "out"
    write_submission(subs, "alice", solution_nb())
    write_submission(subs, "alice", solution_nb(), assignment=OTHER)
    write_submission(subs, "bob", blank_nb())

    def run(**kw):
        return grade_all(subs, out, source=source, workers=2, limits=LIMITS, progress=False, **kw)

    return {"source": source, "subs": subs, "out": out, "run": run}


@pytest.mark.timeout(600)
def test_rerun_regrades_what_changed_and_only_that(course):
    """Unchanged: nothing regraded. A changed file: that job only. A new submission: its missing row
    filled. A changed source notebook: that assignment's jobs only."""
    out, subs, run = course["out"], course["subs"], course["run"]
    first = _scores(run())
    assert first == {("alice", ASSIGNMENT): (MAX_SCORE, "graded"), ("alice", OTHER): (MAX_SCORE, "graded"),
                     ("bob", ASSIGNMENT): (0, "graded"), ("bob", OTHER): (0, "missing")}
    t0 = _mtimes(out)
    run()
    t1 = _mtimes(out)
    assert _changed(t0, t1) == []

    write_submission(subs, "alice", blank_nb())  # alice's first notebook changes
    rows = _scores(run())
    t2 = _mtimes(out)
    assert _changed(t1, t2) == [f"results/alice/{ASSIGNMENT}"]
    assert rows[("alice", ASSIGNMENT)] == (0, "graded") and rows[("alice", OTHER)] == (MAX_SCORE, "graded")

    (subs / "alice" / ASSIGNMENT / "data.txt").write_text("an extra file counts too")
    run()
    t3 = _mtimes(out)
    assert _changed(t2, t3) == [f"results/alice/{ASSIGNMENT}"]

    write_submission(subs, "bob", solution_nb(), assignment=OTHER)  # bob's missing submission appears
    rows = _scores(run())
    t4 = _mtimes(out)
    assert _changed(t3, t4) == [f"results/bob/{OTHER}"]
    assert rows[("bob", OTHER)] == (MAX_SCORE, "graded")

    nb_path = course["source"] / OTHER / f"{OTHER}.ipynb"  # the source notebook of OTHER changes
    nb_path.write_text(json.dumps(json.loads(nb_path.read_text()), indent=2))
    run()
    t5 = _mtimes(out)
    assert _changed(t4, t5) == [f"results/alice/{OTHER}", f"results/bob/{OTHER}"]


@pytest.mark.timeout(600)
def test_regrade_only_and_assignment_flags(course, capsys):
    """--regrade --only LEARNER/ASSIGNMENT, --only LEARNER and --regrade alone force those jobs;
    --assignment grades only that assignment and grades.csv then holds only its rows."""
    out, subs = course["out"], course["subs"]
    base = ["grade", str(subs), "--out", str(out), "--source", str(course["source"]), "--workers", "2",
            "--limits", LIMITS_JSON, "--quiet"]
    assert cli(base) == 0
    t0 = _mtimes(out)
    assert cli(base + ["--regrade", "--only", f"bob/{ASSIGNMENT}"]) == 0
    t1 = _mtimes(out)
    assert _changed(t0, t1) == [f"results/bob/{ASSIGNMENT}"]
    assert cli(base + ["--regrade", "--only", "alice"]) == 0
    t2 = _mtimes(out)
    assert _changed(t1, t2) == [f"results/alice/{ASSIGNMENT}", f"results/alice/{OTHER}"]
    assert cli(base + ["--regrade"]) == 0
    t3 = _mtimes(out)
    assert _changed(t2, t3) == sorted(k.removesuffix(".json") for k in t2)

    write_submission(subs, "alice", blank_nb())
    write_submission(subs, "alice", blank_nb(), assignment=OTHER)
    assert cli(base + ["--assignment", OTHER]) == 0
    t4 = _mtimes(out)
    assert _changed(t3, t4) == [f"results/alice/{OTHER}"]  # alice's changed 00 waits for its own run
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert sorted((r["learner"], r["assignment"], r["status"]) for r in rows) == [
        ("alice", OTHER, "graded"), ("bob", OTHER, "missing")]
    assert json.loads(result_path(out, "alice", ASSIGNMENT).read_text())["score"] == MAX_SCORE
    capsys.readouterr()


def test_bad_flags_are_refused_with_a_message(course):
    """--only without --regrade, an unknown --assignment and an unknown --only learner are refused."""
    base = ["grade", str(course["subs"]), "--out", str(course["out"]), "--source", str(course["source"]),
            "--quiet"]
    with pytest.raises(SystemExit, match="--only names what --regrade regrades"):
        cli(base + ["--only", "alice"])
    with pytest.raises(SystemExit, match=f"no assignment 99_nope .*there are: {ASSIGNMENT}, {OTHER}"):
        cli(base + ["--assignment", "99_nope"])
    with pytest.raises(SystemExit, match="--only names no learner .*: zoe"):
        cli(base + ["--regrade", "--only", "zoe"])
    assert not (course["out"] / "results").exists()
