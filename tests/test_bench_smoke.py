"""Smoke test of the benchmarks: ``python -m bench --quick`` runs every module at tiny sizes.

It checks the report's structure (every module present, every row complete, numbers finite), never a
timing: timings are ``make bench``'s business, and they are ratios printed for a person to read.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.__main__ import discover, run_module  # noqa: E402

KEYS = ("name", "value", "unit", "peer", "ratio", "budget", "ok")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """The JSON report of one ``python -m bench --quick`` run (all modules)."""
    out = tmp_path_factory.mktemp("bench") / "report.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", BENCH_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"python -m bench --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "name" in proc.stdout and "budget" in proc.stdout, "the table was not printed"
    return json.loads(out.read_text())


def test_quick_run_reports_every_module(quick_report):
    """Every bench_*.py module ran and contributed at least one row."""
    modules = [m.removeprefix("bench_") for m in discover()]
    assert {"notebooks", "rnn", "clip", "widgets", "grading"} <= set(modules)
    assert quick_report["modules"] == modules
    assert quick_report["quick"] is True and quick_report["threads"] == 1
    for module in modules:
        assert any(r["module"] == module for r in quick_report["rows"]), f"no row from bench_{module}"


def test_quick_run_rows_are_complete_and_finite(quick_report):
    """Each row has the contract's keys; no benchmark crashed; values and ratios are finite numbers."""
    rows = quick_report["rows"]
    assert rows
    for r in rows:
        assert all(k in r for k in KEYS), f"row lacks keys: {r}"
        assert not r.get("error"), f"benchmark error: {r['name']}: {r['error']}"
        assert isinstance(r["ok"], bool) and isinstance(r["budget"], str) and isinstance(r["unit"], str)
        if r.get("skipped"):
            continue
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] >= 0, r
        assert r["ratio"] is None or (math.isfinite(r["ratio"]) and r["ratio"] > 0), r


def test_quick_run_has_the_issue_figures(quick_report):
    """The rows the design's budgets need: RNN vs torch in both dtypes, clipping vs torch and bound, totals."""
    names = [r["name"] for r in quick_report["rows"]]
    for prefix in ("rnn fwd+bwd float32", "rnn fwd+bwd float64", "rnn GFLOP/s", "rnn vs per-sample loop",
                   "clip gradlab vs torch", "clip gradlab vs two-pass bound", "course total", "widget",
                   "grade_cpu_per_submission", "grade_cpu_vs_nbgrader", "grade_parallel_efficiency"):
        assert any(n.startswith(prefix) for n in names), f"no row named {prefix!r}..."


def test_quick_run_times_every_notebook_widget(quick_report):
    """One widget row per notebook 01-06 (its own explorer), none crashed; only notebook 05's may be a skip."""
    import importlib.util

    rows = [r for r in quick_report["rows"] if r["module"] == "widgets"]
    names = [r["name"] for r in rows]
    for cls in ("HiddenStateExplorer", "GradNormExplorer", "CliffExplorer", "ClippingExplorer",
                "SpikeAlarmExplorer", "KerasClippingExplorer"):
        assert any(n.startswith(f"widget {cls} redraw p95") for n in names), f"no widget row for {cls}: {names}"
    for notebook in ("01", "02", "03", "04", "05", "06"):
        mine = [r for r in rows if r.get("notebook") == notebook]
        assert mine, f"no widget row for notebook {notebook}"
        assert all(not r.get("error") for r in mine), mine
        if notebook != "05" or importlib.util.find_spec("torch") is not None:
            assert all(not r.get("skipped") and r["value"] > 0 for r in mine), f"notebook {notebook}: {mine}"
    budgets = {r["notebook"]: r["budget"] for r in rows if not r.get("skipped")}
    assert budgets["01"] == budgets["02"] == budgets["04"] == budgets["06"] == "<= 100 ms"
    assert budgets["03"] == "<= 1000 ms" and budgets.get("05", "<= 1000 ms") == "<= 1000 ms"


def test_quick_run_has_the_grading_rows(quick_report):
    """bench_grading in quick mode (the fixture assignment) gives the three grade_* rows with finite numbers,
    the ratio against nbgrader autograde of the same submission with a budget of 1.0x."""
    rows = {r["name"].split(" ")[0]: r for r in quick_report["rows"] if r["module"] == "grading"}
    assert set(rows) == {"grade_cpu_per_submission", "grade_cpu_vs_nbgrader", "grade_parallel_efficiency",
                         "grade_dask_efficiency"}, list(rows)
    peer = rows["grade_cpu_vs_nbgrader"]
    assert peer["unit"] == "x" and peer["budget"] == "<= 1.0x" and peer["value"] > 0 and peer["value"] == peer["ratio"]
    assert "nbgrader autograde" in peer["peer"]
    assert rows["grade_cpu_per_submission"]["unit"] == "CPU-s" and rows["grade_cpu_per_submission"]["value"] > 0
    assert rows["grade_parallel_efficiency"]["unit"] == "%" and rows["grade_parallel_efficiency"]["value"] > 0
    dask = rows["grade_dask_efficiency"]  # through the Dask backend, against the local pool of the same run
    assert dask["unit"] == "%" and dask["value"] > 0 and dask["ratio"] > 0 and "local pool" in dask["peer"]


def test_clip_rows_time_the_function_notebook_04_uses(quick_report):
    """bench_clip times the gradlab.clipping function notebook 04 calls: the fast in-place one."""
    from bench import bench_clip

    assert bench_clip.notebook_clip_functions() == ["clip_grads_by_global_norm_"]
    vs_torch = [r for r in quick_report["rows"] if r["name"].startswith("clip gradlab vs torch")]
    assert vs_torch and all(r["function"] == "clip_grads_by_global_norm_" for r in vs_torch)


def test_a_broken_module_gives_an_error_row_not_a_crash():
    """run_module turns an import failure into one error row with the contract's keys."""
    rows = run_module("bench_no_such_module", quick=True)
    assert len(rows) == 1 and rows[0]["error"] and rows[0]["ok"] is False
    assert all(k in rows[0] for k in KEYS)


def test_interleaved_alternates_and_counts():
    """interleaved times each callable `repeats` times after the warm-up, alternating their order."""
    calls = []
    times = common.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=1)
    assert [len(v) for v in times.values()] == [3, 3]
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_table_and_json_safe_handle_error_rows():
    """format_table prints every row; json_safe turns NaN into None so the report is strict JSON."""
    rows = [common.row("x", 1.5, "ms", peer="p", ratio=0.5, budget="<= 1", ok=True),
            common.error_row("y", "boom")]
    table = common.format_table(rows)
    assert "x" in table and "ERROR" in table and "boom" in table
    json.dumps(common.json_safe(rows), allow_nan=False)
