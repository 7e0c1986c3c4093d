"""Make docs/coverage-page.png: the source RetinaFace page of the build, in headless chromium.

Run after `make models` and `make chromium`:
``.venv/bin/python docs/screenshot_coverage_page.py``.
It opens ``models/build/retinaface/coverage/retinaface.html``, clicks the first CPU node in the list (so the
panel shows its rejecting rule) and fits the whole collapsed graph into view.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "models" / "build" / "retinaface" / "coverage" / "retinaface.html"
OUT = ROOT / "docs" / "coverage-page.png"


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None or not PAGE.is_file():
        raise SystemExit("needs `make chromium` and `make models` first")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(PAGE.as_uri())
        page.wait_for_selector("body[data-ready]")
        page.locator("button[data-action=fit]").click()
        name = page.locator(".node.cpu").first.get_attribute("data-name")
        page.locator(f'.node.cpu[data-name="{name}"]').click()
        page.screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
