"""Playwright helpers: Debian's Chromium, JupyterLab actions, and evidence when a test fails.

Chromium is ``/usr/bin/chromium`` (``tools/ensure_browser.sh`` installs it; ``TG_CHROMIUM`` overrides
the path). Without it the browser tests fail in CI (``CI`` set) and are skipped, visibly, elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError:  # pragma: no cover - reported by require_browser()
    PlaywrightTimeoutError = TimeoutError

from .lab import ARTIFACTS, LabServer

CHROMIUM = Path(os.environ.get("TG_CHROMIUM", "/usr/bin/chromium"))
#: Flags for Chromium as root in a container on a closed network (loopback only).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
#: How long JupyterLab may take to do heavy things on a loaded 2-core machine (ms).
SLOW_MS = 120_000


def require_browser():
    """Return ``playwright.sync_api.sync_playwright``; fail in CI, skip elsewhere, if no browser."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # pragma: no cover - the venv pins playwright
        problem, sync_playwright = f"the playwright package is missing ({err})", None
    if problem is None and not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = (
            f"{CHROMIUM} is missing: run `bash tools/ensure_browser.sh` as root (make test does) "
            "or `apt-get install chromium`"
        )
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}")
    return sync_playwright


def launch_chromium(playwright):
    """Headless Debian Chromium through Playwright."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


class PageRecorder:
    """A browser page plus its console log; on failure saves a screenshot and the log."""

    def __init__(self, page, server: LabServer | None = None):
        self.page = page
        self.server = server
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))

    def save_artifacts(self, name: str) -> list[Path]:
        """Write ``<name>.png`` (screenshot) and ``<name>.console.log``; returns their paths."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        shot, log = ARTIFACTS / f"{stem}.png", ARTIFACTS / f"{stem}.console.log"
        paths = []
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(shot), full_page=True, timeout=15_000)
            paths.append(shot)
        log.write_text("\n".join(self.console) + "\n")
        paths.append(log)
        if self.server is not None:
            paths.append(self.server.log_path)
        return paths

    @contextlib.contextmanager
    def evidence_on_failure(self, name: str):
        """On any exception inside the block, save artifacts and name them in the failure report."""
        try:
            yield self
        except BaseException as err:
            paths = self.save_artifacts(name)
            note = "browser artifacts: " + ", ".join(str(p) for p in paths)
            print(note)
            err.add_note(note)
            raise


# --- JupyterLab actions -------------------------------------------------------------------------------


#: The texts of the tabs JupyterLab marks modified (unsaved changes).
DIRTY_TABS = "() => [...document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty')].map(t => t.textContent.trim())"

#: The texts of JupyterLab's notification toasts (the "Jupyter news" prompt is one).
TOASTS = ("() => [...document.querySelectorAll('.Toastify__toast, .jp-Notification-Toast, .jp-toast-message')]"
          ".map(t => t.textContent.trim())")


def open_notebook(page, server: LabServer, relpath: str) -> None:
    """Open ``relpath`` (relative to the server's notebook dir) and wait for an idle kernel."""
    page.goto(server.url(f"lab/tree/{relpath}"), timeout=SLOW_MS)
    name = relpath.rsplit("/", 1)[-1]
    page.locator(".jp-NotebookPanel-toolbar").last.wait_for(timeout=SLOW_MS)
    page.wait_for_function(
        """(name) => {
            const tab = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');
            const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
                .filter(p => !p.classList.contains('lm-mod-hidden')).pop();
            return tab && tab.textContent.includes(name) && panel && panel.querySelector('.jp-Cell');
        }""",
        arg=name,
        timeout=SLOW_MS,
    )
    wait_kernel_idle(page)


def active_panel(page):
    """Locator of the notebook panel that is showing."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").last


def wait_kernel_idle(page, timeout: float = SLOW_MS) -> None:
    """Wait until the active notebook's kernel is started and idle."""
    page.wait_for_function(
        """() => {
            const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
                .filter(p => !p.classList.contains('lm-mod-hidden')).pop();
            const ind = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
            return ind && ind.getAttribute('data-status') === 'idle';
        }""",
        timeout=timeout,
    )


def run_menu_item(page, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's main menu bar, then its item labelled ``item``."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    label = page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first
    label.click()


ACTIVE_PANEL_JS = """
    const panel = [...document.querySelectorAll('.jp-NotebookPanel')]
        .filter(p => !p.classList.contains('lm-mod-hidden')).pop();
    const prompts = panel ? [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim()) : [];
    const indicator = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
    const idle = !!indicator && indicator.getAttribute('data-status') === 'idle';
"""


def run_all_cells(page, timeout: float = SLOW_MS) -> float:
    """Run all cells of the active notebook; wait until the run is over. Returns seconds taken.

    Over means: the first code cell got a new execution count, no cell is queued or running (``[*]``)
    and the kernel is idle. Run All stops at the first error, like a learner's Run All.
    """
    first_before = page.evaluate(f"() => {{ {ACTIVE_PANEL_JS} return prompts[0] || ''; }}")
    started = f"""(before) => {{ {ACTIVE_PANEL_JS}
        return prompts.length > 0 && /\\[(\\*|\\d+)\\]/.test(prompts[0]) && prompts[0] !== before;
    }}"""
    start = time.monotonic()
    # Just after a notebook opens, JupyterLab can drop a Run All although the kernel shows idle:
    # ask again until the first cell is queued or has run.
    for attempt in range(5):
        active_panel(page).locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        run_menu_item(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(started, arg=first_before, timeout=5_000 * (attempt + 1))
            break
        except PlaywrightTimeoutError:
            continue
    page.wait_for_function(started.replace("\\*|", ""), arg=first_before, timeout=timeout)
    page.wait_for_function(
        f"() => {{ {ACTIVE_PANEL_JS} return idle && !prompts.some(t => t.includes('*')); }}",
        timeout=timeout,
    )
    return time.monotonic() - start


def validate(page, timeout: float = SLOW_MS) -> tuple[str, str]:
    """Press nbgrader's Validate button; returns (result class, dialog text) and closes the dialog.

    The result class is what nbgrader's lab extension puts on the dialog body: ``validation-success``,
    ``validation-failed``, ``validation-changed``, ``validation-type-changed`` or ``validation-passed``.
    """
    active_panel(page).locator(".jp-Toolbar .validate-button").click()
    dialog = page.locator(".jp-Dialog").last
    dialog.wait_for(timeout=timeout)
    body = dialog.locator(".jp-Dialog-body")
    text = body.inner_text(timeout=timeout)
    result = body.evaluate(
        """(body) => {
            const node = body.matches('[class*="validation-"]') ? body
                : body.querySelector('[class*="validation-"]');
            const cls = node ? [...node.classList].find(c => c.startsWith('validation-')) : null;
            return cls || 'validation-error';  // nbgrader renders errors without a result class
        }"""
    )
    title = dialog.locator(".jp-Dialog-header").inner_text()
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=30_000)
    return result, f"{title}\n{text}"
