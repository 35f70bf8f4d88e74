"""Jupyter server settings for every lab of the course (``make lab``, ``make instructor``, the tests).

Offline: no update check, no news feed, a read-only extension manager. ``app_settings_dir`` holds the
course's JupyterLab setting defaults (``lab_settings/overrides.json``: never ask whether to fetch
news). Notebooks run the course kernel (``autograder.kernel``: ipykernel reporting Python as ``3.11``, as
the release writes it, so an untouched notebook opens unmodified). The learner's lab adds
``autograder/learner/`` to ``JUPYTER_CONFIG_PATH``, which turns nbgrader's instructor tools off there.
"""

import os

c = get_config()  # noqa: F821 (injected by traitlets)

c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
c.LabApp.news_url = None
c.LabApp.app_settings_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab_settings")
c.ServerApp.kernel_spec_manager_class = "autograder.kernel.CourseKernelSpecManager"
