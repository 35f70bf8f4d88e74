"""Start ``jupyter lab`` the way ``make lab`` does, headless, on a free loopback port with a token.

The server runs from the project's virtual environment with ``JUPYTER_CONFIG_PATH=<repo>/autograder``
(so nbgrader reads the course's ``nbgrader_config.py``); everything it writes for itself (runtime files,
workspaces, user config and data, IPython profile) goes to a temporary directory, so a test never reads
the developer's own Jupyter settings and never writes outside that directory and the notebook dir.
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
COURSE = ROOT / "course"
SOLUTIONS = ROOT / "solutions"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
VENV_BIN = Path(sys.executable).parent

#: Lab extensions the course needs in the browser: nbgrader's Validate button and ipywidgets.
REQUIRED_LAB_EXTENSIONS = ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager")
#: nbgrader's server extensions (formgrader for the instructor, validate for the learner's button).
REQUIRED_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
)
#: JupyterLab user settings (written to the private config dir): do not ask whether to fetch news,
#: a toast that would cover part of the notebook.
OFFLINE_LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jupyter_env(home: Path, **overrides) -> dict[str, str]:
    """Environment for a Jupyter process: the course's config, the venv first, private user dirs."""
    env = dict(os.environ)
    # A backend forced for headless tests (Agg) would hide the notebooks' inline plots.
    env.pop("MPLBACKEND", None)
    env["JUPYTER_CONFIG_PATH"] = str(CONFIG_DIR)
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
    """Private Jupyter dirs for a test server. (The course's own config, autograder/jupyter_server_config.json,
    already keeps the lab offline: no news feed, no update check, a read-only extension manager.)"""
    (home / "config").mkdir(parents=True, exist_ok=True)
    for plugin, settings in OFFLINE_LAB_SETTINGS.items():
        package, _, plugin_name = plugin.partition(":")
        path = home / "config" / "lab" / "user-settings" / package / f"{plugin_name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
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
    timeout: float = 180.0,
) -> LabServer:
    """Start ``jupyter lab`` on ``notebook_dir`` and wait until ``/api/status`` answers.

    ``home`` receives the server's private Jupyter directories; the log goes to
    ``test-artifacts/browser/<name>-server.log``. Retries on another port if the chosen one was taken
    in the meantime. Raises ``RuntimeError`` with the log's tail when the server does not come up.
    """
    _prepare_home(home)
    log_path = ARTIFACTS / f"{name}-server.log"
    env = jupyter_env(home, **(env_overrides or {}))
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


def start_make_lab(home: Path, *, timeout: float = 180.0) -> LabServer:
    """Run the README's ``make lab`` itself (on a free port, token from ``JUPYTER_TOKEN``, no browser).

    The Makefile's own command line is what starts the server, so the test sees what a learner gets;
    the virtual environment's stamp is taken as up to date (``make test`` has just made it).
    """
    _prepare_home(home)
    log_path = ARTIFACTS / "make-lab-server.log"
    last_error = ""
    for _attempt in range(3):
        port, token = free_port(), secrets.token_hex(24)
        env = jupyter_env(home, JUPYTER_TOKEN=token, BROWSER="true")  # BROWSER: a no-op for webbrowser
        env.pop("JUPYTER_CONFIG_PATH", None)  # the Makefile must set it itself
        cmd = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "lab", f"PORT={port}"]
        server, last_error = _launch(cmd, cwd=ROOT, env=env, log_path=log_path, notebook_dir=COURSE,
                                     port=port, token=token, timeout=timeout)
        if server is not None:
            server.env = jupyter_env(home)  # for tools run beside it (`jupyter server extension list`)
            return server
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(f"make lab did not start (log {log_path}):\n{last_error}")
