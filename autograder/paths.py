"""Where things are: one place for the paths every part of the autograder uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
CONFIG_DIR = ROOT / "autograder"
VENV_BIN = Path(sys.executable).parent


def assignments(source=SOLUTIONS):
    """Assignment ids (NN_topic folder names) present in ``source``, in course order."""
    return sorted(p.name for p in Path(source).iterdir() if p.is_dir() and p.name[:2].isdigit())


def notebook_path(assignment, base=SOLUTIONS):
    return Path(base) / assignment / f"{assignment}.ipynb"


def nbgrader_env(**overrides):
    """Environment for running nbgrader: our config, and the venv's bin first on PATH (alembic)."""
    env = dict(os.environ)
    env["JUPYTER_CONFIG_PATH"] = str(CONFIG_DIR)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("MPLBACKEND", "Agg")
    env.update({k: str(v) for k, v in overrides.items()})
    return env
