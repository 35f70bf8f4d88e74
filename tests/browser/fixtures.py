"""pytest fixtures for the lab and browser tests; a test module imports the ones it uses.

* ``learner_lab``: ``jupyter lab`` on a private copy of ``course/`` (the learner's view, as ``make lab``);
* ``instructor_lab``: ``jupyter lab`` on a private course root (``solutions/`` + ``course/``, its own
  gradebook), so nbgrader's formgrader finds the course (its root must lie inside the notebook dir);
* ``chromium``: one headless Chromium per module; ``page_for``: a page on a server, recorded so that a
  failure leaves a screenshot and the console log in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib

import pytest

from .lab import LabServer, start_lab
from .notebooks import copy_course_tree
from .ui import PageRecorder, launch_chromium, require_browser


@pytest.fixture(scope="module")
def learner_lab(tmp_path_factory) -> LabServer:
    """A lab serving a temporary copy of course/ (notebook dir = course, like ``make lab``)."""
    require_browser()  # no server to start when the browser tests are skipped
    root = copy_course_tree(tmp_path_factory.mktemp("learner"))
    server = start_lab(root / "course", root / "home", name="learner")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory) -> LabServer:
    """A lab whose notebook dir is a temporary course root, with nbgrader pointed at it."""
    require_browser()
    root = copy_course_tree(tmp_path_factory.mktemp("instructor"), with_solutions=True)
    (root / ".nbgrader").mkdir()
    server = start_lab(
        root,
        root.parent / f"{root.name}-home",
        name="instructor",
        env_overrides={"TG_COURSE_ROOT": root, "TG_GRADEBOOK": root / ".nbgrader" / "gradebook.db"},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    """A headless Debian Chromium driven by Playwright (skipped or failed when missing)."""
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        with contextlib.suppress(Exception):
            browser.close()


@pytest.fixture
def page_for(chromium):
    """Factory: ``page_for(server)`` opens a fresh browser context and page, recorded for evidence."""
    contexts = []

    def make(server: LabServer | None = None) -> PageRecorder:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        contexts.append(context)
        return PageRecorder(context.new_page(), server)

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
