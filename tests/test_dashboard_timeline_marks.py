"""The run page's timeline chart (DESIGN O1): what a new user could not read in it.

A run's end closes everything of it; a dead owner's run is not "running";
the key names every mark; a cancel delivered, a shield inside a step, the
part of a step that ignored the cancel and the stretched axis stand out.
Hand-built logs (``HandLog``) where a live run would need a crash or exact
timing; real runs where the public API makes them at will.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import RunTerminated, Runtime, gather, step, workflow
from cli import cli
from cli.web._timeline import build_timeline
from persistence import EventType, RunState
from tests.conftest import Target, gate, wait_until
from tests.dashboard_helpers import dashboard
from tests.processes import DEADLINE, Worker
from tests.timeline_charts import SVG, HandLog, chart, marks, parse, records, t, title

pytestmark = pytest.mark.timeout(60)

_E = EventType


def _rect(el: ET.Element) -> ET.Element:
    return next(r for r in el if r.tag == f"{SVG}rect")


def _right(rect: ET.Element) -> float:
    return float(rect.get("x") or 0) + float(rect.get("width") or 0)


def _every_lane_kind_open() -> HandLog:
    """A log with one open thing of every kind: a step attempt, a step waiting
    for a slot, a back-off, a sleep, a signal wait, a child run, a body shield,
    a cancel scope and a shield in a step's code."""
    log = HandLog()
    log.add(_E.RUN_CREATED, 0, workflow="hand")
    log.add(_E.RUN_STARTED, 0)
    log.add(_E.STEP_STARTED, 1, 0, 1)
    log.add(_E.SHIELD_ENTERED, 1.5, 0, 1, depth=0)
    log.add(_E.STEP_WAITING, 1, 1, 1)
    log.add(_E.STEP_STARTED, 1, 2, 1)
    log.add(_E.STEP_FAILED, 2, 2, 1, error={"type": "E", "message": "x"})
    log.add(_E.STEP_RETRY_SCHEDULED, 2, 2, 2, delay=100)
    log.add(_E.TIMER_STARTED, 2, 3, step="sleep", due=1_800_000_500.0)
    log.add(_E.SIGNAL_WAITING, 2, 4, step="go")
    log.add(_E.CHILD_STARTED, 2, 5, step="kid", child_run_id="hand.5")
    log.add(_E.SHIELD_ENTERED, 3, depth=0)
    log.add(_E.SCOPE_ENTERED, 3, scope=1, shield=False)
    log.add(_E.TERMINATE_REQUESTED, 4, reason="stuck")
    log.add(_E.RUN_TERMINATED, 5, reason="stuck")
    return log


def test_O1_T1_a_terminated_run_has_nothing_still_running_in_any_lane() -> None:
    """Once the run has its terminal record nothing of it runs: every open
    bar, back-off and span ends at that record, a bar as abandoned saying why
    (Temporal closes a terminated workflow's pending activities and timers)."""
    root = _every_lane_kind_open().chart(RunState.TERMINATED, now=50)

    (terminal,) = marks(root, "terminal")
    end = t(terminal)
    bars = [
        el
        for kind in ("attempt", "child", "sleep", "signal")
        for el in marks(root, kind)
        if el.get("data-outcome") != "failed"
    ]
    assert {el.get("data-kind") for el in bars} == {"attempt", "child", "sleep", "signal"}
    assert len(bars) == 5  # steps 0 and 1 (waiting), the sleep, the wait, the child
    for bar in bars:
        assert bar.get("data-outcome") == "abandoned", title(bar)
        assert t(bar, "data-t-end") == pytest.approx(end)
        assert "still open" not in title(bar)
        assert "was terminated" in title(bar)
        assert "tl-abandoned" in (_rect(bar).get("class") or "")
    spans = marks(root, "backoff") + marks(root, "shield") + marks(root, "scope")
    assert len(spans) == 4  # the back-off, the step's shield, the body's shield, the scope
    for span in spans:
        assert t(span, "data-t-end") == pytest.approx(end), title(span)
        assert "still open" not in title(span)
    (line,) = [el for el in terminal if el.tag == f"{SVG}line"]
    for el in bars + spans:  # nothing drawn past the end
        assert _right(_rect(el)) <= float(line.get("x1") or 0) + 0.11


