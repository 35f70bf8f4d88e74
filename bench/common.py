"""Timing helpers shared by the benchmarks: rows, interleaved medians, thread settings, machine speed.

Every figure the benchmarks print is a ratio against a peer measured in the same process, with the
repeats of the candidate and the peer interleaved (A, B, A, B, ...) and the medians compared: on a
shared 2-core machine absolute times drift by 2x within a minute, but a ratio taken this way holds.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable

ROW_KEYS = ("name", "value", "unit", "peer", "ratio", "budget", "ok")


def row(name, value, unit, *, peer=None, ratio=None, budget="info", ok=True, **extra):
    """One report row: the contract's seven keys (plus optional extra keys such as ``note``)."""
    out = {
        "name": str(name),
        "value": float(value),
        "unit": str(unit),
        "peer": None if peer is None else str(peer),
        "ratio": None if ratio is None else float(ratio),
        "budget": str(budget),
        "ok": bool(ok),
    }
    out.update(extra)
    return out


def error_row(name, message, *, skipped=False):
    """A row saying a benchmark could not run: ``skipped`` (what it needs is absent) or an error."""
    key = "skipped" if skipped else "error"
    return row(name, math.nan, "", budget="skipped" if skipped else "error", ok=skipped, **{key: str(message)})


def median(values):
    """The median of a non-empty sequence of numbers."""
    return float(statistics.median(values))


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, setup=None):
    """Time each callable ``repeats`` times, alternating between them; returns {name: [seconds, ...]}.

    ``warmup`` untimed rounds run first (caches, lazy imports, allocator). ``setup(name)``, when given,
    runs untimed before every call (e.g. to restore inputs a call modified in place). The order of the
    callables is rotated every round so that none always runs right after the same neighbour.
    """
    names = list(fns)
    times = {name: [] for name in names}
    for r in range(warmup + repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if setup is not None:
                setup(name)
            t0 = time.perf_counter()
            fns[name]()
            elapsed = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(elapsed)
    return times


def bench_threads():
    """The thread count every benchmark gives NumPy's BLAS and torch alike: $BENCH_THREADS, else 1.

    One thread by default: on a machine shared with other work (or a 2-core laptop running a browser)
    a second BLAS thread that gets descheduled makes every product wait for it, and timings swing by
    2-10x; with one thread each, the ratios hold. ``python -m bench --threads 2`` measures with two.
    """
    value = os.environ.get("BENCH_THREADS")
    return max(1, int(value)) if value else 1


@contextlib.contextmanager
def same_threads(n=None):
    """Run NumPy's BLAS and torch (intra-op) with the same number of threads, restored afterwards."""
    from threadpoolctl import threadpool_limits

    n = bench_threads() if n is None else n
    torch = None
    with contextlib.suppress(ImportError):
        import torch
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield n
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def thread_counts():
    """What NumPy's BLAS (threadpoolctl's view) and torch (``get_num_threads``) run with right now."""
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    out = {"numpy_blas": counts[0] if counts else None}
    with contextlib.suppress(ImportError):
        import torch

        out["torch"] = torch.get_num_threads()
    return out


def threads_label(n):
    """'1 thread' / '2 threads'."""
    return f"{n} thread" + ("" if n == 1 else "s")


def reference_workload(quick=False):
    """Seconds for a fixed NumPy workload (float64 matrix products): a yardstick of machine speed.

    About 0.3 s on one core of a 2020s laptop; run before and after something that cannot have a peer
    of its own (a whole notebook) so that its time can also be read in these units.
    """
    import numpy as np

    n, reps = (128, 4) if quick else (384, 24)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    out = np.empty((n, n))
    t0 = time.perf_counter()
    for _ in range(reps):
        np.matmul(a, b, out=out)
        np.tanh(out, out=out)
    return time.perf_counter() - t0


def _fmt(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows):
    """The rows as a fixed-width text table: name, value, unit, peer, ratio, budget, ok."""
    header = ("name", "value", "unit", "peer", "ratio", "budget", "ok")
    lines = []
    for r in rows:
        ok = "ok" if r.get("ok") else "FAIL"
        if r.get("error"):
            ok = "ERROR"
        elif r.get("skipped"):
            ok = "skip"
        peer = r.get("peer") or r.get("error") or r.get("skipped") or "-"
        lines.append((r["name"], _fmt(r.get("value")), r.get("unit") or "", peer, _fmt(r.get("ratio")),
                      r.get("budget") or "", ok))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    widths[3] = min(widths[3], 60)

    def fmt_line(cells):
        cells = list(cells)
        if len(cells[3]) > widths[3]:
            cells[3] = cells[3][: widths[3] - 1] + "…"
        return "  ".join(str(c).ljust(w) if i in (0, 2, 3, 5) else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [fmt_line(header), fmt_line("-" * w for w in widths)]
    out.extend(fmt_line(line) for line in lines)
    return "\n".join(out)


def json_safe(rows):
    """The rows with non-finite floats replaced by None, so that the report is strict JSON."""
    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return [{k: clean(v) for k, v in r.items()} for r in rows]
