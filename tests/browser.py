"""A real browser and a real dashboard for the dashboard's tests (DESIGN O1).

One concept: the two processes a browser test drives. ``chromium`` is the
system's Chromium, driven through Playwright's sync API; ``dashboard`` starts
``proctor --db TARGET ui --port 0`` as a subprocess and gives its URL.

Invariants:

- The browser is the distribution's (``chromium``, ``chromium-browser`` or
  ``/usr/bin/chromium``), never one Playwright downloads; each test gets a
  fresh profile folder under its ``tmp_path``, so no state (cookies, cache)
  passes from one test to the next.
- Where Playwright or the browser is missing the fixtures skip, saying what
  to install; under CI (the variable ``CI`` set) they fail instead, as
  ``tests/pg_cluster.py`` does for PostgreSQL, so CI never silently skips O1.
- Every wait is bounded: Playwright's own timeouts are :data:`PAGE_TIMEOUT`
  (a hang fails in seconds, well inside the test's own timeout), the
  dashboard's "serving" line is awaited for :data:`START_DEADLINE`.
- Nothing outlives a test: at teardown the browser is closed and no process
  that uses its profile folder is left; the dashboard is stopped with SIGINT
  (as Ctrl-C does), must exit 0 within :data:`STOP_DEADLINE`, and is killed
  (and the test failed) otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.conftest import wait_until
from tests.processes import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Page

#: Where Chromium is looked for, in order: commands on PATH, then a path.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_PATH = "/usr/bin/chromium"
#: Overrides the lookup: the browser's executable (missing if not executable).
CHROMIUM_VARIABLE = "PROCTOR_TEST_CHROMIUM"
#: Flags for a quiet, offline, headless browser in a container.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Milliseconds Playwright waits for anything (a page, a selector, an expect).
PAGE_TIMEOUT = 10_000
#: Seconds for the dashboard to print its URL, and to stop after SIGINT.
START_DEADLINE = 30.0
STOP_DEADLINE = 10.0
#: The line ``proctor ui`` prints once it listens (the URL is the group).
SERVING = re.compile(r"^proctor ui: serving (http://\S+/)$", re.MULTILINE)
#: Set by CI systems: a missing browser is then a failure, not a skip.
CI_VARIABLE = "CI"
#: 1 makes the docs screenshot test write docs/images instead of tmp_path.
UPDATE_SCREENSHOTS = "PROCTOR_UPDATE_SCREENSHOTS"


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason`` (what to install); fail under CI."""
    if os.environ.get(CI_VARIABLE):
        pytest.fail(f"the browser tests are required in CI ({CI_VARIABLE} is set): {reason}")
    pytest.skip(f"no browser for the dashboard's tests: {reason}")


def find_chromium() -> str | None:
    """The system Chromium's executable, or None; ``$PROCTOR_TEST_CHROMIUM``
    when set (None if that is not an executable)."""
    override = os.environ.get(CHROMIUM_VARIABLE)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.access(CHROMIUM_PATH, os.X_OK):
        return CHROMIUM_PATH
    return None


