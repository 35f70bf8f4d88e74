"""Adversarial submissions of the fixture assignment, graded in one parallel batch.

Each case in tests/adversarial/cases.py states its expected outcome: cheating earns nothing, crashes
and resource abuse cost only the cells involved (and say so in the status), broken files get a row,
and legitimate output on stderr keeps full marks.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "fixtures"), str(HERE / "adversarial")]

from cases import CASES, _writer, read_secrets_nb  # noqa: E402
from grader_fixture import ASSIGNMENT, SOURCE, SOURCE_NB, solution_nb, with_cell, write_submission  # noqa: E402

from autograder.grade import grade_all, load_result, result_path  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import CHROOT_MODES, Limits, detect_mode  # noqa: E402

# The cases that need more than the resource limits, and the sandbox modes that block them (the
# chroot hides and protects files: root, or userns-chroot without root; any namespace mode cuts the
# network). In other modes they are skipped, and the result's not_enforced says why.
NEEDS_MODE = {"read_solutions_and_gradebook": CHROOT_MODES, "write_gradebook_and_grades": CHROOT_MODES,
              "network_connection": (*CHROOT_MODES, "userns")}
LIMITS = Limits(cpu_seconds=20, memory_bytes=1 << 30, wall_seconds=90, cell_seconds=6, call_seconds=15)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every case in one batch, against a temporary copy of the fixture source, with real
    sentinel files on the host (a gradebook, a grades.csv and a result already in OUT, another
    learner's files) for the read and write probes to aim at."""
    # Outside /tmp: in the sandbox /tmp is a private, writable tmpfs, so a path under the host's /tmp
    # would be "written" there (harmlessly) instead of being denied. /var/tmp does not exist in there.
    base = Path("/var/tmp")
    if base.is_dir() and os.access(base, os.W_OK):
        tmp = Path(tempfile.mkdtemp(prefix="tg-adversarial-", dir=base))
    else:
        tmp = tmp_path_factory.mktemp("adversarial")
    subs, out, source = tmp / "submitted", tmp / "out", tmp / "source"
    shutil.copytree(SOURCE, source)
    source_nb = source / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    gradebook = tmp / "course" / ".nbgrader" / "gradebook.db"
    gradebook.parent.mkdir(parents=True)
    gradebook.write_bytes(b"SQLite format 3\0 sentinel gradebook")
    (out / "results" / "zz_previous").mkdir(parents=True)
    seeded_csv = out / "grades.csv"
    seeded_csv.write_text("learner,assignment,score,max_score,status\nzz_previous,00_fixture,3,8,graded\n")
    previous = out / "results" / "zz_previous" / f"{ASSIGNMENT}.json"
    previous.write_text('{"sentinel": "a result of an earlier run"}')
    for name, (build, _) in CASES.items():
        if build is not None:
            write_submission(subs, name, build())
    other_file = subs / "honest" / ASSIGNMENT / "data.csv"  # another learner's own file
    other_file.write_text("x,y\n1,2\n")
    sentinels = [str(source_nb), str(gradebook), str(seeded_csv), str(previous), str(other_file),
                 str(subs / "honest" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")]
    read_paths = sentinels + [str(source), str(out), str(subs / "honest"), str(subs), str(SOURCE_NB),
                              str(ROOT / "solutions"), str(ROOT / ".nbgrader"),
                              str(ROOT / "autograder" / "grade.py"), str(ROOT / "tests"), "/root/.cache"]
    write_targets = [str(seeded_csv), str(out / "results" / "mallory" / f"{ASSIGNMENT}.json"), str(previous),
                     str(gradebook), str(source_nb), str(other_file)]
    write_submission(subs, "read_solutions_and_gradebook", read_secrets_nb(read_paths, source_nb))
    write_submission(subs, "write_gradebook_and_grades", with_cell("double", _writer(write_targets), solution_nb()))
    snapshots = {Path(p): Path(p).read_bytes() for p in (source_nb, gradebook, previous, other_file)}
    source_bytes = SOURCE_NB.read_bytes()
    rows = grade_all(subs, out, source=source, workers=2, limits=LIMITS, progress=False)
    yield {"rows": rows, "out": out, "subs": subs, "source_bytes": source_bytes, "sentinels": sentinels,
           "read_paths": read_paths, "write_targets": write_targets, "snapshots": snapshots}
    if tmp.parent == base:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", sorted(CASES))
def test_adversarial_submission(batch, case):
    """Each adversarial submission gets exactly one row and its expected outcome."""
    if case in NEEDS_MODE and detect_mode() not in NEEDS_MODE[case]:
        pytest.skip(f"{case}: needs sandbox mode {' or '.join(NEEDS_MODE[case])} (mode here: {detect_mode()}); "
                    "NOT enforced here")
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


@pytest.mark.timeout(600)
def test_course_answers_cannot_be_imported_from_gradlab(tmp_path):
    """Notebook-style cheating: each exercise cell of 03 imports its answer from gradlab.clipping.

    In the chroot modes (root, or userns-chroot) the sandbox leaves gradlab.clipping out for
    assignment 03, so the imports fail and the submission scores zero; in the other modes the module
    is importable (docs/GRADING.md says so).
    """
    if detect_mode() not in CHROOT_MODES:
        pytest.skip(f"needs the chroot sandbox (mode here: {detect_mode()}); NOT enforced here")
    from autograder import notebooks
    from autograder.paths import SOLUTIONS
    from autograder.trusted import grade

    assignment = "03_clipping_by_hand"
    source = SOLUTIONS / assignment / f"{assignment}.ipynb"
    if not source.is_file():
        pytest.skip(f"{assignment} is not in solutions/")
    nb = notebooks.read(source)
    exercises = []
    for c in nb["cells"]:
        if notebooks.is_solution(c):
            exercises.append(notebooks.grade_id(c))
            c["source"] = f"from gradlab.clipping import {exercises[-1]}\n"
    assert "clip_by_value" in exercises
    path = write_submission(tmp_path, "cheater", nb, assignment)
    result = grade(source, path, limits=Limits(cpu_seconds=120, wall_seconds=300))
    assert result["status"] == "graded", result["status"]
    assert result["max_score"] > 0 and result["score"] == 0, [(t["grade_id"], t["passed"]) for t in result["tests"]]
    errors = {c["label"]: c.get("error_type") for c in result["cells"] if not c["ok"]}
    assert all(errors.get(gid) == "ModuleNotFoundError" for gid in exercises), errors
    assert "gradlab.clipping" in " ".join(result["protections"])
