"""Shared pytest setup: the repository root on sys.path, quiet TensorFlow, a headless matplotlib."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JUPYTER_CONFIG_PATH", str(ROOT / "autograder"))
# nbgrader calls alembic: the venv's bin must be on PATH even when pytest is called directly.
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

import pytest  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


@pytest.fixture(scope="session")
def autograded_course(request, tmp_path_factory):
    """Every assignment autograded by nbgrader (solution and untouched release), once per session, on first use.

    ``autograded_course[assignment]`` is ``(scores, log, autograded solution notebook, plot audit entries)``;
    see tests/fixtures/nbgrader_course.py. Shared by tests/test_notebooks.py and tests/test_notebook_06_quiet.py.
    The assignments that the session's parametrized tests will ask for are queued at once, longest first,
    so that the workers stay busy whichever test asks first.
    """
    from nbgrader_course import AutogradedCourse, longest_first

    course = AutogradedCourse(tmp_path_factory.mktemp("nbgrader-course"))
    wanted = {item.callspec.params["assignment"] for item in request.session.items
              if "autograded_course" in getattr(item, "fixturenames", ())
              and "assignment" in getattr(getattr(item, "callspec", None), "params", {})}
    course.prefetch(longest_first(wanted))
    yield course
    course.close()


@pytest.fixture
def recording(monkeypatch):
    """Every tqdm.auto bar made during the test, as RecordingBar objects (tests/fixtures/progress.py)."""
    import tqdm.auto

    from tests.fixtures.progress import RecordingBar

    RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    return RecordingBar.made
