"""JupyterHub configuration of a Taming Gradients workshop on one machine (`make hub`).

PAM login for the accounts of the roster (workshop/accounts.py made them), one JupyterLab per user run
as that user by the local-process spawner, from the course's environment in TG_HUB_PREFIX (readable by
all), configurable-http-proxy from there, everything on 127.0.0.1. Learners get the Assignments tab
(fetch, submit, fetch feedback) and no instructor tools; instructors get the Formgrader (open it in its
own browser tab: /user/<instructor>/formgrader, see docs/WORKSHOP.md) with their course directory
~/taming-gradients. Ports and paths come from the environment (TG_HUB_*), so a test can run its own hub.
"""

import os
import pwd
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roster import read_roster  # noqa: E402

c = get_config()  # noqa: F821 (injected by traitlets)

PREFIX = os.environ.get("TG_HUB_PREFIX", "/opt/taming-gradients")
STATE = os.environ.get("TG_HUB_STATE", "/srv/taming-gradients")
EXCHANGE = os.environ.get("TG_HUB_EXCHANGE", "/srv/nbgrader/exchange")
IP = os.environ.get("TG_HUB_IP", "127.0.0.1")
PORT = int(os.environ.get("TG_HUB_PORT", "8000"))
HUB_API_PORT = int(os.environ.get("TG_HUB_API_PORT", "8081"))
PROXY_API_PORT = int(os.environ.get("TG_HUB_PROXY_API_PORT", "8001"))

members = read_roster(os.environ.get("TG_HUB_ROSTER", os.path.join(STATE, "roster.csv")))
INSTRUCTORS = {m.username for m in members if m.role == "instructor"}

c.JupyterHub.ip = IP
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_API_PORT
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.command = [os.path.join(PREFIX, "node", "bin", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(STATE, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(STATE, "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True

c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {m.username for m in members}
# Nobody is a hub admin: an instructor reaches learners' work through nbgrader's exchange, not their servers.
c.Authenticator.admin_users = set()

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(PREFIX, "venv", "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def _environment(spawner):
    name = spawner.user.name
    home = pwd.getpwnam(name).pw_dir
    env = {
        "PATH": os.path.join(PREFIX, "venv", "bin") + ":/usr/local/bin:/usr/bin:/bin",
        "TG_EXCHANGE": EXCHANGE,
        # /etc/profile.d/taming-gradients.sh puts it back first on PATH in login shells (Lab terminals).
        "TG_COURSE_BIN": os.path.join(PREFIX, "venv", "bin"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
    }
    if name in INSTRUCTORS:
        course = os.path.join(home, "taming-gradients")
        # The course's own nbgrader_config.py (a copy in PREFIX/src), pointed at the instructor's directory.
        env |= {"JUPYTER_CONFIG_PATH": f"{PREFIX}/etc/instructor:{PREFIX}/src/autograder",
                "TG_COURSE_ROOT": course, "TG_GRADEBOOK": os.path.join(course, "gradebook.db")}
    else:
        env |= {"JUPYTER_CONFIG_PATH": f"{PREFIX}/etc/learner"}
    return env


c.Spawner.pre_spawn_hook = lambda spawner: spawner.environment.update(_environment(spawner))
