"""Open pages in headless Debian Chromium (driven by playwright) and list what is wrong.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``. The network
is blocked for the page (every request that is not ``file:`` is aborted and reported).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
LINKS = (
    "Array.from(document.querySelectorAll('a[href]')).map(a => [a.getAttribute('href'), a.href])"
)


def browser_or_skip() -> Any:
    """playwright's sync API; skip when it or Chromium is missing, but fail under CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = (
        "the playwright package is not installed (dev extra)"
        if sync_playwright is None
        else f"{CHROMIUM} is absent (apt-get install chromium)"
        if not CHROMIUM.exists()
        else None
    )
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test needs a browser in CI: {missing}")
        pytest.skip(missing)
    return sync_playwright


@contextmanager
def open_browser() -> Iterator[Any]:
    sync_playwright = browser_or_skip()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def check_page(browser: Any, path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Problems of the page at ``path`` and its links (``(href, resolved URL)``)."""
    problems: list[str] = []
    page = browser.new_page()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            problems.append(f"console error: {msg.text}")

    def route(r: Any) -> None:
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            problems.append(f"network request: {r.request.url}")
            r.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"failed to load {req.url}"))
    page.route("**/*", route)
    page.goto(path.resolve().as_uri(), wait_until="load")
    if not page.evaluate("document.body && document.body.innerText.trim().length > 0"):
        problems.append("the page renders no text")
    for src, complete, width in page.evaluate(IMAGES):
        if not (complete and width > 0):
            problems.append(f"image not loaded: {src}")
    links = [tuple(x) for x in page.evaluate(LINKS)]
    page.close()
    return [f"{path.name}: {p}" for p in problems], links


def check_site(index: Path) -> list[str]:
    """Problems of ``index`` and of every local page it links (each checked the same way)."""
    with open_browser() as browser:
        problems, links = check_page(browser, index)
        seen: set[Path] = set()
        for href, url in links:
            parsed = urlparse(url)
            if parsed.scheme != "file":
                continue  # licence links: not followed (no network), checked by the HTML tests
            target = Path(unquote(parsed.path))
            if not target.is_file():
                problems.append(f"{index.name}: link {href} does not resolve")
                continue
            if target in seen:
                continue
            seen.add(target)
            more, _ = check_page(browser, target)
            problems += more
        return problems
