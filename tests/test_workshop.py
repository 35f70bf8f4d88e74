"""Workshops on a JupyterHub (docs/WORKSHOP.md).

Everywhere: the roster's format, and the course grader's results into nbgrader's gradebook (scores per
grade cell, `nbgrader export`, the feedback layout `release_feedback` reads, no hidden test or solution).
As root (marked ``workshop``): workshop/setup.sh builds the hub in /opt (cached), throwaway accounts log in
in headless Chromium, and nbgrader's round trip runs end to end through the exchange.
"""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workshop"))

from roster import RosterError, parse_roster  # noqa: E402

ASSIGNMENT = "03_clipping_by_hand"
RELEASED = ROOT / "course" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _nbg(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _grade_cells(path):
    return {_nbg(c)["grade_id"]: float(_nbg(c).get("points", 0)) for c in _cells(path) if _nbg(c).get("grade")}


def _secret_snippets():
    """Lines of hidden tests and of solutions that must never reach the gradebook or feedback."""
    snippets = []
    for c in _cells(SOLUTION):
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for pattern in (r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", r"### BEGIN SOLUTION\n(.*?)### END SOLUTION"):
            for block in re.findall(pattern, src, re.S):
                snippets += [line.strip() for line in block.splitlines() if len(line.strip()) >= 25]
    released = RELEASED.read_text()
    snippets = [s for s in snippets if json.dumps(s)[1:-1] not in released]  # lines the visible tests share
    assert snippets, "the solutions notebook has hidden tests and solutions to look for"
    return snippets


# --- the roster ---------------------------------------------------------------------------------------

def test_roster_reads_members_and_roles():
    """A roster gives each member's login name and role, skipping comments and blank lines."""
    members = parse_roster("# a workshop\nusername,role\nteach,instructor\n\nann,learner\nbo_b,Learner\n")
    assert [(m.username, m.role) for m in members] == [("teach", "instructor"), ("ann", "learner"),
                                                       ("bo_b", "learner")]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("name,role\nteach,instructor\n", "header"),
    ("username,role\nteach,instructor\nAnn,learner\n", "not a valid login name"),
    ("username,role\nteach,instructor\nroot,learner\n", "system account"),
    ("username,role\nteach,instructor\nann,student\n", "is not one of"),
    ("username,role\nteach,instructor\nann,learner\nann,learner\n", "listed twice"),
    ("username,role\nann,learner\n", "no instructor"),
    ("username,role\nteach,instructor,extra\n", "expected 'username,role'"),
])
def test_roster_refuses_bad_input_with_the_line(text, message):
    """A bad roster is refused with a message that says what and where."""
    with pytest.raises(RosterError, match=message):
        parse_roster(text, "r.csv")


def test_the_example_roster_is_valid():
    """workshop/roster.example.csv, what `make hub` uses by default, parses."""
    members = parse_roster((ROOT / "workshop" / "roster.example.csv").read_text())
    assert sum(m.role == "instructor" for m in members) == 1 and len(members) >= 3


def test_nbgrader_config_keeps_the_files_release_feedback_needs():
    """The course's nbgrader config keeps timestamp.txt and submission_secret.txt (collect, release_feedback)."""
    from traitlets.config import Config, PyFileConfigLoader

    loader = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "autograder"))
    config = loader.load_config()
    assert isinstance(config, Config)
    include = config.CourseDirectory.include
    assert {"*.ipynb", "timestamp.txt", "submission_secret.txt"} <= set(include)


# --- the gradebook ---------------------------------------------------------------------------------------

def _result(learner, scores):
    tests = [{"grade_id": g, "summary": g, "points": p, "score": scores.get(g, 0.0),
              "passed": scores.get(g, 0.0) == p} for g, p in _grade_cells(RELEASED).items()]
    return {"learner": learner, "assignment": ASSIGNMENT, "status": "graded", "tests": tests,
            "score": sum(t["score"] for t in tests), "max_score": sum(t["points"] for t in tests)}


