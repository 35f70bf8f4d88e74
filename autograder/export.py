"""``OUT/grades.csv``: one row per learner and assignment, safe to open in a spreadsheet.

No field can be read as a formula or split a row: a field that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice for CSV injection), and every
control character (CR and LF included) becomes a space, so each row is one line. Learner names are
already restricted to ``staging.SAFE_NAME``; this guards every field anyway (statuses quote text a
submission chose).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

CSV_FIELDS = ("learner", "assignment", "score", "max_score", "status")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def cell(value):
    """``value`` as a CSV field no spreadsheet evaluates and no reader splits."""
    text = f"{value + 0.0:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    if text.startswith(FORMULA_START):
        text = "'" + text
    return _CONTROL.sub(" ", text)


def write_csv(out, rows):
    """OUT/grades.csv, written atomically; returns its path."""
    path = Path(out) / "grades.csv"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([cell(row[k]) for k in CSV_FIELDS])
    tmp = path.with_name(f".grades.csv.tmp{os.getpid()}")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return path
