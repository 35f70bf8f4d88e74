"""Notebook 06 imports TensorFlow, trains Keras models and logs to TensorBoard, yet prints nothing to stderr.

Anything on stderr in a graded cell scores 0 under nbgrader, and a learner should see no TensorFlow log
lines or warnings at all. The solution notebook is executed in a kernel whose environment does NOT
pre-set ``TF_CPP_MIN_LOG_LEVEL``, ``TF_ENABLE_ONEDNN_OPTS`` or ``PYTHONWARNINGS`` (as in a learner's
JupyterLab): the notebook must silence TensorFlow itself. That execution is nbgrader autograde's, shared
with tests/test_notebooks.py (the session's ``autograded_course``, whose kernels run in that environment).
Then the notebook is executed again without its ``slow`` cells, as the class grader runs it: every
graded cell must still pass.
"""

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.notebooks import is_slow, is_test
from autograder.paths import SOLUTIONS

pytestmark = pytest.mark.slow

NOTEBOOK = SOLUTIONS / "06_tensorflow_keras" / "06_tensorflow_keras.ipynb"
# absl/glog lines ("W0000 00:00:..."), TensorFlow's Python logger, Python warnings, retracing notices
LOG_LINE = re.compile(
    r"^[IWEF]\d{4} |WARNING|Warning:|oneDNN|absl::|tensorflow/|retracing|Traceback", re.MULTILINE)


def _execute(nb, monkeypatch):
    for var in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "PYTHONWARNINGS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()


def _problems(nb):
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append((cell.id, f"error {out.ename}: {out.evalue[:200]}"))
            elif out.output_type == "stream":
                if out.name == "stderr":
                    problems.append((cell.id, f"stderr: {out.text[:300]!r}"))
                elif LOG_LINE.search(out.text):
                    problems.append((cell.id, f"log line on stdout: {LOG_LINE.search(out.text).group(0)!r}"))
    return problems


@pytest.fixture(scope="module")
def executed(autograded_course):
    """The solution as nbgrader autograde executed it (every cell, slow ones included)."""
    from nbgrader_course import UNSET

    assert {"TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "PYTHONWARNINGS"} <= set(UNSET)
    # through nbformat's reader: the file stores multi-line text as lists of lines
    return nbformat.reads(json.dumps(autograded_course[NOTEBOOK.parent.name][2]), as_version=4)


def test_no_stderr_no_tensorflow_log_line_no_error(executed):
    """Every cell of the executed solution runs without error, stderr output or TensorFlow log lines."""
    nb = executed
    assert not _problems(nb), _problems(nb)


def test_every_experiment_ran(executed):
    """The asserted experiment cells (regression, literal powers, explosion, TensorBoard) ran and printed results."""
    nb = executed
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
               for c in nb.cells if c.cell_type == "code"}
    assert "Invalid loss, terminating training" in outputs["explode-runs"]   # TerminateOnNaN fired
    assert "p=7 clipvalue=3" in outputs["literal-power"]
    assert "11 training and 2 test targets" in outputs["literal-power"]
    assert "held-out" in outputs["explode-runs"] and "untrained" in outputs["explode-runs"]
    assert "first NaN loss at step" in outputs["tensorboard"]
    assert "test accuracy" in outputs["custom-loop"] and "test accuracy" in outputs["keras-digits"]


def test_graded_cells_pass_without_slow_cells(monkeypatch):
    """With every `slow` cell removed (as the grader runs it), all graded cells still pass, quietly."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = [c for c in nb.cells if not is_slow(c)]
    assert sum(is_test(c) for c in nb.cells) >= 6
    _execute(nb, monkeypatch)
    assert not _problems(nb), _problems(nb)
