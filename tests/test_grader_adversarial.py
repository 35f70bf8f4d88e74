"""Adversarial submissions of the fixture assignment, graded in one parallel batch.

Each case in tests/adversarial/cases.py states its expected outcome: cheating earns nothing, crashes
and resource abuse cost only the cells involved (and say so in the status), broken files get a row,
and legitimate output on stderr keeps full marks.
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "fixtures"), str(HERE / "adversarial")]

from cases import CASES, _reader, _writer, read_secrets_nb  # noqa: E402
from grader_fixture import SOURCE, SOURCE_NB, solution_nb, with_cell, write_submission  # noqa: E402

from autograder.grade import grade_all, load_result, result_path  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import Limits, detect_mode  # noqa: E402

ROOT_ONLY = {"read_solutions_and_gradebook", "network_connection"}
LIMITS = Limits(cpu_seconds=20, memory_bytes=1 << 30, wall_seconds=90, cell_seconds=6, call_seconds=15)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adversarial")
    subs, out = tmp / "submitted", tmp / "out"
    secrets = [str(SOURCE_NB), str(SOURCE), str(out), str(out / "grades.csv"), str(subs / "honest"),
               str(ROOT / "solutions"), str(ROOT / ".nbgrader"), str(ROOT / "autograder" / "grade.py"),
               str(ROOT / "tests"), "/root/.cache", str(subs)]
    targets = [str(out / "grades.csv"), str(out / "results" / "mallory" / "00_fixture.json"),
               str(ROOT / ".nbgrader" / "gradebook.db"), str(SOURCE_NB)]
    source_bytes = SOURCE_NB.read_bytes()
    for name, (build, _) in CASES.items():
        if name == "read_solutions_and_gradebook":
            nb = read_secrets_nb(secrets)
        elif name == "write_gradebook_and_grades":
            nb = with_cell("double", _writer(targets), solution_nb())
        else:
            nb = build()
        write_submission(subs, name, nb)
    rows = grade_all(subs, out, source=SOURCE, workers=2, limits=LIMITS, progress=False)
    assert _reader and _writer
    return {"rows": rows, "out": out, "subs": subs, "source_bytes": source_bytes}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", sorted(CASES))
def test_adversarial_submission(batch, case):
    """Each adversarial submission gets exactly one row and its expected outcome."""
    if case in ROOT_ONLY and detect_mode() != "root":
        pytest.skip(f"{case}: needs the root sandbox (mode here: {detect_mode()}); NOT enforced without root")
    rows = [r for r in batch["rows"] if r["learner"] == case]
    assert len(rows) == 1, rows
    result = load_result(result_path(batch["out"], case, "00_fixture"))
    assert result is not None
    assert rows[0]["score"] == result["score"] and rows[0]["status"] == result["status"]
    CASES[case][1](result, batch)


def test_no_hidden_source_anywhere_in_outputs(batch):
    """No hidden-test token appears in grades.csv, any result JSON or any feedback page."""
    from cases import LEAK_TOKENS

    for path in batch["out"].rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for token in LEAK_TOKENS:
                assert token not in text, f"{token} leaked into {path}"
