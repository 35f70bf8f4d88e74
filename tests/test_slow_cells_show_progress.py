"""Every cell that keeps a learner waiting more than about 3 s shows a tqdm.auto progress bar (issue 16.8).

Which cells are slow is read from the course's stored cell-time run, tools/instructor_cell_times.json
(``python tools/instructor_guide.py --measure NN_topic`` writes it: each code cell's wall seconds, with the
machine's load average and core count). A run on a shared machine is slower than a learner's quiet 2-core
laptop by about the load per core, so a cell's time on a quiet machine is estimated as
``seconds * min(1, cores / load)`` (checked against CPU-time runs: 03's training cell 38.6 s at load 8.4 ->
9 s estimated, 5.5 CPU-s; 05's CNN cell 22.3 s at load 11 -> 4.1 s, 4.9 CPU-s).

Two kinds of cells are exempt, by what they are: the ``setup`` cell (imports: nothing to count) and graded
test cells (a learner runs only their visible part; the hidden part, which is what takes time there, runs
when the grader does). Bars must come from ``tqdm.auto`` (a widget in JupyterLab; plain tqdm writes to
stderr, which nbgrader scores as 0), directly or through gradlab's ``progress=`` / ``tm.ProgressBar``, whose
bars reach their end when a run stops early (tests/test_gradlab_training.py, tests/test_progress.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autograder.notebooks import is_test
from autograder.paths import assignments, notebook_path

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "tools" / "instructor_cell_times.json"
SLOW_S = 3.0
EXEMPT_IDS = {"setup"}
#: A bar shown by the cell: tqdm.auto itself, gradlab's trainers' progress=, or notebook 06's Keras callback.
BAR = re.compile(r"\btqdm\(|\bprogress=(?!False|None)|\bProgressBar\(")
PLAIN_TQDM = re.compile(r"^\s*(from tqdm import|import tqdm\b)(?!\.auto)", re.MULTILINE)


def _stored():
    if not STORED.exists():
        pytest.skip(f"no stored cell-time run ({STORED.relative_to(ROOT)})")
    return json.loads(STORED.read_text())


def quiet_seconds(seconds, load, cores):
    """A cell's estimated time on a quiet machine with ``cores`` cores, from a run at ``load``."""
    return seconds * min(1.0, cores / load) if load and cores else seconds


def _source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def test_the_estimate_and_the_patterns():
    assert quiet_seconds(40.0, 8.0, 2) == 10.0 and quiet_seconds(4.0, 1.0, 2) == 4.0
    assert BAR.search("for x in tqdm(range(3)):") and BAR.search("train(p, X, y, progress=bar)")
    assert BAR.search("callbacks=[tm.ProgressBar(total)]") and not BAR.search("train(p, X, y, progress=False)")
    assert PLAIN_TQDM.search("from tqdm import tqdm") and not PLAIN_TQDM.search("from tqdm.auto import tqdm")


@pytest.mark.parametrize("assignment", [a for a in assignments() if notebook_path(a).exists()])
def test_slow_cells_show_a_progress_bar(assignment):
    stored = _stored().get(assignment)
    if stored is None:
        pytest.skip(f"{assignment} has no stored cell times (python tools/instructor_guide.py --measure {assignment})")
    nb = json.loads(notebook_path(assignment).read_text())
    missing = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or cell.get("id") in EXEMPT_IDS or is_test(cell):
            continue
        seconds = stored["cells"].get(cell.get("id"))
        if seconds is None:
            continue
        quiet = quiet_seconds(seconds, stored.get("load"), stored.get("cores"))
        source = _source(cell)
        assert not PLAIN_TQDM.search(source), f"{assignment} {cell['id']}: use tqdm.auto, not plain tqdm (stderr)"
        if quiet > SLOW_S and not BAR.search(source):
            missing.append(f"{cell['id']} (about {quiet:.0f} s; {seconds:.1f} s at load {stored.get('load')})")
    assert not missing, f"{assignment}: these cells run for more than {SLOW_S:g} s without a progress bar: {missing}"
