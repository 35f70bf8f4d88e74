"""An untouched notebook opens in JupyterLab unmodified, and saving it changes nothing (issue 16.8).

A learner who opens a released notebook and closes it again must not be asked to save changes they never
made, and ``git status`` of their clone must stay clean after a save. JupyterLab fills in the notebook's
metadata (the kernelspec and ipykernel's ``language_info``) once the kernel is connected; the release
writes those already (``autograder.release.LAB_METADATA``). JupyterLab marks the notebook modified when the
kernel's values differ from the file's; the course's servers run ``autograder.kernel``, which reports the
Python version as ``3.11`` (ipykernel reports 3.11.x exactly), the value the release writes, so this holds on
every Python the course supports (tests/test_kernel.py checks the kernel itself; the workshop test opens a
notebook on the hub's Debian Python). Also: no "Jupyter news" prompt appears (autograder/jupyter_server_config.py
turns the feed off).

Each released notebook is opened in the learner's lab (a temporary copy of course/), its tab is checked for
JupyterLab's modified mark after the kernel is idle, then it is saved and compared with the released file.
"""

from __future__ import annotations

import json
import time

import pytest
from browser.fixtures import chromium, learner_lab, page_for  # noqa: F401 (fixtures)
from browser.notebooks import released_notebooks
from browser.ui import DIRTY_TABS, SLOW_MS, TOASTS, active_panel, open_notebook

from autograder.release import LAB_METADATA

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]



def _comparable(nb):
    """``nb`` with every cell source as one string (either form is valid)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def test_release_metadata_is_what_lab_writes():
    """The constant the release writes holds every key JupyterLab fills in from ipykernel."""
    info = LAB_METADATA["language_info"]
    assert {"codemirror_mode", "file_extension", "mimetype", "name", "nbconvert_exporter", "pygments_lexer",
            "version"} <= set(info)
    for path in released_notebooks():
        meta = json.loads(path.read_text())["metadata"]
        assert meta.get("kernelspec") == LAB_METADATA["kernelspec"], path.name
        assert meta.get("language_info") == info, path.name


def test_untouched_notebooks_open_unmodified_and_save_unchanged(learner_lab, page_for):  # noqa: F811
    """Every released notebook: not marked modified once its kernel is idle, no news prompt, and a save
    rewrites it with nothing changed (the kernel's language_info included)."""
    course = learner_lab.notebook_dir
    paths = released_notebooks(course)
    assert paths, "no released notebooks to open"
    recorder = page_for(learner_lab)
    page = recorder.page
    problems = []
    with recorder.evidence_on_failure("untouched_notebooks"):
        for path in paths:
            rel = str(path.relative_to(course))
            released = json.loads(path.read_text())
            open_notebook(page, learner_lab, rel)
            time.sleep(2.0)  # metadata from the kernel's info reply arrives after "idle"
            dirty = page.evaluate(DIRTY_TABS)
            if dirty:
                problems.append(f"{rel}: marked modified right after opening ({dirty})")
            news = [t for t in page.evaluate(TOASTS) if "news" in t.lower()]
            if news:
                problems.append(f"{rel}: a news prompt appeared: {news}")
            before = path.stat().st_mtime_ns
            active_panel(page).locator(".jp-Cell").first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("Control+s")
            deadline = time.monotonic() + SLOW_MS / 1000
            while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
                time.sleep(0.25)
            if path.stat().st_mtime_ns == before:
                problems.append(f"{rel}: Ctrl+S did not save the notebook (the check below would prove nothing)")
                continue
            saved = _comparable(json.loads(path.read_text()))
            if saved != _comparable(released):
                ours = _comparable(released)
                changed = sorted(k for k in set(saved) | set(ours) if saved.get(k) != ours.get(k))
                meta = {k: (ours["metadata"].get(k), saved["metadata"].get(k)) for k in
                        set(saved["metadata"]) | set(ours["metadata"])
                        if saved["metadata"].get(k) != ours["metadata"].get(k)}
                problems.append(f"{rel}: saving the untouched notebook changed {changed} (metadata: {meta})")
        time.sleep(8.0)  # every notebook stays open: none turns modified later (the kernel's reply can be late)
        late = page.evaluate(DIRTY_TABS)
        if late:
            problems.append(f"marked modified some seconds after opening: {late}")
    assert not problems, "\n".join(problems)