def test_O1_a_run_whose_terminal_record_is_not_in_the_log_still_closes_its_bars() -> None:
    log = HandLog()
    log.add(_E.STEP_STARTED, 1, 0, 1)
    run = log.run(RunState.CANCELLED, finished=4)
    model = build_timeline(run, log.events, [], now=log.created + 99)
    (attempt,) = model.lanes[0].attempts
    assert (attempt.outcome, attempt.end) == ("abandoned", 4)
    assert "ended CANCELLED" in attempt.what


@step()
def held(key: str) -> str:
    gate(f"{key}:started").set()
    gate(key).wait(30)
    return key


@workflow()
async def kid(key: str) -> str:
    return await held(key)


@workflow()
async def parent_of_two(key: str) -> list[str]:
    return list(await gather(kid(f"{key}.a"), kid(f"{key}.b")))


def test_O1_T1_a_terminated_parent_does_not_draw_its_children_running(
    rt: Runtime, db: Target
) -> None:
    handle = rt.start(parent_of_two, "tp")
    assert gate("tp.a:started").wait(10)
    assert gate("tp.b:started").wait(10)
    rt.terminate(handle.run_id, "stop it all")
    with pytest.raises(RunTerminated):
        handle.result(timeout=10)
    wait_until(lambda: records(db, handle.run_id)[0].finished_at is not None)
    root = chart(db, handle.run_id)
    gate("tp.a").set()
    gate("tp.b").set()

    (terminal,) = marks(root, "terminal")
    children = marks(root, "child")
    assert len(children) == 2
    for child in children:
        assert child.get("data-outcome") != "running", title(child)
        assert t(child, "data-t-end") <= t(terminal) + 1e-6


def _open_step() -> HandLog:
    log = HandLog()
    log.add(_E.RUN_CREATED, 0, workflow="hand")
    log.add(_E.RUN_CLAIMED, 0, owner="rt-1")
    log.add(_E.RUN_STARTED, 0)
    log.add(_E.STEP_STARTED, 1, 0, 1)
    log.add(_E.SHIELD_ENTERED, 1, depth=0)
    return log


def test_O1_P3_a_dead_owners_run_is_drawn_to_its_last_sign_of_life_then_owner_gone() -> None:
    """A run nobody hosts is not running: its bars stop at the owner's last
    renewal and an "owner gone" hatch runs to now (Temporal shows a workflow
    task timed out, not a live one, when its worker is gone)."""
    root = _open_step().chart(RunState.RUNNING, now=30, owner_gone=5)

    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "running"
    gone = marks(root, "owner-gone")
    assert len(gone) == 2  # the run's row and the open step's lane
    for g in gone:
        assert t(g) == pytest.approx(5)
        assert t(g, "data-t-end") == pytest.approx(30)
        assert "nobody hosts this run since +5.000s (owner dead)" in title(g)
        assert "a worker will resume it" in title(g)
    lane_gone = next(g for g in gone if float(_rect(g).get("y") or 0) > 60)
    assert _right(_rect(bar)) == pytest.approx(float(_rect(lane_gone).get("x") or 0), abs=0.11)
    (shield_span,) = marks(root, "shield")
    assert _right(_rect(shield_span)) == pytest.approx(_right(_rect(bar)), abs=0.11)
    header = " ".join(el.text or "" for el in root.iter(f"{SVG}text"))
    assert "nobody hosts this run since +5.000s" in header