def processes_using(marker: str) -> list[int]:
    """Pids of live processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile
        if state != "Z" and marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def console_error(url: str, message: ConsoleMessage, document_status: int) -> list[str]:
    """``message`` of the page at ``url`` as a failure, or none: every error
    counts (a 404 for the page's icon, a failed fetch), except a failed load
    on a page whose own document answered an error status (a 401 or 409 the
    test provokes and checks itself): that page links nothing of its own, and
    the browser's request for its icon meets the same refusal."""
    if message.type != "error":
        return []
    if document_status >= 400 and message.text.startswith("Failed to load resource"):
        return []
    return [f"{url}: {message.text} ({message.location.get('url')})"]


#: Whether a test's call failed (set by the report hook below, read at teardown).
CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report = yield
    if report.when == "call":  # type: ignore[attr-defined]
        item.stash[CALL_FAILED] = report.failed  # type: ignore[attr-defined]
    return report


def screenshot_pages(context: BrowserContext, folder: Path) -> None:
    """A full-page screenshot of each open page into ``folder`` (after a failure:
    what the browser showed), each path printed."""
    shown = [page for page in context.pages if page.url != "about:blank"]
    for n, page in enumerate(shown):
        path = folder / f"failure-page-{n}.png"
        try:
            page.screenshot(path=path, full_page=True)
        except Exception as exc:  # a hung page must not hide the test's failure
            print(f"no screenshot of {page.url}: {exc}")
        else:
            print(f"screenshot of {page.url} at the failure: {path}")


@pytest.fixture
def chromium(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless system Chromium with a fresh profile; its pages time out in 10 s.

    Yields a Playwright ``BrowserContext`` (``chromium.new_page()``); closed,
    and checked gone, at the end. When the test failed, each open page's
    screenshot is saved under ``tmp_path`` first (its path printed). An
    uncaught JavaScript error on any page fails the test, and so does an
    error the browser logs on its console (e.g. a 404 for the page's icon).
    """
    try:
        # Lazily: without Playwright the test skips (or fails under CI) with
        # what to install, instead of the whole suite failing to collect.
        from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    except ImportError:
        unavailable("Playwright is not installed: pip install -e '.[dev]'")
    executable = find_chromium()
    if executable is None:
        unavailable(
            "Chromium is not installed: scripts/install-system-deps installs it "
            "(apt-get install chromium)"
        )
    profile = tmp_path / "chromium-profile"
    expect.set_options(timeout=PAGE_TIMEOUT)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(PAGE_TIMEOUT)
        context.set_default_navigation_timeout(PAGE_TIMEOUT)
        script_errors: list[str] = []
        console_errors: list[str] = []

        def watch(page: Page) -> None:
            page.on("pageerror", lambda e: script_errors.append(f"{page.url}: {e}"))
            document = {"status": 200}  # of the page's last main-frame navigation
            page.on(
                "response",
                lambda r: (
                    document.update(status=r.status)
                    if r.request.is_navigation_request() and r.frame == page.main_frame
                    else None
                ),
            )
            page.on(
                "console",
                lambda m: console_errors.extend(console_error(page.url, m, document["status"])),
            )

        context.on("page", watch)
        try:
            yield context
            if request.node.stash.get(CALL_FAILED, False):
                screenshot_pages(context, tmp_path)
        finally:
            context.close()
    wait_until(
        lambda: not processes_using(str(profile)),
        STOP_DEADLINE,
        "a Chromium process outlived its test",
    )
    assert script_errors == [], "the dashboard's JavaScript threw"
    assert console_errors == [], "the browser logged errors (a missing file, a failed request)"


@dataclass
class Dashboard:
    """A running ``proctor ui``: its ``url`` (ends with ``/``) and its process."""

    url: str
    process: subprocess.Popen[bytes]
    output: Path

    def log(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return self.output.read_text(errors="replace")

    def stop(self) -> int:
        """SIGINT (Ctrl-C), then its exit code; killed past the deadline."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE)
            pytest.fail(f"proctor ui did not stop on SIGINT:\n{self.log()}")


#: ``start_dashboard(target, *options, env=None, cwd=ROOT)``: the ``dashboard`` fixture's factory.
StartDashboard = Callable[..., Dashboard]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[StartDashboard]:
    """A factory: ``dashboard(target, *options)`` starts ``proctor --db TARGET ui
    --port 0 OPTIONS...`` (in ``cwd``, with ``env`` added to the environment)
    and returns it once it serves. Every one started is
    stopped at the test's end, and must have exited 0."""
    started: list[Dashboard] = []

    def start(
        target: str | os.PathLike[str], *options: str, env: Any = None, cwd: Path = ROOT
    ) -> Dashboard:
        output = tmp_path / f"proctor-ui-{len(started)}.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli",
                    "--db",
                    os.fspath(target),
                    "ui",
                    "--port",
                    "0",
                    *options,
                ],
                cwd=cwd,
                env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        server = Dashboard("", process, output)
        started.append(server)
        deadline = time.monotonic() + START_DEADLINE
        while (found := SERVING.search(server.log())) is None:
            if process.poll() is not None:
                pytest.fail(f"proctor ui exited {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"proctor ui printed no URL within {START_DEADLINE}s:\n{server.log()}")
            time.sleep(0.01)
        server.url = found.group(1)
        return server

    yield start
    codes = [(server, server.stop()) for server in started]
    for server, code in codes:
        # one that never served has failed its test already, with its output
        assert code == 0 or not server.url, f"proctor ui exited {code} on SIGINT:\n{server.log()}"
