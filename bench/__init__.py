"""Benchmarks of Taming Gradients: ``python -m bench [--quick] [--only NAME]`` (``make bench``).

Each ``bench/bench_*.py`` module has ``run(quick: bool) -> list[dict]``; a row is
{"name", "value", "unit", "peer", "ratio", "budget", "ok"} (see ``bench.common.row``). Figures are
ratios against a peer timed in the same process, repeats interleaved, medians compared; budgets come
from the design's "Performance budgets". ``bench/README.md`` explains every figure.
"""