@pytest.mark.timeout(120)
def test_O1_P3_the_run_page_of_a_run_whose_worker_was_killed_shows_the_owner_gone(
    db: Target, tmp_path: Path
) -> None:
    """kill -9 of the worker hosting a run: the run page's chart stops its
    running step at the runtime's last renewal and hatches the rest."""
    folder = tmp_path / "marks"
    folder.mkdir()
    worker = Worker(db, tmp_path / "worker.log", "tests.cli_workflows")
    try:
        wait_until(lambda: "serving" in worker.log.read_text(), timeout=DEADLINE)
        started = CliRunner().invoke(
            cli, ["--db", str(db), "start", "tests.cli_workflows:long_job", f'"{folder}"', '"gone"']
        )
        assert started.exit_code == 0, started.output
        run_id = started.stdout.strip()
        wait_until((folder / "gone.started").exists, timeout=DEADLINE)
    finally:
        worker.kill()
    with dashboard(db) as client:
        page = client.get(f"/runs/{run_id}").text
    found = re.search(r'<svg id="timeline".*?</svg>', page, re.S)
    assert found, page
    root = parse(found.group(0))
    assert root.get("data-status") == "RUNNING"
    gone = marks(root, "owner-gone")
    assert len(gone) == 2, found.group(0)  # the run's row and its running step's lane
    (bar,) = marks(root, "attempt")
    assert bar.get("data-outcome") == "running"
    assert t(gone[0]) >= t(bar)
    assert "a worker will resume it" in title(gone[0])
    assert t(gone[0], "data-t-end") > t(gone[0])


def test_O1_a_live_owners_run_has_no_owner_gone_mark() -> None:
    root = _open_step().chart(RunState.RUNNING, now=30)
    assert marks(root, "owner-gone") == []
    (bar,) = marks(root, "attempt")
    plot_right = max(float(g.get("x2") or 0) for g in root.iter(f"{SVG}line"))
    assert _right(_rect(bar)) == pytest.approx(plot_right, abs=0.2)


def _legend(root: ET.Element) -> dict[str, ET.Element]:
    return {
        g.get("data-key") or "": g
        for g in root.iter(f"{SVG}g")
        if (g.get("class") or "") == "tl-key"
    }


def test_O1_the_legend_names_every_mark_and_its_ticks_differ() -> None:
    root = _open_step().chart(RunState.RUNNING, now=30)
    key = _legend(root)
    for wanted in ("ignored", "tl-scope", "created", "claimed", "started", "resumed"):
        assert wanted in key, sorted(key)
    assert "reexecuted" in key
    assert "cancel" in (key["ignored"].findtext(f"{SVG}text") or "")
    # A heartbeat is a line; created and claimed are not lines, nor alike.
    (beat,) = [el for el in key["tl-heartbeat"] if el.tag != f"{SVG}text"]
    assert beat.tag == f"{SVG}line"
    shapes = {k: key[k].find(f"{SVG}path") for k in ("created", "claimed", "resumed", "reexecuted")}
    ds = {k: (p.get("d") if p is not None else None) for k, p in shapes.items()}
    assert None not in ds.values()
    assert len(set(ds.values())) == 4, ds
    for k in ("created", "claimed"):
        assert not re.fullmatch(r"M0,-?\d+ L0,-?\d+", ds[k] or ""), ds[k]


def _style(root: ET.Element) -> dict[str, str]:
    """Each ``tl-*`` class's declarations, from the chart's own style."""
    text = root.findtext(f"{SVG}style") or ""
    return {m[0]: m[1] for m in re.findall(r"#timeline \.(tl-[\w.-]+)\{([^}]*)\}", text)}


def _colours(declarations: str) -> set[str]:
    return set(re.findall(r"#[0-9a-fA-F]{3,6}\b", declarations))


def _cancel_to_step_and_body() -> HandLog:
    log = HandLog()
    log.add(_E.RUN_CREATED, 0, workflow="hand")
    log.add(_E.STEP_STARTED, 1, 0, 1)
    log.add(_E.STEP_STARTED, 1, 1, 1)
    log.add(_E.CANCEL_REQUESTED, 2, reason="stop")
    log.add(_E.CANCEL_DELIVERED, 2.5, 0, 1)
    log.add(_E.STEP_CANCELLED, 3, 0, 1)
    log.add(_E.CANCEL_DELIVERED, 3.5)
    log.add(_E.STEP_COMPLETED, 6, 1, 1)
    log.add(_E.RUN_CANCELLED, 7, reason="stop")
    return log


