"""Jobs for tests/test_grader_zygote.py, run in a zygote's forked child (``Zygote.run(entry=...)``)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def leave_state(path):
    """Change module-level state everywhere a job could (a preloaded module, sys.modules, the
    environment, a global of the grader's own code) and record that it did."""
    import numpy

    import autograder.sandbox

    numpy._tg_left_by_a_job = True
    sys.modules["tg_left_by_a_job"] = sys
    os.environ["TG_LEFT_BY_A_JOB"] = "1"
    autograder.sandbox._MODE = "left by a job"
    Path(path).write_text(str(os.getpid()))
    return 0


def sees_state(path):
    """Exit 0 when none of ``leave_state``'s changes is visible here (writes what it saw), 1 otherwise."""
    import numpy

    import autograder.sandbox

    seen = [name for name, there in [
        ("numpy attribute", hasattr(numpy, "_tg_left_by_a_job")),
        ("sys.modules", "tg_left_by_a_job" in sys.modules),
        ("environment", "TG_LEFT_BY_A_JOB" in os.environ),
        ("autograder global", autograder.sandbox._MODE == "left by a job"),
    ] if there]
    Path(path).write_text(",".join(seen))
    return 1 if seen else 0


def crash(_path):
    """Die the way an out-of-memory kill does."""
    print("about to die", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def exit_code(code):
    return int(code)


def preloaded(path):
    """Write whether torch was already imported when the job started (the zygote's preload)."""
    Path(path).write_text("torch" if "torch" in sys.modules else "")
    return 0


def linger(path):
    """Start a grandchild as a sandbox is started (its death signal on this thread), write both pids,
    then wait for a long time."""
    from autograder.sandbox import _die_with_parent

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], preexec_fn=_die_with_parent,
                             start_new_session=True)
    Path(path).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(600)
    return 0


def title(path, *_shown):
    Path(path).write_bytes(Path("/proc/self/cmdline").read_bytes())
    return 0
