"""Whatever environment grades, the sandbox sees the same course (issue 15, point 6).

A throwaway environment (this venv's packages hard-linked, the heavy ones left out) where gradlab is a
regular install (a copy in site-packages, as ``pip install .`` leaves it) or an editable install of
another checkout; the grader runs from it and a 03 sandbox must not import gradlab.clipping, while
gradlab.training (which 03's cells need) imports. Needs the chroot sandbox (root).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.paths import ROOT
from autograder.sandbox import CHROOT_MODES, detect_mode

pytestmark = pytest.mark.skipif(detect_mode() not in CHROOT_MODES, reason=f"needs the chroot sandbox ({detect_mode()})")
HEAVY = {"torch", "torchgen", "functorch", "tensorflow", "tensorboard", "tensorboard_data_server", "keras",
         "playwright", "scipy", "sympy", "sklearn", "clang", "triton", "jax", "jaxlib"}
DRIVER = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from autograder.sandbox import Sandbox, Limits
sb = Sandbox(sys.argv[2], limits=Limits(cpu_seconds=60), exercises={"clip_by_value", "global_norm"},
             keep=["training.py", "rnn.py", "data.py", "rnn_tools.py"])
probe = ("import json, importlib\nr = {}\nfor m in ('gradlab.clipping', 'gradlab.training'):\n"
         "    try:\n        importlib.import_module(m); r[m] = 'imported'\n"
         "    except Exception as e:\n        r[m] = type(e).__name__\nprint('PROBE' + json.dumps(r))\n")
with sb:
    sb.send({"op": "setup", "cells": [{"label": "probe", "source": probe}]})
    while sb.recv(time.monotonic() + 120).get("op") != "ready":
        pass
    out = sb.cut_output()["stdout"]
print("DRIVER" + out.split("PROBE", 1)[1].splitlines()[0])
'''


def _venv(base, how):
    want = "{}.{}".format(*sys.version_info[:2])
    venv = base / "venv"
    subprocess.run([sys.base_prefix + f"/bin/python{want}", "-m", "venv", "--without-pip", str(venv)], check=True)
    here = Path(sys.prefix) / "lib" / f"python{want}" / "site-packages"
    there = venv / "lib" / f"python{want}" / "site-packages"
    entries = [str(e) for e in sorted(here.iterdir()) if e.name not in HEAVY and not e.name.startswith(
        ("nvidia", "__editable__", "taming_gradients"))]
    subprocess.run(["cp", "-al", "--", *entries, str(there)], check=True)
    if how == "regular":
        shutil.copytree(ROOT / "course" / "gradlab", there / "gradlab", ignore=shutil.ignore_patterns("__pycache__"))
    else:  # an editable install of another checkout: a .pth pointing at its course/
        other = base / "other-checkout" / "course"
        shutil.copytree(ROOT / "course" / "gradlab", other / "gradlab", ignore=shutil.ignore_patterns("__pycache__"))
        (there / "other.pth").write_text(str(other) + "\n")
    return venv / "bin" / "python"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["regular", "editable-other-checkout"])
def test_answer_modules_are_hidden_whatever_the_install(tmp_path, how):
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else tmp_path
    base = Path(__import__("tempfile").mkdtemp(prefix="tg-install-", dir=base))
    try:
        python = _venv(base, how)
        (base / "home").mkdir()
        done = subprocess.run([str(python), "-c", DRIVER, str(ROOT), str(base / "home")], capture_output=True,
                              text=True, timeout=240, cwd=base)
        assert "DRIVER" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        report = json.loads(done.stdout.split("DRIVER", 1)[1].splitlines()[0])
        assert report == {"gradlab.clipping": "ModuleNotFoundError", "gradlab.training": "imported"}, report
    finally:
        shutil.rmtree(base, ignore_errors=True)
