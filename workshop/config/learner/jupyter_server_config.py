"""A hub learner's JupyterLab: the course's JupyterLab setting defaults (never ask whether to fetch
news), from the course files workshop/setup.sh copies into PREFIX/src. This file lies in
PREFIX/etc/learner; jupyter_server_config.json beside it holds the rest."""

import os

c = get_config()  # noqa: F821 (injected by traitlets)

PREFIX = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
c.LabApp.app_settings_dir = os.path.join(PREFIX, "src", "autograder", "lab_settings")
