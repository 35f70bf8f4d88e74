"""The course kernel (autograder/kernel.py): what it reports, and that the course's servers start it (issue 16.8).

JupyterLab copies the kernel's ``language_info`` into a notebook's metadata and marks the notebook modified
when it differs from the file; the course kernel reports the Python version as the release writes it, on any
3.11.x. The browser check of the same claim is tests/test_lab_untouched.py.
"""

from __future__ import annotations

import json
import sys
import tomllib

import pytest
from jupyter_client.manager import KernelManager

from autograder.kernel import CourseKernelSpecManager, kernel_argv, language_version
from autograder.paths import ROOT
from autograder.release import LAB_METADATA


@pytest.mark.parametrize("version_info", [(3, 11, 2, "final", 0), (3, 11, 7, "final", 0), (3, 11, 9, "final", 0)])
def test_every_supported_python_reports_what_the_release_writes(version_info):
    """Debian's 3.11.2 (the workshop hub), 3.11.7 (this project's machines) and a laptop's 3.11.9 all say 3.11."""
    assert language_version(version_info) == LAB_METADATA["language_info"]["version"] == "3.11"


def test_the_release_version_is_the_pinned_precision():
    """requires-python pins major.minor; the written version is exactly that, so no supported Python differs."""
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert pinned == f"=={LAB_METADATA['language_info']['version']}.*"


def test_the_course_servers_use_the_course_kernel():
    """make lab / make instructor / the tests (autograder/) and the hub's learners (workshop/config/learner)."""
    assert 'c.ServerApp.kernel_spec_manager_class = "autograder.kernel.CourseKernelSpecManager"' in (
        ROOT / "autograder" / "jupyter_server_config.py").read_text()
    learner = json.loads((ROOT / "workshop" / "config" / "learner" / "jupyter_server_config.json").read_text())
    assert learner["ServerApp"]["kernel_spec_manager_class"] == "autograder.kernel.CourseKernelSpecManager"


@pytest.fixture
def foreign_python3(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that points at some other Python, first on the kernel path (a learner's own
    ``ipykernel install --user`` from another environment)."""
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return spec


def test_python3_starts_the_course_kernel_with_the_servers_python(foreign_python3):
    manager = CourseKernelSpecManager()
    assert manager.find_kernel_specs()["python3"] == str(foreign_python3)  # the foreign spec is the one found
    spec = manager.get_kernel_spec("python3")
    assert spec.argv == kernel_argv() == [sys.executable, "-m", "autograder.kernel", "-f", "{connection_file}"]
    assert spec.display_name == LAB_METADATA["kernelspec"]["display_name"]


def test_the_kernel_replies_with_the_released_language_info(tmp_path, foreign_python3):
    """A real kernel, started as the course's servers start it, from a folder holding a learner file named
    like a module the kernel imports while it loads (``ipykernel.py``): it still starts, and its info reply's
    language_info is exactly the released notebooks' metadata."""
    folder = tmp_path / "notebook_folder"
    folder.mkdir()
    (folder / "ipykernel.py").write_text("raise SystemExit('the learner file was imported')\n")
    km = KernelManager(kernel_name="python3", kernel_spec_manager=CourseKernelSpecManager())
    km.start_kernel(cwd=str(folder))
    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.kernel_info(reply=True, timeout=30)["content"]
        assert reply["language_info"] == LAB_METADATA["language_info"]
        msg_id = client.execute("import sys, os; print(sys.executable, os.getcwd())")
        out = ""
        while True:
            msg = client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert out.split() == [sys.executable, str(folder)]
        client.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
