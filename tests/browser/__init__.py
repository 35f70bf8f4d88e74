"""Helpers for the tests that start JupyterLab and drive it in headless Chromium.

``lab``: start and stop ``jupyter lab`` on a free loopback port with a token (as ``make lab`` does);
``notebooks``: temporary copies of course notebooks (released, answered, trimmed for a widget);
``ui``: Playwright helpers (Chromium, JupyterLab actions, screenshots and console logs on failure);
``fixtures``: pytest fixtures that test modules import (there is no tests/browser conftest).
"""
