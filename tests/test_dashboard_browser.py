"""The dashboard (DESIGN O1) in a real browser: the system's Chromium, driven by Playwright.

Each test makes runs through the public API (a Runtime in this process, on
the ``db`` store), starts ``proctor ui`` on that store as a subprocess, and
looks at the pages as a user does: the runs list and its filters, a run's
timeline, its live status, the cancel and terminate buttons. The DOM the tests
read (ids, ``data-*`` attributes, the timeline's mark kinds) is the
dashboard's contract, written down in docs/dashboard.md.

Peers: Temporal's Web UI and Prefect's UI list runs with filters and draw a
run's history; their cancel/terminate buttons sit behind a confirmation, as
here. Fixtures: ``tests/browser.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from actors import EventType, RunCancelled, Runtime, get_context, shield, step, workflow
from persistence import RunState, open_store
from tests import browser
from tests.browser import UPDATE_SCREENSHOTS, StartDashboard
from tests.conftest import gate, run_cli, wait_for_event
from tests.processes import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

# A browser, a server and a runtime per test on a shared 2-core machine:
# above Playwright's own 10 s timeouts, so a hang fails there first.
pytestmark = pytest.mark.timeout(120)

#: The timeline's cancel story of a run cancelled inside a shield, in order.
SHIELD_STORY = ("cancel-requested", "cancel-buffered", "shield-exited", "cancel-delivered")
DOCS_IMAGES = ROOT / "docs" / "images"
DOCS_PAGE = ROOT / "docs" / "dashboard.md"


@step(name="dashboard_quick")
def quick(value: int) -> int:
    return value


@step(name="dashboard_wait_for_release")
def wait_for_release(key: str) -> str:
    """Blocks until the test releases it (inside the workflow's shield)."""
    gate(f"{key}:started").set()
    gate(key).wait(30)
    return key


@step(name="dashboard_hold")
def hold(key: str) -> str:
    """Heartbeats, holding a cancel in a shield until the test lets go; then
    the next heartbeat delivers it. A terminate ends it at once either way."""
    ctx = get_context()
    gate(f"{key}:started").set()
    with shield():
        while not gate(key).wait(0.01):
            ctx.heartbeat()
    for _ in range(3000):
        ctx.heartbeat()  # a cancel requested meanwhile is delivered here
        gate(f"{key}:never").wait(0.01)
    return "not cancelled"


@step(name="dashboard_beat")
def beat(key: str) -> str:
    """Heartbeats until a cancel is delivered (at a heartbeat, H1)."""
    ctx = get_context()
    gate(f"{key}:started").set()
    for _ in range(3000):
        ctx.heartbeat()
        gate(f"{key}:never").wait(0.01)
    return "not cancelled"


@workflow(name="dashboard_beating")
async def beating(key: str) -> str:
    return await beat(key)


@workflow(name="dashboard_ok")
async def ok(value: int) -> int:
    return await quick(value)


@workflow(name="dashboard_fails")
async def fails(value: int) -> int:
    await quick(value)
    raise ValueError(f"order {value} is invalid")


@workflow(name="dashboard_shielded")
async def shielded(key: str) -> str:
    with shield():
        await wait_for_release(key)
    await quick(1)  # the first checkpoint after the shield: the cancel lands here
    return "unreachable"


@workflow(name="dashboard_held")
async def held(key: str) -> str:
    return await hold(key)


def row_ids(page: Page, status: str | None = None) -> list[str]:
    """The runs table's run ids (top to bottom), of ``status`` only if given."""
    ids: list[str] = page.locator("#runs tr[data-run-id]").evaluate_all(
        "(rows, status) => rows.filter(r => !status || r.dataset.status === status)"
        ".map(r => r.dataset.runId)",
        status,
    )
    return ids


def statuses(page: Page) -> set[str]:
    found: list[str] = page.locator("#runs tr[data-run-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    return set(found)


def submit_filters(page: Page) -> None:
    """Submit the filter form (GET) and wait for the page it loads."""
    with page.expect_navigation():
        page.locator("form#filters").evaluate("form => form.requestSubmit()")


def marks(page: Page) -> list[dict[str, Any]]:
    """The timeline's marks in time order (ties by event seq), as dicts of
    their data attributes: kind, t (float), seq (int or None), status, ..."""
    found: list[dict[str, Any]] = page.locator("svg#timeline [data-kind]").evaluate_all(
        """els => els.map(e => ({
            kind: e.dataset.kind,
            t: parseFloat(e.dataset.t),
            seq: e.dataset.seq === undefined ? null : parseInt(e.dataset.seq, 10),
            status: e.dataset.status ?? null,
            outcome: e.dataset.outcome ?? null,
            title: e.querySelector(':scope > title')?.textContent ?? null,
        }))"""
    )
    return sorted(found, key=lambda m: (m["t"], m["seq"] if m["seq"] is not None else -1))


def assert_in_order(found: list[dict[str, Any]], kinds: tuple[str, ...]) -> None:
    """Each of ``kinds`` is a mark, and their first occurrences are in this order."""
    order = [m["kind"] for m in found]
    missing = [k for k in kinds if k not in order]
    assert not missing, f"timeline lacks {missing}; it has {order}"
    positions = [order.index(k) for k in kinds]
    assert positions == sorted(positions), f"out of order: {order}"


def still_the_same_document(page: Page) -> bool:
    """True while the page has not been reloaded since :func:`mark_document`."""
    same: bool = page.evaluate("() => window.__proctor_test_marker === true")
    return same


def mark_document(page: Page) -> None:
    page.evaluate("() => { window.__proctor_test_marker = true; }")


# -- (a) the runs page ---------------------------------------------------------


def test_O1_runs_page_lists_filters_pages_and_updates_live(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """The runs list as `proctor runs list` shows it: filter by status and by
    workflow (only matching rows), page through with #next-page, and a run
    started while the page is open appears without a reload (as Temporal's
    run list refreshes)."""
    done = [rt.start(ok, n) for n in range(3)]
    failed = [rt.start(fails, n) for n in range(2)]
    for handle in done:
        handle.result(timeout=10)
    for handle in failed:
        with pytest.raises(Exception, match="invalid"):
            handle.result(timeout=10)
    all_ids = {h.run_id for h in done + failed}
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(server.url)

    rows = page.locator("#runs tr[data-run-id]")
    rows.first.wait_for()
    assert set(row_ids(page)) == all_ids
    for run_id in all_ids:
        assert page.locator(f'#runs a[href="/runs/{run_id}"]').count() == 1

    # status filter: only FAILED rows, all of them
    page.locator("#filters select[name=status]").select_option(RunState.FAILED.value)
    submit_filters(page)
    assert f"status={RunState.FAILED.value}" in page.url
    assert set(row_ids(page)) == {h.run_id for h in failed}
    assert statuses(page) == {RunState.FAILED.name}

    # workflow filter (status back to all): only dashboard_ok's runs
    page.locator("#filters select[name=status]").select_option("")
    page.locator("#filters input[name=workflow]").fill("dashboard_ok")
    submit_filters(page)
    assert set(row_ids(page)) == {h.run_id for h in done}
    assert statuses(page) == {RunState.COMPLETED.name}

    # a since after every run: none left
    page.locator("#filters input[name=workflow]").fill("")
    page.locator("#filters input[name=since]").fill("2999-01-01T00:00:00")
    submit_filters(page)
    assert row_ids(page) == []

    # pagination: two runs a page, newest first, every run exactly once
    page.goto(f"{server.url}?limit=2")
    seen: list[str] = []
    for _ in range(len(all_ids)):
        rows.first.wait_for()
        seen += row_ids(page)
        nxt = page.locator("a#next-page")
        if nxt.count() == 0:
            break
        with page.expect_navigation():
            nxt.click()
    assert page.locator("a#next-page").count() == 0
    assert sorted(seen) == sorted(all_ids)

    # live: a run started now appears, the document is not reloaded
    page.goto(server.url)
    rows.first.wait_for()
    mark_document(page)
    late = rt.start(ok, 99)
    late.result(timeout=10)
    page.locator(f'#runs tr[data-run-id="{late.run_id}"]').wait_for()
    assert still_the_same_document(page)


# -- (b) a run cancelled inside a shield, (d) its screenshot ----------------------


def test_O1_run_page_timeline_shows_a_cancel_buffered_by_a_shield_in_order(
    rt: Runtime,
    db: str,
    chromium: BrowserContext,
    dashboard: StartDashboard,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """S1-S2 drawn: the request, its buffering in the shield, the shield's
    end, the delivery, then CANCELLED, in this order on the time axis; the
    event log table lists every event in seq order. A full-page screenshot
    is saved under tmp_path (the CI artifact)."""
    handle = rt.start(shielded, "b1")
    assert gate("b1:started").wait(10)
    rt.cancel(handle.run_id, "customer <b>changed</b> their mind")
    wait_for_event(rt, handle.run_id, EventType.CANCEL_BUFFERED)
    gate("b1").set()
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(f"{server.url}runs/{handle.run_id}")

    status = page.locator("#run-status")
    assert status.get_attribute("data-status") == RunState.CANCELLED.name
    assert RunState.CANCELLED.name in status.inner_text()
    timeline = page.locator("#timeline-section svg#timeline")
    timeline.wait_for()
    found = marks(page)
    assert_in_order(found, (*SHIELD_STORY, "terminal"))
    terminal = [m for m in found if m["kind"] == "terminal"]
    assert [m["status"] for m in terminal] == [RunState.CANCELLED.name]
    assert found[-1]["kind"] == "terminal"
    assert all(m["title"] for m in found), "every mark has a <title> tooltip"
    # the reason is shown as text, never as markup
    assert page.locator("#timeline-section b, #events b").count() == 0

    events = rt.events(handle.run_id)
    logged = page.locator("table#events tr[data-seq]").evaluate_all(
        "rows => rows.map(r => [parseInt(r.dataset.seq, 10), r.dataset.type])"
    )
    assert logged == [[e.seq, e.type.value] for e in events]

    shot = server.output.parent / "dashboard-run.png"  # the test's tmp_path
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    with capsys.disabled():  # shown in every run's output: CI's artifact
        print(f"\nrun page screenshot: {shot}")


def test_O1_the_timeline_keeps_a_readable_width_in_a_narrow_window_and_scrolls(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """At a 700px window the chart does not shrink its text to 7px: it keeps
    900px and its section scrolls sideways."""
    handle = rt.start(ok, 1)
    handle.result(timeout=10)
    server = dashboard(db)
    page = chromium.new_page()
    page.set_viewport_size({"width": 700, "height": 800})
    page.goto(f"{server.url}runs/{handle.run_id}")
    svg = page.locator("#timeline-section svg#timeline")
    svg.wait_for()
    box = svg.bounding_box()
    assert box is not None
    assert box["width"] >= 900
    section = page.locator("#timeline-section")
    assert section.evaluate("s => s.scrollWidth > s.clientWidth")
    label = page.locator("svg#timeline text.tl-label").first.bounding_box()
    assert label is not None
    assert label["height"] >= 10  # 11px text at a scale of at least 0.9


# -- (c) cancel and terminate from the page ------------------------------------


def test_O1_cancel_button_cancels_a_running_run_and_its_status_updates_live(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """Cancel behind a confirmation dialog writes what `proctor cancel`
    writes and shows its message; the status then moves to CANCELLED in the
    open page, without a reload."""
    handle = rt.start(held, "c1")
    assert gate("c1:started").wait(10)
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(f"{server.url}runs/{handle.run_id}")
    status = page.locator("#run-status")
    assert status.get_attribute("data-status") == RunState.RUNNING.name

    dialog = page.locator("dialog#cancel-dialog")
    assert not dialog.is_visible()
    page.locator("#cancel-button").click()
    dialog.wait_for(state="visible")
    dialog.locator("input[name=reason]").fill("out of stock")
    dialog.locator("#cancel-confirm").click()

    flash = page.locator("#flash")
    flash.wait_for()
    assert flash.inner_text().strip() == (
        f"cancel requested: run {handle.run_id} is now cancelling"
    )
    page.wait_for_function(
        "() => document.querySelector('#run-status').dataset.status === 'CANCELLING'"
    )
    record = rt.get_run(handle.run_id)
    assert record.status is RunState.CANCELLING
    assert record.cancel_reason == "out of stock"

    mark_document(page)
    gate("c1").set()  # the shield ends; the next heartbeat delivers the cancel
    with pytest.raises(RunCancelled):
        handle.result(timeout=10)
    page.wait_for_function(
        "() => document.querySelector('#run-status').dataset.status === 'CANCELLED'"
    )
    assert RunState.CANCELLED.name in status.inner_text()
    assert still_the_same_document(page), "the status changed by a reload, not live"

    page.goto(f"{server.url}runs/{handle.run_id}")  # not reload(): that would post again
    assert page.locator("#cancel-button").count() == 0
    assert page.locator("#terminate-button").count() == 0


def test_O1_cancel_with_wait_answers_once_the_run_ended_as_the_cli_does(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """The dialog's wait box is `proctor cancel --wait`: the answer comes once
    the run is terminal, with the CLI's two lines; the grace is recorded."""
    handle = rt.start(beating, "w1")
    assert gate("w1:started").wait(10)
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(f"{server.url}runs/{handle.run_id}")
    page.locator("#cancel-button").click()
    dialog = page.locator("dialog#cancel-dialog")
    dialog.wait_for(state="visible")
    dialog.locator("input[name=reason]").fill("duplicate order")
    dialog.locator("input[name=grace]").fill("30")
    dialog.locator("input[name=wait]").check()
    dialog.locator("#cancel-confirm").click()
    flash = page.locator("#flash")
    flash.wait_for()
    said = [line.strip() for line in flash.inner_text().splitlines() if line.strip()]
    assert said == [
        f"cancel requested: run {handle.run_id} is now cancelling",
        f"run {handle.run_id} is {RunState.CANCELLED}",
    ]
    assert page.locator("#run-status").get_attribute("data-status") == RunState.CANCELLED.name
    record = rt.get_run(handle.run_id)
    assert (record.status, record.cancel_reason, record.cancel_grace) == (
        RunState.CANCELLED,
        "duplicate order",
        30.0,
    )


def test_O1_terminate_button_terminates_a_running_run(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """Terminate behind its own dialog: the run is TERMINATED at once (T1),
    the page says what `proctor terminate` says, and a second action on the
    now-finished run gets the CLI's own refusal."""
    handle = rt.start(held, "t1")
    assert gate("t1:started").wait(10)
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(f"{server.url}runs/{handle.run_id}")
    # a second tab, opened while the run still runs, keeps its buttons
    stale = chromium.new_page()
    stale.goto(f"{server.url}runs/{handle.run_id}")

    page.locator("#terminate-button").click()
    dialog = page.locator("dialog#terminate-dialog")
    dialog.wait_for(state="visible")
    dialog.locator("input[name=reason]").fill("stuck")
    dialog.locator("#terminate-confirm").click()
    page.locator("#flash").wait_for()
    assert page.locator("#flash").inner_text().strip() == f"run {handle.run_id} terminated"
    page.wait_for_function(
        "() => document.querySelector('#run-status').dataset.status === 'TERMINATED'"
    )
    assert rt.get_run(handle.run_id).status is RunState.TERMINATED

    # the stale tab's cancel form posts to a finished run: the CLI's message
    cli = run_cli(db, "cancel", handle.run_id, "--reason", "late")
    assert cli.exit_code != 0
    refusal = cli.output.strip().removeprefix("Error: ").strip()
    assert "already finished" in refusal
    stale.locator("#cancel-dialog form").evaluate("form => form.requestSubmit()")
    stale.locator("#flash").wait_for()
    assert refusal in stale.locator("#flash").inner_text()


# -- the token, in a browser -----------------------------------------------------


def test_O1_token_in_the_url_sets_a_cookie_that_later_pages_carry(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """With --token, a page without it gets 401; ``?token=`` once sets an
    HttpOnly cookie and redirects to the same URL without the token, and
    every later page, static file and poll carries the cookie (as Jupyter's
    token login does)."""
    handle = rt.start(ok, 7)
    handle.result(timeout=10)
    server = dashboard(db, "--token", "s3cret-token")
    page = chromium.new_page()
    response = page.goto(server.url)
    assert response is not None
    assert response.status == 401
    response = page.goto(f"{server.url}?token=s3cret-token")
    assert response is not None
    assert response.status == 200
    assert "token" not in page.url
    cookies = {c["name"]: c for c in chromium.cookies()}
    assert cookies["proctor_ui_token"]["httpOnly"] is True
    assert cookies["proctor_ui_token"]["sameSite"] == "Strict"
    assert page.evaluate("() => document.cookie") == ""  # HttpOnly: no script reads it
    page.locator(f'#runs a[href="/runs/{handle.run_id}"]').click()
    page.locator("#run-status").wait_for()
    assert page.locator("#run-status").get_attribute("data-status") == "COMPLETED"


# -- without a browser --------------------------------------------------------------


def test_O1_without_a_browser_a_developer_skips_but_ci_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(browser.CHROMIUM_VARIABLE, str(tmp_path / "no-chromium"))
    assert browser.find_chromium() is None
    monkeypatch.delenv(browser.CI_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no browser for the dashboard's tests: why"):
        browser.unavailable("why")
    monkeypatch.setenv(browser.CI_VARIABLE, "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        browser.unavailable("why")


@pytest.mark.slow
@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_O1_the_browser_fixture_skips_without_chromium_except_under_ci(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    """End to end, in a pytest of its own: a browser test where no Chromium
    is found is skipped for a developer, saying what to install, and an
    error in CI (as the PostgreSQL half does, tests/pg_cluster.py)."""
    env = {k: v for k, v in os.environ.items() if k != browser.CI_VARIABLE}
    env[browser.CHROMIUM_VARIABLE] = str(tmp_path / "no-chromium")
    if ci:
        env[browser.CI_VARIABLE] = ci
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            f"{Path(__file__).name}::test_O1_runs_page_lists_filters_pages_and_updates_live[sqlite]",
        ],
        cwd=ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "Chromium is not installed" in done.stdout, done.stdout
    assert "scripts/install-system-deps" in done.stdout, done.stdout


# -- (e) the docs' screenshots, from the demo's run --------------------------------


def documented_marks() -> list[str]:
    """The mark kinds docs/dashboard.md says the demo's run page shows: the
    backticked words of the list under "What the demo's run shows"."""
    text = DOCS_PAGE.read_text()
    section = text.split("What the demo's run shows", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^- `([a-z-]+)`", section, re.MULTILINE)


@pytest.mark.slow
def test_O1_docs_screenshots_of_the_demo_show_what_the_docs_say(
    tmp_path: Path, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """The screenshots in docs/dashboard.md are taken here, from `proctor
    demo`'s cancelled order, so they stay true. With PROCTOR_UPDATE_SCREENSHOTS=1
    they are written to docs/images; otherwise under tmp_path. Either way the
    page must show every mark the docs name."""
    # A relative store in tmp_path: the pages' header shows "demo.db", not a
    # path of the machine that took the screenshot.
    demo = subprocess.run(
        [sys.executable, "-m", "cli", "--db", "demo.db", "demo", "--cancel-after", "0.2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    with open_store(tmp_path / "demo.db", readonly=True) as store:
        orders = [r for r in store.list_runs() if r.workflow == "order"]
    assert [r.status for r in orders] == [RunState.CANCELLED]
    run_id = orders[0].run_id
    out = DOCS_IMAGES if os.environ.get(UPDATE_SCREENSHOTS) == "1" else tmp_path
    out.mkdir(exist_ok=True)

    server = dashboard("demo.db", cwd=tmp_path)
    page = chromium.new_page()
    page.set_viewport_size({"width": 1280, "height": 320})  # two runs: no blank page below
    page.goto(server.url)
    page.locator(f'#runs tr[data-run-id="{run_id}"]').wait_for()
    page.screenshot(path=out / "dashboard-runs.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{server.url}runs/{run_id}")
    page.locator("svg#timeline").wait_for()
    kinds = {m["kind"] for m in marks(page)}
    named = documented_marks()
    assert named, 'docs/dashboard.md names no marks under "What the demo\'s run shows"'
    assert set(named) <= kinds, f"the docs name {sorted(set(named) - kinds)}; page has {kinds}"
    assert page.locator("#run-status").get_attribute("data-status") == "CANCELLED"
    shot = out / "dashboard-run.png"
    page.screenshot(path=shot)  # the first screen: status, timeline, arguments
    print(f"docs screenshots: {shot} and {out / 'dashboard-runs.png'}")


def test_O1_run_page_drops_its_buttons_when_the_run_ends_while_it_is_open(
    rt: Runtime, db: str, chromium: BrowserContext, dashboard: StartDashboard
) -> None:
    """The live part shows the terminal status, and the actions go with it:
    no cancel or terminate button is left for a run that cannot take one."""
    handle = rt.start(shielded, "e1")
    assert gate("e1:started").wait(10)
    server = dashboard(db)
    page = chromium.new_page()
    page.goto(f"{server.url}runs/{handle.run_id}")
    cancel, terminate = page.locator("#cancel-button"), page.locator("#terminate-button")
    assert cancel.is_visible()
    assert terminate.is_visible()
    mark_document(page)

    gate("e1").set()
    assert handle.result(timeout=10) == "unreachable"
    page.wait_for_function(
        "() => document.querySelector('#run-status').dataset.status === 'COMPLETED'"
    )
    page.locator("#actions").wait_for(state="hidden")
    assert not cancel.is_visible()
    assert not terminate.is_visible()
    assert still_the_same_document(page), "the buttons went by a reload, not live"
