"""nbgrader's Assignments tab in JupyterLab, driven by clicks (tests/test_workshop.py).

The tab is nbgrader's lab extension (``@jupyter/nbgrader:assignment-list``), opened from the main menu's
**Nbgrader > Assignment List**. It lists the course's assignments in three panels, each row with one
button: *Released assignments* (``#released_assignments_list``, **Fetch**), *Downloaded assignments*
(``#fetched_assignments_list``, **Submit**) and *Submitted assignments* (``#submitted_assignments_list``,
**Fetch Feedback**; a submission row then says "(view feedback)"). Each button posts to the server's
``assignments/...`` API and redraws the lists from its answer; a failed submit opens a dialog.
"""

from __future__ import annotations

import re

from .ui import SLOW_MS, run_menu_item

PANEL = "#nbgrader-assignment-list"
LISTS = {"released": "#released_assignments_list", "fetched": "#fetched_assignments_list",
         "submitted": "#submitted_assignments_list"}
BUTTONS = {"released": "Fetch", "fetched": "Submit", "submitted": "Fetch Feedback"}


def open_tab(page, course_id: str, timeout: float = SLOW_MS):
    """Open the Assignments tab from the main menu; wait until it has loaded ``course_id``'s lists."""
    run_menu_item(page, "Nbgrader", "Assignment List")
    panel = page.locator(PANEL)
    panel.wait_for(state="visible", timeout=timeout)
    panel.locator("#course_list_default", has_text=course_id).wait_for(timeout=timeout)
    _wait_loaded(panel, timeout)
    return panel


def refresh(panel, timeout: float = SLOW_MS) -> None:
    """Click the tab's refresh button and wait for the three lists to load again."""
    panel.locator("#refresh_assignments_list").click()
    _wait_loaded(panel, timeout)


def _wait_loaded(panel, timeout):
    for name in LISTS.values():
        panel.locator(f"{name}_loading").wait_for(state="hidden", timeout=timeout)


def row(panel, status: str, assignment: str):
    """The row of ``assignment`` in the list for ``status`` (released, fetched or submitted)."""
    name = re.compile(rf"^\s*{re.escape(assignment)}\s*$")
    return (panel.locator(f"{LISTS[status]} > .list_item")
            .filter(has=panel.page.locator(".item_name", has_text=name)).first)


def click(panel, status: str, assignment: str, *, then: str, timeout: float = SLOW_MS) -> None:
    """Click the button of ``assignment``'s row in the ``status`` list; wait until its row shows in ``then``.

    A submit that nbgrader refuses opens a dialog: its text becomes the assertion's message.
    """
    button = row(panel, status, assignment).locator("button", has_text=re.compile(rf"^{BUTTONS[status]}$"))
    button.wait_for(state="visible", timeout=timeout)
    button.click()
    target = row(panel, then, assignment)
    page = panel.page
    dialog = page.locator(".jp-Dialog")
    page.wait_for_function(
        """([list, name]) => document.querySelector('.jp-Dialog') !== null ||
             [...document.querySelectorAll(list + ' > .list_item > div > .item_name')]
               .some(e => e.textContent.trim() === name)""",
        arg=[LISTS[then], assignment], timeout=timeout)
    if dialog.count():
        raise AssertionError(f"{BUTTONS[status]} of {assignment} failed: {dialog.first.inner_text()}")
    target.wait_for(state="visible", timeout=timeout)


def fetch_feedback(panel, assignment: str, timeout: float = SLOW_MS) -> None:
    """Refresh, check nbgrader offers feedback to fetch, click Fetch Feedback, wait for "(view feedback)"."""
    refresh(panel, timeout)
    submitted = row(panel, "submitted", assignment)
    submitted.locator("text=(feedback available to fetch)").first.wait_for(timeout=timeout)
    submitted.locator("button", has_text=re.compile(r"^Fetch Feedback$")).click()
    row(panel, "submitted", assignment).locator("a", has_text="(view feedback)").first.wait_for(timeout=timeout)
