"""nbgrader for an instructor on the workshop hub: the course's own configuration (next on
JUPYTER_CONFIG_PATH, TG_COURSE_ROOT / TG_GRADEBOOK / TG_EXCHANGE set by jupyterhub_config.py) and
nothing more here; the file exists so that this folder's place on the path is explicit."""

c = get_config()  # noqa: F821 (injected by traitlets)
