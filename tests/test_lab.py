"""``make lab`` works: JupyterLab starts on course/ with the nbgrader and ipywidgets extensions.

The server is started by ``make lab`` itself (the Makefile's command: notebook dir ``course``,
``JUPYTER_CONFIG_PATH`` = autograder/), on a free loopback port with a random token and no browser,
and stopped afterwards.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from browser.lab import (
    COURSE,
    INSTRUCTOR_LAB_PLUGINS,
    INSTRUCTOR_SERVER_EXTENSIONS,
    REQUIRED_LAB_EXTENSIONS,
    REQUIRED_SERVER_EXTENSIONS,
    VENV_BIN,
    start_make_lab,
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``make lab`` on a free port of 127.0.0.1, with a token."""
    server = start_make_lab(tmp_path_factory.mktemp("lab-home"))
    yield server
    server.stop()
    assert server.process.poll() is not None, "jupyter lab is still running after stop()"


def test_api_status_answers(lab):
    """/api/status answers 200 with the server's status, and refuses requests without the token."""
    status = lab.get_json("api/status")
    assert "started" in status and "kernels" in status
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{lab.base_url}/api/contents", timeout=30)
    assert err.value.code == 403


def test_lab_page_serves_course(lab):
    """/lab answers 200, and the server serves the course directory (notebook dir = course/)."""
    status, html = lab.get("lab")
    assert status == 200 and "jupyter-config-data" in html
    listing = lab.get_json("api/contents")
    names = {item["name"] for item in listing["content"]}
    expected = {p.name for p in COURSE.iterdir() if not p.name.startswith(".") and p.name != "__pycache__"}
    assert expected <= names, f"the lab does not serve course/: {sorted(names)}"


@pytest.mark.parametrize("extension", REQUIRED_LAB_EXTENSIONS)
def test_lab_extension_loaded(lab, extension):
    """The lab page loads the extension (page config) and /lab/api/extensions lists it enabled, ok; of its
    plugins only the instructor's are disabled."""
    config = lab.page_config()
    federated = {e["name"] for e in config.get("federated_extensions", [])}
    assert extension in federated, f"{extension} is not in the lab's page config: {sorted(federated)}"
    disabled = config.get("disabledExtensions", [])
    assert not any(d == extension or (d.startswith(extension + ":") and d not in INSTRUCTOR_LAB_PLUGINS)
                   for d in disabled), disabled
    listed = {e["name"]: e for e in lab.get_json("lab/api/extensions")}
    assert extension in listed, f"{extension} missing from /lab/api/extensions: {sorted(listed)}"
    assert listed[extension]["enabled"] and listed[extension]["status"] == "ok", listed[extension]


@pytest.fixture(scope="module")
def server_extension_list(lab) -> str:
    """Output of `jupyter server extension list` in the lab's environment (colours stripped)."""
    out = subprocess.run(
        [str(VENV_BIN / "jupyter"), "server", "extension", "list"],
        env=lab.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


@pytest.mark.parametrize("extension", REQUIRED_SERVER_EXTENSIONS)
def test_nbgrader_server_extension_enabled(lab, server_extension_list, extension):
    """`jupyter server extension list` shows the nbgrader extension enabled and OK; the lab loaded it."""
    text = server_extension_list
    assert re.search(rf"^\s*{re.escape(extension)}\s+enabled\s*$", text, re.M), text
    assert re.search(rf"^\s*{re.escape(extension)}\s+OK\s*$", text, re.M), text
    assert f"{extension} | extension was successfully loaded" in lab.log_path.read_text()


def test_nbgrader_endpoints_answer(lab):
    """The validate extension's version check answers in make lab's server (the Validate button's)."""
    import nbgrader

    version = lab.get_json(f"nbgrader_version?version={nbgrader.__version__}")
    assert version == {"success": True}, version


@pytest.mark.parametrize("extension", INSTRUCTOR_SERVER_EXTENSIONS)
def test_instructor_server_extensions_are_off_in_the_learners_lab(lab, extension):
    """make lab does not load the formgrader, the assignment list or the course list: they need a course
    root and an exchange that a learner's clone does not have (they would show "Error fetching courses")."""
    # (`jupyter server extension list` reads only the user's and the environment's config dirs, not
    # JUPYTER_CONFIG_PATH, so the server's own log is the witness.)
    assert f"{extension} | extension was successfully loaded" not in lab.log_path.read_text()


@pytest.mark.parametrize("path", ["formgrader/manage_assignments", "assignments", "formgrader/api/assignments"])
def test_instructor_pages_do_not_exist_in_the_learners_lab(lab, path):
    """The instructor's pages answer 404 in make lab's server."""
    status, _ = lab.get(path)
    assert status == 404, f"/{path} answered {status} in the learner's lab"


def test_instructor_lab_plugins_are_disabled_in_the_learners_lab(lab):
    """The page config disables nbgrader's instructor plugins (Formgrader, Create Assignment, Assignment List,
    Course List and the Nbgrader menu that opens them); the Validate button's plugin stays on."""
    disabled = lab.page_config().get("disabledExtensions", [])
    for plugin in INSTRUCTOR_LAB_PLUGINS:
        assert plugin in disabled, f"{plugin} is enabled in make lab: {disabled}"
    assert "@jupyter/nbgrader:validate-assignment" not in disabled


def test_lab_never_asks_about_jupyter_news(lab):
    """The course's setting defaults answer JupyterLab's news question (no prompt) and check for nothing."""
    settings = lab.get_json("lab/api/settings/@jupyterlab/apputils-extension:notification")
    defaults = {k: v.get("default") for k, v in settings["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false", defaults  # "none" (undecided) is what makes Lab ask
    assert defaults["checkForUpdates"] is False, defaults
