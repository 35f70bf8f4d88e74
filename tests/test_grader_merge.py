"""Grading past one machine: docs/GRADING.md's Slurm, HTCondor and Kubernetes snippets, run locally with
the index each engine would give, then ``merge``, give the grades.csv of one ``grade_all``; ``merge``
gives every job a row and refuses conflicting results."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, SOURCE, blank_nb, solution_nb, write_submission  # noqa: E402

from autograder.batch import grade_all  # noqa: E402
from autograder.job import load_result, result_path, write_json  # noqa: E402
from autograder.merge import merge  # noqa: E402
from autograder.paths import ROOT  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402

DOC = ROOT / "docs" / "GRADING.md"
LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)
FENCE = re.compile(r"^```(\w+)(?: (\w+))?\n(.*?)^```$", re.S | re.M)


def _blocks():
    """{tag or language: [block text]} of docs/GRADING.md's cluster section."""
    text = DOC.read_text(encoding="utf-8").split("## Grading past one machine", 1)[1]
    found = {}
    for lang, tag, body in FENCE.findall(text):
        found.setdefault(tag or lang, []).append(body)
    return found


def _line_with(blocks, needle):
    lines = [ln for b in blocks for ln in b.splitlines() if needle in ln]
    assert len(lines) == 1, f"expected one line with {needle!r} in GRADING.md, found {lines}"
    return lines[0]


def _env(**extra):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    env["JUPYTER_CONFIG_PATH"] = str(ROOT / "autograder")
    env.update(extra)
    return env