def test_O1_C1_a_cancel_delivered_stands_out_and_a_steps_line_stays_on_its_lane() -> None:
    root = _cancel_to_step_and_body().chart(RunState.CANCELLED, now=7)
    style = _style(root)
    delivered = _colours(style["tl-cancel-delivered"])
    assert delivered
    bars = ("completed", "failed", "cancelled", "timed_out", "abandoned", "running", "waiting")
    for cls in (*(f"tl-{b}" for b in bars), "tl-other", "tl-cancel-requested"):
        assert not delivered & _colours(style[cls]), cls
    to_step, to_body = sorted(marks(root, "cancel-delivered"), key=t)
    assert to_step.get("data-call") == "0"
    assert to_body.get("data-call") is None
    (step_bar,) = [b for b in marks(root, "attempt") if b.get("data-call") == "0"]
    lane_top = float(_rect(step_bar).get("y") or 0) - 5
    (line,) = to_step.iter(f"{SVG}line")
    assert float(line.get("y1") or 0) >= lane_top
    assert float(line.get("y2") or 0) <= lane_top + 22
    (body_line,) = to_body.iter(f"{SVG}line")
    assert float(body_line.get("y1") or 0) <= 42
    assert float(body_line.get("y2") or 0) > lane_top + 22  # past both lanes


def test_O1_S1_a_shield_inside_a_step_is_drawn_over_its_bar() -> None:
    log = HandLog()
    log.add(_E.STEP_STARTED, 1, 0, 1)
    log.add(_E.SHIELD_ENTERED, 2, 0, 1, depth=0)
    log.add(_E.SHIELD_EXITED, 3, 0, 1)
    log.add(_E.STEP_COMPLETED, 4, 0, 1)
    root = log.chart(RunState.COMPLETED, now=4)
    order = [el.get("data-kind") for el in root.iter(f"{SVG}g") if el.get("data-kind")]
    assert order.index("attempt") < order.index("shield") < order.index("shield-exited")
    (shield_span,) = marks(root, "shield")
    assert "tl-over" in (_rect(shield_span).get("class") or "")
    assert "stroke:" in _style(root)["tl-shield.tl-over"]  # an outline over the bar


def test_O1_the_axis_marks_where_time_is_stretched() -> None:
    log = HandLog()
    log.add(_E.RUN_CREATED, 0, workflow="hand")
    log.add(_E.STEP_STARTED, 0, 0, 1)
    log.add(_E.CANCEL_REQUESTED, 100, reason="stop")
    log.add(_E.CANCEL_DELIVERED, 100.0005, 0, 1)
    log.add(_E.STEP_CANCELLED, 100.001, 0, 1)
    log.add(_E.RUN_CANCELLED, 100.002, reason="stop")
    root = log.chart(RunState.CANCELLED, now=100.002)
    bands = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "") == "tl-scale"]
    around = [b for b in bands if t(b) <= 100.0005 <= t(b, "data-t-end")]
    assert around, [(t(b), t(b, "data-t-end")) for b in bands]
    assert "stretched" in title(around[0])
    # The long quiet stretch of the step is not marked.
    assert not [b for b in bands if t(b) < 50 < t(b, "data-t-end")]


def test_O1_the_chart_keeps_a_minimum_width_and_scrolls_sideways() -> None:
    root = _open_step().chart(RunState.RUNNING, now=3)
    assert "min-width:900px" in (root.findtext(f"{SVG}style") or "")
    css = (Path(__file__).parent.parent / "cli/web/static/dashboard.css").read_text()
    assert re.search(r"#timeline-section\s*\{[^}]*overflow-x:\s*auto", css)
    assert re.search(r"#timeline-section svg\s*\{[^}]*min-width:\s*900px", css)
