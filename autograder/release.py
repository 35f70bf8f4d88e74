"""``make release``: regenerate course/ from solutions/ with nbgrader generate_assignment.

Every assignment folder in solutions/ is released; the written notebooks are then rewritten in the
canonical form of ``autograder.notebooks`` (no outputs, stable ids, sorted keys), so that a second
release of unchanged sources is byte-identical and ``check`` can compare files.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import notebooks
from .paths import COURSE, ROOT, SOLUTIONS, assignments, nbgrader_env, notebook_path


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
            notebooks.normalize(notebook_path(assignment, Path(source_root) / "solutions"))
            cmd = ["nbgrader", "generate_assignment", assignment, "--force"]
            if quiet:
                cmd.append("--log-level=WARN")
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stdout}{proc.stderr}")
            for nb_path in sorted((into / assignment).glob("*.ipynb")):
                notebooks.normalize(nb_path)
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