def _sh(cmd, cwd, **env):
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{cmd!r} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A small class (full marks, zero, a missing assignment) and its grades.csv from one grade_all."""
    tmp = tmp_path_factory.mktemp("klass")
    subs = tmp / "submitted"
    write_submission(subs, "alice", solution_nb())
    write_submission(subs, "bob", blank_nb())
    (subs / "carol" / "notes").mkdir(parents=True)
    grade_all(subs, tmp / "local", source=SOURCE, workers=2, limits=LIMITS, progress=False)
    return {"tmp": tmp, "subs": subs, "csv": (tmp / "local" / "grades.csv").read_text(),
            "blocks": _blocks()}


def _workdir(klass, name):
    """A checkout-like folder for one engine: submitted/, solutions/ (the fixture's), .venv, jobs.txt
    written by the documented ``jobs`` command."""
    work = klass["tmp"] / name
    shutil.copytree(klass["subs"], work / "submitted")
    shutil.copytree(SOURCE, work / "solutions")
    (work / ".venv").symlink_to(ROOT / ".venv")
    _sh(_line_with(klass["blocks"]["bash"], "autograder jobs"), work)
    lines = (work / "jobs.txt").read_text().splitlines()
    assert lines == [f"{lrn} {ASSIGNMENT}" for lrn in ("alice", "bob", "carol")]
    return work, lines


def _merge_and_compare(klass, work):
    _sh(_line_with(klass["blocks"]["bash"], "autograder merge"), work)
    assert (work / "grades.csv").exists() is False
    assert (work / "grades" / "grades.csv").read_text() == klass["csv"]
    assert (work / "grades" / "feedback").is_dir()


def test_local_class_has_the_three_kinds_of_row(klass):
    rows = klass["csv"].splitlines()
    assert rows[1:] == [f"alice,{ASSIGNMENT},8,8,graded", f"bob,{ASSIGNMENT},0,8,graded",
                        f"carol,{ASSIGNMENT},0,8,missing"]


def test_slurm_job_array_then_merge_equals_one_grade_all(klass):
    work, lines = _workdir(klass, "slurm")
    (script,) = klass["blocks"]["slurm"]
    assert "#SBATCH" in script and "SLURM_ARRAY_TASK_ID" in script
    (work / "grade.sbatch").write_text(script)
    for index in range(1, len(lines) + 1):  # sbatch --array=1-N: 1-based
        _sh("bash grade.sbatch", work, SLURM_ARRAY_TASK_ID=str(index))
    assert sorted(p.name for p in (work / "parts").iterdir()) == ["1", "2", "3"]
    _merge_and_compare(klass, work)


def test_htcondor_queue_from_then_merge_equals_one_grade_all(klass):
    work, lines = _workdir(klass, "htcondor")
    (submit,) = klass["blocks"]["htcondor"]
    keys = dict(re.findall(r"^(\w+)\s*=\s*(.+)$", submit, re.M))
    queue = re.search(r"^queue (.+) from (\S+)$", submit, re.M)
    names = [v.strip() for v in queue.group(1).split(",")]
    assert names == ["learner", "assignment"] and queue.group(2) == "jobs.txt"
    arguments = keys["arguments"].strip()
    assert arguments.startswith('"') and arguments.endswith('"')
    for line in (work / queue.group(2)).read_text().splitlines():
        values = dict(zip(names, re.split(r"[\s,]+", line.strip()), strict=True))
        args = re.sub(r"\$\((\w+)\)", lambda m, v=values: v[m.group(1)], arguments[1:-1])
        proc = subprocess.run([str(work / keys["executable"].strip()), *shlex.split(args)], cwd=work, env=_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((work / "parts").iterdir())) == len(lines)
    _merge_and_compare(klass, work)


def test_kubernetes_indexed_job_then_merge_equals_one_grade_all(klass):
    work, lines = _workdir(klass, "kubernetes")
    (manifest,) = klass["blocks"]["kubernetes"]
    assert re.search(r"^\s*completionMode: Indexed$", manifest, re.M)
    command = json.loads(re.search(r"^\s*command: (\[.*\])$", manifest, re.M).group(1))
    for index in range(len(lines)):  # JOB_COMPLETION_INDEX counts from 0
        proc = subprocess.run(command, cwd=work, env=_env(JOB_COMPLETION_INDEX=str(index)), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (work / "parts").iterdir()) == ["0", "1", "2"]
    _merge_and_compare(klass, work)


def test_merge_gives_a_job_without_a_result_its_row_and_fails(klass, tmp_path):
    part = tmp_path / "part"
    for learner in ("alice", "carol"):
        src = load_result(result_path(klass["tmp"] / "local", learner, ASSIGNMENT))
        write_json(result_path(part, learner, ASSIGNMENT), src)
    rows = merge([part], tmp_path / "out", submissions=klass["subs"], source=SOURCE, progress=False)
    assert [(r["learner"], r["status"]) for r in rows] == [
        ("alice", "graded"), ("bob", "grader error (no result)"), ("carol", "missing")]
    assert load_result(result_path(tmp_path / "out", "bob", ASSIGNMENT))["final"] is False
    proc = subprocess.run([sys.executable, "-m", "autograder", "merge", str(part), "--out", str(tmp_path / "o2"),
                           "--submissions", str(klass["subs"]), "--source", str(SOURCE), "--quiet"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "bob,00_fixture,0,8,grader error (no result)" in (tmp_path / "o2" / "grades.csv").read_text()


def test_merge_refuses_two_different_results_of_one_job(klass, tmp_path):
    good = load_result(result_path(klass["tmp"] / "local", "alice", ASSIGNMENT))
    write_json(result_path(tmp_path / "a", "alice", ASSIGNMENT), good)
    write_json(result_path(tmp_path / "b", "alice", ASSIGNMENT), good)
    rows = merge([tmp_path / "a", tmp_path / "b"], tmp_path / "same", progress=False)  # identical: one row
    assert [(r["learner"], r["score"]) for r in rows] == [("alice", 8.0)]
    write_json(result_path(tmp_path / "b", "alice", ASSIGNMENT), good | {"score": 0.0})
    with pytest.raises(SystemExit, match="two different results for alice"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)


def test_merge_refuses_a_result_file_of_another_job(klass, tmp_path):
    good = load_result(result_path(klass["tmp"] / "local", "alice", ASSIGNMENT))
    write_json(result_path(tmp_path / "a", "mallory", ASSIGNMENT), good)
    with pytest.raises(SystemExit, match="not a result file of mallory"):
        merge([tmp_path / "a"], tmp_path / "out", progress=False)
    with pytest.raises(SystemExit, match="does not exist"):
        merge([tmp_path / "nowhere"], tmp_path / "out", progress=False)
