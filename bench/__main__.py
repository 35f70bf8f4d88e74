"""The benchmark runner: ``python -m bench [--quick] [--only NAME] [--out PATH] [--threads N]``.

Imports every ``bench/bench_*.py`` module, calls its ``run(quick)`` and collects the rows; prints a
table and writes a JSON report (``bench/results/report.json`` unless ``--out``). A module that fails to
import or raises gives an error row and the others still run. Exit status: 0 when every benchmark ran
(whether or not its budget holds: the table reports that), 1 when any benchmark crashed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "report.json"


def discover():
    """Names of the benchmark modules (``bench_*.py`` beside this file), sorted."""
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _selected(modules, only):
    if not only:
        return modules
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    picked = [m for m in modules if any(w in (m, m.removeprefix("bench_")) for w in wanted)]
    unknown = [w for w in wanted if not any(w in (m, m.removeprefix("bench_")) for m in modules)]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {[m.removeprefix('bench_') for m in modules]}")
    return picked


def run_module(name, quick):
    """The rows of one benchmark module; an error row (with the traceback's last line) if it fails."""
    from bench.common import error_row

    try:
        module = importlib.import_module(f"bench.{name}")
        rows = module.run(quick=quick)
        checked = []
        for r in rows:
            missing = [k for k in ("name", "value", "unit", "peer", "ratio", "budget", "ok") if k not in r]
            if missing:
                raise ValueError(f"row {r!r} lacks {missing}")
            checked.append(r)
        return checked
    except Exception as exc:  # a crash of one benchmark is reported, never stops the run
        tb = traceback.format_exc(limit=-3)
        message = f"{type(exc).__name__}: {exc}"
        print(f"[bench] {name} crashed:\n{tb}", file=sys.stderr)
        return [error_row(f"{name.removeprefix('bench_')}: crashed", message) | {"traceback": tb}]


def main(argv=None):
    """Parse arguments, run the selected benchmarks, print the table, write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: checks the machinery")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only these benchmarks (e.g. rnn, clip, notebooks; repeat or comma-separate)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON report path (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and torch alike (default: $BENCH_THREADS, else 1)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        os.environ["BENCH_THREADS"] = str(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    from bench.common import bench_threads, format_table, json_safe

    modules = _selected(discover(), args.only)
    started = time.time()
    rows = []
    for name in modules:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        module_rows = run_module(name, args.quick)
        for r in module_rows:
            r.setdefault("module", name.removeprefix("bench_"))
        rows.extend(module_rows)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print(format_table(rows))
    crashed = [r for r in rows if r.get("error")]
    failed = [r for r in rows if not r.get("ok") and not r.get("error")]
    print(f"\n{len(rows)} rows: {len(rows) - len(failed) - len(crashed)} within budget or info, "
          f"{len(failed)} over budget, {len(crashed)} crashed.")
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "quick": args.quick,
        "threads": bench_threads(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "processor": platform.processor()},
        "modules": [m.removeprefix("bench_") for m in modules],
        "rows": json_safe(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    print(f"report: {args.out}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
