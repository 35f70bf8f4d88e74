"""The class grader as a batch: every job gets a row, zips are safe, killed runs resume, and the real
course grades as nbgrader would (solutions full marks, released notebooks zero)."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, MAX_SCORE, SOURCE, blank_nb, solution_nb, write_submission  # noqa: E402

from autograder.grade import extract_assignment, grade_all, result_path  # noqa: E402
from autograder.paths import COURSE, ROOT, SOLUTIONS, assignments  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def _read_csv(out):
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    subs, out = tmp / "submitted", tmp / "out"
    good = json.dumps(solution_nb())
    write_submission(subs, "alice", solution_nb())
    write_submission(subs, "bob", blank_nb())
    write_submission(subs, "carol_badjson", '{"cells": [}')
    write_submission(subs, "dan_empty", "")
    (subs / "erin_no_assignment").mkdir()
    (subs / "frank_no_notebook" / ASSIGNMENT).mkdir(parents=True)
    (subs / "frank_no_notebook" / ASSIGNMENT / "notes.txt").write_text("forgot it")
    _zip(subs / "gina_zip.zip", {f"gina_zip/{ASSIGNMENT}/{ASSIGNMENT}.ipynb": good})
    _zip(subs / "hal_zip_flat.zip", {f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb": good})
    _zip(subs / "ivy_zipslip.zip", {f"{ASSIGNMENT}/../../../evil.txt": "x", f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb": good})
    _zip(subs / "jon_zipbomb.zip", {f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb": good,
                                    f"{ASSIGNMENT}/bomb.bin": b"\0" * (300 << 20)})
    (subs / "kim_notazip.zip").write_bytes(b"PK\x03\x04 broken")
    rows = grade_all(subs, out, source=SOURCE, workers=2, limits=LIMITS, progress=False)
    return {"rows": rows, "out": out, "subs": subs, "tmp": tmp}


EXPECTED = {
    "alice": (MAX_SCORE, "graded"),
    "bob": (0, "graded"),
    "carol_badjson": (0, "invalid notebook (malformed JSON)"),
    "dan_empty": (0, "invalid notebook (empty file)"),
    "erin_no_assignment": (0, "missing"),
    "frank_no_notebook": (0, "missing notebook"),
    "gina_zip": (MAX_SCORE, "graded"),
    "hal_zip_flat": (MAX_SCORE, "graded"),
    "ivy_zipslip": (0, "invalid zip (unsafe path"),
    "jon_zipbomb": (0, "invalid zip ("),
    "kim_notazip": (0, "invalid zip (not a valid zip file"),
}


@pytest.mark.parametrize("learner", sorted(EXPECTED))
def test_every_submission_gets_its_row(batch, learner):
    """Each learner gets exactly one row in grades.csv with the expected score and status."""
    rows = [r for r in _read_csv(batch["out"]) if r["learner"] == learner]
    assert len(rows) == 1, rows
    score, status = EXPECTED[learner]
    assert float(rows[0]["score"]) == score and float(rows[0]["max_score"]) == MAX_SCORE
    assert rows[0]["status"].startswith(status), rows[0]
    assert (batch["out"] / "feedback" / learner / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()


def test_grades_csv_has_the_documented_columns(batch):
    """grades.csv has the header learner, assignment, score, max_score, status and no duplicates."""
    text = (batch["out"] / "grades.csv").read_text()
    assert text.splitlines()[0] == "learner,assignment,score,max_score,status"
    keys = [(r["learner"], r["assignment"]) for r in _read_csv(batch["out"])]
    assert len(keys) == len(set(keys)) == len(EXPECTED)


def test_zip_slip_wrote_nothing_outside(batch):
    """The zip-slip entry was refused: nothing was written above the extraction folder."""
    assert not any(p.name == "evil.txt" for p in batch["tmp"].parent.rglob("evil.txt"))


def test_extract_refuses_links_and_bombs(tmp_path):
    """extract_assignment refuses symbolic links and archives that unzip past the size limit."""
    from autograder.grade import ZipProblem

    link = zipfile.ZipInfo(f"{ASSIGNMENT}/link")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ZipProblem, match="link"):
        extract_assignment(tmp_path / "l.zip", "x", ASSIGNMENT, tmp_path / "l")


def test_feedback_shows_results_without_tracebacks_or_test_source(batch):
    """Feedback lists each check with points and the exception type, never a traceback or hidden test."""
    html = (batch["out"] / "feedback" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "NotImplementedError" in html and "double returns twice its input." in html
    assert "Traceback" not in html and "BEGIN HIDDEN TESTS" not in html and "TG-HIDDEN" not in html
    assert "0 / 8" in html


def test_killed_batch_resumes_without_regrading(tmp_path):
    """Kill the grader after its first result; a second run finishes the rest, regrading nothing."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for i in range(4):
        write_submission(subs, f"learner{i}", solution_nb() if i % 2 == 0 else blank_nb())
    cmd = [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--source", str(SOURCE),
           "--workers", "1"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while not list((out / "results").rglob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
    assert 1 <= len(first) < 4, "the kill should land mid-batch"
    assert not (out / "grades.csv").exists()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(first)} already graded" in done.stdout
    for path, mtime in first.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was graded again"
    rows = _read_csv(out)
    assert sorted(r["learner"] for r in rows) == [f"learner{i}" for i in range(4)]
    assert [float(r["score"]) for r in sorted(rows, key=lambda r: r["learner"])] == [MAX_SCORE, 0, MAX_SCORE, 0]
    assert len(list((out / "results").rglob("*.json"))) == 4
    from autograder.sandbox import sweep_scratch

    assert sweep_scratch() == [], "the second run should have removed the killed run's scratch folders"


COURSE_ASSIGNMENTS = assignments(SOLUTIONS) if SOLUTIONS.is_dir() else []


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("assignment", COURSE_ASSIGNMENTS or [pytest.param(None, marks=pytest.mark.skip(
    reason="no assignment in solutions/ yet"))])
def test_real_course_solution_full_marks_release_zero(tmp_path, assignment):
    """The class grader gives each solution notebook full marks and each released notebook zero."""
    import shutil

    source = tmp_path / "source"
    shutil.copytree(SOLUTIONS / assignment, source / assignment)
    subs, out = tmp_path / "submitted", tmp_path / "out"
    shutil.copytree(SOLUTIONS / assignment, subs / "solver" / assignment)
    released = COURSE / assignment / f"{assignment}.ipynb"
    has_release = released.exists()
    if has_release:
        shutil.copytree(COURSE / assignment, subs / "blank" / assignment)
    rows = {r["learner"]: r for r in grade_all(subs, out, source=source, workers=2, progress=False)}
    solver = rows["solver"]
    result = json.loads(result_path(out, "solver", assignment).read_text())
    failed = [(t["grade_id"], t["error_type"], t["message"]) for t in result["tests"] if not t["passed"]]
    assert solver["status"] == "graded" and solver["score"] == solver["max_score"] > 0, (failed, result["cells"])
    if has_release:
        assert rows["blank"]["score"] == 0, rows["blank"]


# A grader worker's death (and SIGKILL of the grader): tests/test_grader_crash.py
