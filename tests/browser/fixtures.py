"""pytest fixtures for the lab and browser tests; a test module imports the ones it uses.

* ``learner_lab``: ``jupyter lab`` on a private copy of ``course/`` (the learner's view, as ``make lab``);
* ``instructor_lab``: the README's ``make instructor``, run in a fresh checkout of the working tree (no
  ``.nbgrader/`` folder, no gradebook: the course's config must make what the formgrader needs);
* ``chromium``: one headless Chromium per module; ``page_for``: a page on a server, recorded so that a
  failure leaves a screenshot and the console log in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib

import pytest

from .lab import LabServer, fresh_checkout, start_lab, start_make_lab
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
    """``make instructor`` in a fresh checkout: its notebook dir is the checkout's root."""
    require_browser()
    root = fresh_checkout(tmp_path_factory.mktemp("instructor"))
    assert not (root / ".nbgrader").exists()
    server = start_make_lab(tmp_path_factory.mktemp("instructor-home"), target="instructor", root=root)
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
