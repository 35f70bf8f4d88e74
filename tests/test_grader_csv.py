"""grades.csv is safe to open in a spreadsheet: no field starts like a formula, no CR or LF splits a row,
and a learner folder with an unsafe name gets a row under a neutralised name instead of vanishing."""

import csv
import io
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, MAX_SCORE, SOURCE, solution_nb, write_submission  # noqa: E402

from autograder.export import cell, write_csv  # noqa: E402
from autograder.grade import grade_all  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402
from autograder.staging import neutral_name, safe_name  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
UNSAFE = ["\rmallory", "=HYPERLINK(\"evil\",\"y\")", "-2+3", "@SUM(A1)", "+1", "tab\tname", "line\nbreak",
          "jos\u00e9", "semi;colon", "quote\"d", "comma,name"]


def _check_file(path):
    """Every line of grades.csv is one row of five fields, none of which a spreadsheet evaluates."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[-1] == "" and "\r" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(lines) - 1, "a field split a row"
    for row in rows:
        assert len(row) == 5, row
        for field in row:
            assert not field.startswith(DANGEROUS_START), row
            assert not any(ord(ch) < 32 for ch in field), row
    return rows


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx".replace("\t", " ")),
    ("\rx", "' x"), ("a\r\nb", "a  b"), ("graded", "graded"), ("0", "0"), (2.5, "2.5"), (-0.0, "0"),
])
def test_cell_neutralises_formulas_and_line_breaks(text, expected):
    """A field that starts like a formula gets a leading quote; control characters become spaces."""
    assert cell(text) == expected


def test_write_csv_keeps_one_row_per_line(tmp_path):
    """Rows whose fields start with CR, '=' or hold a newline stay one line each and evaluate nothing."""
    rows = [{"learner": name, "assignment": ASSIGNMENT, "score": 1, "max_score": 2,
             "status": "grader error (\r\n=cmd|' /C calc'!A0)"} for name in UNSAFE]
    rows = _check_file(write_csv(tmp_path, rows))
    assert len(rows) == 1 + len(UNSAFE)


def test_safe_names():
    """Letters, digits and . _ @ - (not first: . or -) are safe; the neutral name is safe and stable."""
    for name in ("alice", "a.b-c_d@uni.edu", "_x", "007"):
        assert safe_name(name)
    for name in UNSAFE + [".hidden", "-dash", "", "a" * 101, "a/b"]:
        assert not safe_name(name)
        assert safe_name(neutral_name(name)) and neutral_name(name) == neutral_name(name)
    assert neutral_name("x\ry") != neutral_name("x\ny")


@pytest.mark.timeout(600)
def test_unsafe_learner_names_get_neutral_rows_and_honest_keeps_full_marks(tmp_path):
    """Each learner folder (or zip) with an unsafe name gets one row, named by a hash of its name, with a
    status saying why; none is graded or lost; the honest learner beside them keeps full marks."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    write_submission(subs, "honest", solution_nb())
    for name in UNSAFE:
        write_submission(subs, name, solution_nb())
    with zipfile.ZipFile(subs / "=zip(1).zip", "w") as zf:
        zf.writestr(f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb", "{}")
    rows = grade_all(subs, out, source=SOURCE, workers=2, limits=LIMITS, progress=False)
    by_name = {r["learner"]: r for r in rows}
    assert by_name["honest"]["score"] == MAX_SCORE and by_name["honest"]["status"] == "graded"
    for name in UNSAFE + ["=zip(1)"]:
        row = by_name.pop(neutral_name(name))
        assert row["score"] == 0 and row["status"].startswith("invalid learner name ("), row
        assert "\r" not in row["status"] and "\n" not in row["status"]
    assert list(by_name) == ["honest"]
    file_rows = _check_file(out / "grades.csv")
    assert len(file_rows) == 1 + len(rows)
    assert sorted(p.name for p in (out / "feedback").iterdir()) == sorted(r["learner"] for r in rows)