def _course_with_results(tmp_path, results):
    course, out = tmp_path / "course_dir", tmp_path / "out"
    (course / "course" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(RELEASED, course / "course" / ASSIGNMENT)
    for r in results:
        learner = r["learner"]
        sub = course / "submitted" / learner / ASSIGNMENT
        sub.mkdir(parents=True)
        shutil.copy(RELEASED, sub)
        (sub / "timestamp.txt").write_text("2026-12-02 10:00:00.000000 UTC")
        (sub / "submission_secret.txt").write_text(f"secret-of-{learner}")
        res = out / "results" / learner / f"{ASSIGNMENT}.json"
        res.parent.mkdir(parents=True)
        res.write_text(json.dumps(r))
        fb = out / "feedback" / learner / ASSIGNMENT / f"{ASSIGNMENT}.html"
        fb.parent.mkdir(parents=True)
        fb.write_text(f"<html>feedback for {learner}</html>")
    return course, out


def test_results_go_into_the_gradebook_per_grade_cell(tmp_path):
    """Each grade cell's auto_score is the result's test score; the submission's score is grades.csv's."""
    from nbgrader.api import Gradebook

    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    first = next(iter(cells))
    ann = _result("ann", dict(cells))                    # every test passed
    bob = _result("bob", {first: cells[first]})           # only the first
    expected = {"ann": sum(cells.values()), "bob": cells[first]}
    course, out = _course_with_results(tmp_path, [ann, bob])
    rows = write(out, course)
    assert sorted(rows) == sorted((k, ASSIGNMENT, v) for k, v in expected.items())
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        for learner, total in expected.items():
            sub = gb.find_submission(ASSIGNMENT, learner)
            assert sub.score == pytest.approx(total)
            assert sub.max_score == pytest.approx(sum(cells.values()))
            assert str(sub.timestamp).startswith("2026-12-02 10:00:00")
        assert gb.find_grade(first, ASSIGNMENT, ASSIGNMENT, "bob").auto_score == cells[first]
        # Written twice (a regrade), the submission is replaced, not duplicated.
    write(out, course)
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        assert len(gb.assignment_submissions(ASSIGNMENT)) == 2


def test_nbgrader_export_gives_the_same_numbers(tmp_path):
    """`nbgrader export` from that gradebook gives each learner's score."""
    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    two = dict(list(cells.items())[:2])
    course, out = _course_with_results(tmp_path, [_result("ann", cells), _result("bob", two)])
    write(out, course)
    env = os.environ | {"TG_COURSE_ROOT": str(course), "TG_GRADEBOOK": str(course / "gradebook.db")}
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(tmp_path / "grades.csv")],
                   cwd=course, env=env, check=True, capture_output=True)
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text()))}
    assert rows == {"ann": pytest.approx(sum(cells.values())), "bob": pytest.approx(sum(two.values()))}


def test_feedback_is_placed_where_release_feedback_reads_it_and_nothing_secret_is_stored(tmp_path):
    """feedback/<learner>/<assignment>/ holds the grader's HTML, timestamp.txt and submission_secret.txt;
    the gradebook's stored notebook sources hold no hidden test or solution line."""
    import sqlite3

    from autograder.gradebook import write

    course, out = _course_with_results(tmp_path, [_result("ann", {})])
    write(out, course)
    fb = course / "feedback" / "ann" / ASSIGNMENT
    assert (fb / f"{ASSIGNMENT}.html").read_text() == "<html>feedback for ann</html>"
    assert (fb / "timestamp.txt").read_text() == "2026-12-02 10:00:00.000000 UTC"
    assert (fb / "submission_secret.txt").read_text() == "secret-of-ann"
    db = sqlite3.connect(course / "gradebook.db")
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    stored = "\n".join(str(v) for table in tables for row in db.execute(f'SELECT * FROM "{table}"') for v in row)
    assert "clip_by_value_basics" in stored  # the released cells are there
    leaked = [s for s in _secret_snippets() if s in stored]
    assert not leaked, f"hidden test or solution text in the gradebook: {leaked[:3]}"


def test_a_result_that_the_release_does_not_know_is_refused(tmp_path):
    """A test name that is not a grade cell of the released notebook stops with a clear error."""
    from autograder.gradebook import GradebookError, write

    bad = _result("ann", {})
    bad["tests"].append({"grade_id": "no_such_cell", "points": 1, "score": 1})
    course, out = _course_with_results(tmp_path, [bad])
    with pytest.raises(GradebookError, match="no_such_cell"):
        write(out, course)
