"""Debian's Chromium as the browser tests and bench/page.py drive it through Playwright.

Never a browser Playwright downloads: `playwright install` needs the internet, and Debian's
package is the one CI installs.
"""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No sandbox (CI runs as root), no GPU, and nothing that reaches out to the network on its own.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}
