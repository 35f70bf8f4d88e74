"""``make release``: regenerate course/ from solutions/ with nbgrader generate_assignment.

Every assignment folder in solutions/ is released; the written notebooks are then rewritten in the
canonical form of ``autograder.notebooks`` (no outputs, stable ids, sorted keys), so that a second
release of unchanged sources is byte-identical and ``check`` can compare files.

Every notebook (source and release) also carries the notebook metadata JupyterLab itself writes once a
Python kernel has started (``LAB_METADATA``: the kernelspec and ipykernel's ``language_info``), so that
an untouched notebook opens unmodified and saving it changes nothing (tests/test_lab_untouched.py checks
this in the browser) on every Python 3.11.x: the course's servers run ``autograder.kernel``, which reports
the version as ``3.11``.
"""

from __future__ import annotations

import copy
import filecmp
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import notebooks
from .paths import COURSE, ROOT, SOLUTIONS, assignments, nbgrader_env, notebook_path

#: What JupyterLab puts in a notebook's metadata once an ipykernel Python 3 kernel is connected: it takes
#: ``language_info`` from the kernel's info reply, and marks the notebook modified when that differs from the
#: file's (JupyterLab 4.6 compares the values). ``version`` is what the course kernel reports
#: (``autograder.kernel.language_version``: major.minor, the precision of ``requires-python``).
LAB_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": "3.11",
    },
}


def normalize(path):
    """``notebooks.normalize`` plus ``LAB_METADATA``: the canonical form a release writes."""
    nb = notebooks.read(path)
    metadata = nb.setdefault("metadata", {})
    changed = any(metadata.get(key) != value for key, value in LAB_METADATA.items())
    if changed:
        metadata.update(copy.deepcopy(LAB_METADATA))
        notebooks.write(nb, path)
    return notebooks.normalize(path) or changed


def release(into=COURSE, *, source_root=ROOT, quiet=False):
    """Release every assignment of ``source_root``/solutions into ``into``; returns the assignment ids."""
    into = Path(into).resolve()
    ids = assignments(Path(source_root) / "solutions")
    if not ids:
        raise SystemExit(f"no assignment folders (NN_topic) found in {Path(source_root) / 'solutions'}")
    with tempfile.TemporaryDirectory(prefix="tg-release-") as tmp:
        env = nbgrader_env(TG_COURSE_ROOT=source_root, TG_RELEASE_DIR=into,
                           TG_GRADEBOOK=Path(tmp) / "gradebook.db")
        for assignment in ids:
            # canonicalise the source first, so authors never commit outputs or missing ids
            normalize(notebook_path(assignment, Path(source_root) / "solutions"))
            cmd = ["nbgrader", "generate_assignment", assignment, "--force"]
            if quiet:
                cmd.append("--log-level=WARN")
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stdout}{proc.stderr}")
            for nb_path in sorted((into / assignment).glob("*.ipynb")):
                normalize(nb_path)
    return ids


def differences(released, expected):
    """Relative paths of released notebooks that differ between two release folders."""
    diffs = []
    for assignment in assignments(SOLUTIONS):
        for path in sorted((Path(expected) / assignment).glob("*.ipynb")):
            rel = path.relative_to(expected)
            other = Path(released) / rel
            if not other.exists() or not filecmp.cmp(path, other, shallow=False):
                diffs.append(str(rel))
        for path in sorted((Path(released) / assignment).glob("*.ipynb")):
            if not (Path(expected) / path.relative_to(released)).exists():
                diffs.append(f"{path.relative_to(released)} (not produced by a release)")
    return diffs


def check(course=COURSE):
    """Release into a temporary folder and list what differs from ``course`` (empty: in sync)."""
    with tempfile.TemporaryDirectory(prefix="tg-check-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SOLUTIONS, src / "solutions")
        release(Path(tmp) / "course", source_root=src, quiet=True)
        return differences(course, Path(tmp) / "course")
