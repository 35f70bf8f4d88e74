"""An instructor's slips with the grader's commands end in one clear line and exit 1, never a traceback,
and a grader error is never kept as final (the next run grades the job again)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, SOURCE, solution_nb, write_submission  # noqa: E402

from autograder.job import load_result, record, result_path  # noqa: E402
from autograder.paths import ROOT  # noqa: E402


def _run(*args, cwd=ROOT):
    env = dict(os.environ, JUPYTER_CONFIG_PATH=str(ROOT / "autograder"))
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    subs = tmp_path_factory.mktemp("cli") / "submitted"
    write_submission(subs, "alice", solution_nb())
    return subs


@pytest.mark.parametrize("case", ["assignment typo", "no such learner", "out inside submissions",
                                  "no such source", "no such submissions"])
def test_grade_one_refuses_a_slip_with_one_line(klass, tmp_path, case):
    """grade-one: a mistyped assignment, an unknown learner, OUT inside the submissions, a missing source or
    submissions folder: exit 1 with 'error: ...', no traceback, no result written."""
    subs, out, learner, assignment, source = klass, tmp_path / "out", "alice", ASSIGNMENT, SOURCE
    if case == "assignment typo":
        assignment = ASSIGNMENT[:-1]
    elif case == "no such learner":
        learner = "zed"
    elif case == "out inside submissions":
        out = klass / "x"
    elif case == "no such source":
        source = tmp_path / "nosuchsrc"
    else:
        subs = tmp_path / "nosuchsubs"
    proc = _run("grade-one", subs, learner, assignment, "--source", source, "--out", out, "--quiet")
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
    assert not out.exists() or not any(out.rglob("*.json"))


def test_grade_refuses_a_missing_source_with_one_line(klass, tmp_path):
    """grade with a --source that does not exist: one line, exit 1."""
    proc = _run("grade", klass, "--source", tmp_path / "nosuchsrc", "--out", tmp_path / "out", "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "does not exist" in proc.stderr, proc.stderr


def test_a_grader_error_is_not_final(tmp_path):
    """A result whose status is a grader error is written as not final, so the batch grades it again."""
    from autograder import job

    def broken_grade(*args, **kwargs):
        raise FileNotFoundError("setpriv")

    subs = tmp_path / "submitted"
    write_submission(subs, "alice", solution_nb())
    import autograder.trusted as trusted

    original = trusted.grade
    trusted.grade = broken_grade
    try:
        row = job.grade_one(subs, "alice", ASSIGNMENT, tmp_path / "out", source=SOURCE)
    finally:
        trusted.grade = original
    assert row["status"].startswith("grader error (FileNotFoundError"), row
    stored = load_result(result_path(tmp_path / "out", "alice", ASSIGNMENT))
    assert stored["final"] is False
    honest = record(tmp_path / "out2", "alice", ASSIGNMENT, dict(stored, status="graded"), submission_hash="h",
                    source_hash="s")
    assert honest["status"] == "graded"
    assert json.loads(result_path(tmp_path / "out2", "alice", ASSIGNMENT).read_text())["final"] is True
