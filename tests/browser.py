"""Open local HTML pages in Debian's headless Chromium (playwright) and record what they try to do.

Shared by the site, evidence-package and report tests and benchmarks::

    from tests.browser import open_browser, require_browser, wait_for

    require_browser()                     # skip, or fail when HYDRASCOPE_REQUIRE_BROWSER=1
    with open_browser() as browser:
        visit = browser.open(path, screenshot="artifacts/index.png", ready="window.hydrascopeReady === true")
        wait_for(visit.page, "document.querySelector('.done') !== null")   # CSP-proof polling
        assert visit.requests == []       # nothing but file:// was requested
        assert visit.dialogs == [] and visit.console_errors == [] and visit.page_errors == []
        visit.page.evaluate("...")        # the page stays open until the next open() / close()

No browser is downloaded: the system Chromium at ``/usr/bin/chromium`` is used
(``apt-get install chromium chromium-driver``; ``pip install playwright``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "Visit", "Browser", "open_browser", "browser_available",
           "require_browser", "wait_for"]

#: the Debian Chromium binary (override with HYDRASCOPE_CHROMIUM)
CHROMIUM = os.environ.get("HYDRASCOPE_CHROMIUM", "/usr/bin/chromium")

#: flags that keep Chromium headless, sandbox-free (containers) and quiet on the network
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)

#: URL schemes that never leave the machine
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def browser_available() -> str | None:
    """Return None when playwright and Chromium are usable, else the reason they are not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} not found (apt-get install chromium chromium-driver)"
    return None


def require_browser() -> None:
    """Skip the calling test when no browser is usable — or fail when HYDRASCOPE_REQUIRE_BROWSER=1 (CI)."""
    import pytest

    reason = browser_available()
    if reason is None:
        return
    if os.environ.get("HYDRASCOPE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser required (HYDRASCOPE_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


def wait_for(page, expression: str, *, timeout_ms: int = 30000, poll_ms: int = 50):
    """Poll a JavaScript expression until it is truthy; returns its value.

    Unlike ``page.wait_for_function`` this works on pages whose Content-Security-Policy forbids
    ``eval`` (playwright's polling evaluates the string inside the page; ``page.evaluate`` does not).
    """
    deadline = time.perf_counter() + timeout_ms / 1000.0
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{expression!r} still false after {timeout_ms} ms on {page.url}")
        page.wait_for_timeout(poll_ms)


@dataclass
class Visit:
    """What happened while one page was opened."""

    url: str
    page: object                                   # playwright Page, open until the next visit
    requests: list[str] = field(default_factory=list)        # non-local URLs the page tried to fetch
    console_errors: list[str] = field(default_factory=list)  # console messages of type "error"
    dialogs: list[str] = field(default_factory=list)         # alert/confirm/prompt messages (dismissed)
    page_errors: list[str] = field(default_factory=list)     # uncaught exceptions
    open_seconds: float = 0.0                                # goto → load → `ready` condition true
    screenshot: Path | None = None

    @property
    def clean(self) -> bool:
        """True when nothing was requested from the network, no dialog opened and no error was logged."""
        return not (self.requests or self.console_errors or self.dialogs or self.page_errors)

    def problems(self) -> str:
        """Readable summary for assertion messages."""
        return (f"{self.url}: requests={self.requests} dialogs={self.dialogs} "
                f"console_errors={self.console_errors} page_errors={self.page_errors}")


class Browser:
    """One headless Chromium; every non-local request is recorded and aborted."""

    def __init__(self, *, width: int = 1400, height: int = 900):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS),
                                                     headless=True)
        except Exception:
            self._pw.stop()
            raise
        self._context = self._browser.new_context(viewport={"width": width, "height": height},
                                                  service_workers="block")
        self._page = None
        self._visit: Visit | None = None
        self._context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(_LOCAL_SCHEMES):
            route.continue_()
            return
        if self._visit is not None:
            self._visit.requests.append(url)
        route.abort()

    def open(self, path, *, screenshot=None, ready: str | None = None, timeout_ms: int = 30000,
             full_page: bool = False, settle_ms: int = 200) -> Visit:
        """Open a local file and return what it did.

        Parameters
        ----------
        path : path-like or str
            A file on disk (or a ``file://`` URL, fragment allowed).
        screenshot : path-like, optional
            Where to save a PNG screenshot once the page is ready (parent folders are created).
        ready : str, optional
            A JavaScript expression that is true once the page has finished drawing.
        timeout_ms : int
            Give up waiting for ``ready`` after this long (raises TimeoutError).
        full_page : bool
            Screenshot the whole scrollable page instead of the viewport.
        settle_ms : int
            Extra wait after ``ready`` so late requests or errors are caught.
        """
        if self._page is not None:
            self._page.close()
        url = str(path) if str(path).startswith("file://") else Path(path).resolve().as_uri()
        page = self._context.new_page()
        visit = Visit(url=url, page=page)
        self._page, self._visit = page, visit

        def on_request(request):
            if not request.url.startswith(_LOCAL_SCHEMES) and request.url not in visit.requests:
                visit.requests.append(request.url)

        def on_console(msg):
            if msg.type == "error":
                visit.console_errors.append(msg.text)

        def on_dialog(dialog):
            visit.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("request", on_request)
        page.on("console", on_console)
        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: visit.page_errors.append(str(exc)))
        t0 = time.perf_counter()
        page.goto(url, wait_until="load", timeout=timeout_ms)
        if ready:
            wait_for(page, ready, timeout_ms=timeout_ms)
        visit.open_seconds = time.perf_counter() - t0
        if settle_ms:
            page.wait_for_timeout(settle_ms)
        if screenshot is not None:
            shot = Path(screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=full_page)
            visit.screenshot = shot
        return visit

    def close(self) -> None:
        """Close the page, the browser and playwright."""
        try:
            if self._page is not None:
                self._page.close()
            self._context.close()
            self._browser.close()
        finally:
            self._pw.stop()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_browser(**kwargs) -> Browser:
    """Start headless Chromium (use as a context manager)."""
    return Browser(**kwargs)
