"""Start ``jupyter lab`` the way ``make lab`` does, headless, on a free loopback port with a token.

The server runs from the project's virtual environment with the course's config path: a learner's lab
``JUPYTER_CONFIG_PATH=<repo>/autograder/learner:<repo>/autograder`` (nbgrader's instructor tools off), an
instructor's ``<repo>/autograder`` (so nbgrader reads the course's ``nbgrader_config.py``); everything it
writes for itself (runtime files, workspaces, user config and data, IPython profile) goes to a temporary
directory, so a test never reads the developer's own Jupyter settings and never writes outside that
directory and the notebook dir.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "autograder"
LEARNER_CONFIG_PATH = os.pathsep.join([str(CONFIG_DIR / "learner"), str(CONFIG_DIR)])
INSTRUCTOR_CONFIG_PATH = str(CONFIG_DIR)
COURSE = ROOT / "course"
SOLUTIONS = ROOT / "solutions"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
VENV_BIN = Path(sys.executable).parent

#: Lab extensions the course needs in the browser: nbgrader's Validate button and ipywidgets.
REQUIRED_LAB_EXTENSIONS = ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager")
#: nbgrader's server extensions in the learner's lab: the Validate button's. The instructor's lab has
#: these and INSTRUCTOR_SERVER_EXTENSIONS, which ``make lab`` turns off (they fail without a course or an
#: exchange: "Error fetching courses").
REQUIRED_SERVER_EXTENSIONS = ("nbgrader.server_extensions.validate_assignment",)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
#: nbgrader's lab plugins that only an instructor's lab shows.
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:menu",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jupyter_env(home: Path, *, config_path: str = LEARNER_CONFIG_PATH, **overrides) -> dict[str, str]:
    """Environment for a Jupyter process: the course's config, the venv first, private user dirs."""
    env = dict(os.environ)
    # A backend forced for headless tests (Agg) would hide the notebooks' inline plots.
    env.pop("MPLBACKEND", None)
    env["JUPYTER_CONFIG_PATH"] = config_path
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_CONFIG_DIR"] = str(home / "config")
    env["JUPYTER_DATA_DIR"] = str(home / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    env["IPYTHONDIR"] = str(home / "ipython")
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@dataclass
class LabServer:
    """A running ``jupyter lab``: its base URL, token, notebook dir, process and log file."""

    base_url: str
    token: str
    notebook_dir: Path
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False, default_factory=dict)

    def url(self, path: str = "lab", **query: str) -> str:
        """Browser URL of ``path`` on this server, with the token in the query string."""
        params = "&".join([f"{k}={v}" for k, v in query.items()] + [f"token={self.token}"])
        return f"{self.base_url}/{path.lstrip('/')}?{params}"

    def get(self, path: str, timeout: float = 30.0) -> tuple[int, str]:
        """GET ``path`` with the token in the Authorization header: (status, body text)."""
        request = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")

    def get_json(self, path: str, timeout: float = 30.0):
        """GET ``path`` and parse the JSON body; fails with the body when the status is not 200."""
        status, body = self.get(path, timeout=timeout)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}: {body[:500]}")
        return json.loads(body)

    def page_config(self) -> dict:
        """The JSON page config that ``/lab`` embeds (federated extensions, settings, ...)."""
        status, html = self.get("lab")
        if status != 200:
            raise AssertionError(f"GET /lab answered {status}")
        marker = 'id="jupyter-config-data" type="application/json">'
        start = html.index(marker) + len(marker)
        return json.loads(html[start : html.index("</script>", start)])

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and the kernels it started (its process group)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        try:  # kernels left behind by the server: same process group, started by us
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _prepare_home(home: Path) -> None:
    """Private, empty Jupyter dirs for a test server: it sees only the course's own settings
    (autograder/jupyter_server_config.py: no news feed or its prompt, no update check)."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


def _launch(cmd, *, cwd, env, log_path, notebook_dir, port, token, timeout) -> tuple[LabServer | None, str]:
    """Start ``cmd``; the server once ``/api/status`` answers, else (None, the log's tail)."""
    log = open(log_path, "wb")  # noqa: SIM115 (the server writes to it until it stops)
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = LabServer(f"http://127.0.0.1:{port}", token, Path(notebook_dir), process, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if server.get("api/status", timeout=5)[0] == 200:
                return server, ""
        except OSError:
            pass
        time.sleep(0.25)
    tail = server.log_tail()
    server.stop()
    return None, tail


def start_lab(
    notebook_dir: Path,
    home: Path,
    *,
    name: str = "lab",
    extra_args: tuple[str, ...] = (),
    env_overrides: dict | None = None,
    config_path: str = LEARNER_CONFIG_PATH,
    timeout: float = 180.0,
) -> LabServer:
    """Start ``jupyter lab`` on ``notebook_dir`` and wait until ``/api/status`` answers.

    ``home`` receives the server's private Jupyter directories; the log goes to
    ``test-artifacts/browser/<name>-server.log``. Retries on another port if the chosen one was taken
    in the meantime. Raises ``RuntimeError`` with the log's tail when the server does not come up.
    """
    _prepare_home(home)
    log_path = ARTIFACTS / f"{name}-server.log"
    env = jupyter_env(home, config_path=config_path, **(env_overrides or {}))
    last_error = ""
    for _attempt in range(3):
        port, token = free_port(), secrets.token_hex(24)
        cmd = [
            str(VENV_BIN / "jupyter"), "lab", "--no-browser",
            f"--notebook-dir={notebook_dir}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            *extra_args,
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        server, last_error = _launch(cmd, cwd=notebook_dir, env=env, log_path=log_path, notebook_dir=notebook_dir,
                                     port=port, token=token, timeout=timeout)
        if server is not None:
            return server
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"jupyter lab did not start (log {log_path}):\n{last_error}")


def start_make_lab(home: Path, *, target: str = "lab", root: Path = ROOT, timeout: float = 180.0) -> LabServer:
    """Run the README's ``make lab`` (or ``make instructor``) itself in ``root`` (on a free port, token from
    ``JUPYTER_TOKEN``, no browser).

    The Makefile's own command line is what starts the server, so the test sees what a learner or an
    instructor gets; the virtual environment's stamp is taken as up to date (``make test`` has just made it).
    """
    _prepare_home(home)
    log_path = ARTIFACTS / f"make-{target}-server.log"
    notebook_dir = root / "course" if target == "lab" else root
    last_error = ""
    for _attempt in range(3):
        port, token = free_port(), secrets.token_hex(24)
        env = jupyter_env(home, JUPYTER_TOKEN=token, BROWSER="true")  # BROWSER: a no-op for webbrowser
        env.pop("JUPYTER_CONFIG_PATH", None)  # the Makefile must set it itself
        cmd = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", target, f"PORT={port}"]
        server, last_error = _launch(cmd, cwd=root, env=env, log_path=log_path, notebook_dir=notebook_dir,
                                     port=port, token=token, timeout=timeout)
        if server is not None:
            # for tools run beside it (`jupyter server extension list`): the same config path as the server's
            server.env = jupyter_env(home, config_path=LEARNER_CONFIG_PATH if target == "lab" else
                                     os.pathsep.join([str(root / "autograder")]))
            return server
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"make {target} did not start (log {log_path}):\n{last_error}")


def fresh_checkout(dest: Path) -> Path:
    """What a fresh clone of the working tree holds: every file git tracks, as it is now (uncommitted edits
    included), nothing ignored or untracked (no ``.nbgrader/``, no gradebook), and the project's ``.venv``
    linked in (a clone would build its own with ``make setup``). Returns ``dest``."""
    import shutil

    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest
