"""The run page's timeline chart (DESIGN O1) of hand-built logs: what no live run
writes at will (5,000 calls, a defect, a clock that went back) and bad arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.web._timeline import build_timeline
from cli.web._timeline_svg import timeline_svg
from persistence import EventRecord, EventType
from tests.timeline_charts import marks, parse, synthetic_run, t, title

pytestmark = pytest.mark.timeout(60)


def test_O1_a_run_of_5000_calls_renders_a_bounded_chart_keeping_what_matters(
    tmp_path: Path,
) -> None:
    run, events = synthetic_run(5000)
    for n, call in enumerate((1000, 1234, 2000, 3000), start=len(events) + 1):
        delivered = EventRecord(
            seq=n,
            run_id=run.run_id,
            run_seq=n,
            ts=run.created_at + 5000,
            type=EventType.CANCEL_DELIVERED,
            step="work",
            call=call,
            attempt=1,
            data={},
        )
        events.append(delivered)
    model = build_timeline(run, events, [], now=run.created_at + 10_000)
    assert len(model.lanes) == 60
    assert model.hidden is not None
    assert model.hidden.count == 5000 - 60
    assert model.hidden.marks == 3  # those of calls not drawn go with them
    shown = {lane.call for lane in model.lanes}
    assert {1234, 4999} <= shown  # the failed call and the one still running are drawn
    svg = str(timeline_svg(run, events, [], now=run.created_at + 10_000))
    root = parse(svg)
    assert len(marks(root, "attempt")) == 61  # 60 lanes, one with a retry
    (delivered,) = marks(root, "cancel-delivered")
    assert delivered.get("data-call") == "1234"
    (summary,) = [el for el in root.iter() if el.get("data-count") == str(5000 - 60)]
    assert "3 marks of theirs" in title(summary)
    assert len(svg) < 200_000
    (tmp_path / "big.svg").write_text(svg)


def test_O1_an_empty_log_and_a_defect_render_without_error() -> None:
    run, events = synthetic_run(2)
    empty = parse(str(timeline_svg(run, [], [], now=run.created_at + 1)))
    assert [el for el in empty.iter() if el.get("data-kind") == "attempt"] == []
    broken = [
        EventRecord(
            seq=900,
            run_id=run.run_id,
            run_seq=900,
            ts=run.created_at + 2,
            type=EventType.CANCEL_REQUESTED,
            step=None,
            call=None,
            attempt=None,
            data={},
            defect="data is not JSON (Expecting value)",
        )
    ]
    root = parse(str(timeline_svg(run, events + broken, [], now=run.created_at + 3)))
    (defect,) = marks(root, "defect")
    assert "not JSON" in title(defect)
    assert len(marks(root, "cancel-requested")) == 1  # still drawn, what there is of it


def test_O1_marks_keep_the_log_order_when_a_clock_went_back() -> None:
    run, events = synthetic_run(1)
    late = events[-1]
    skewed = [
        *events,
        EventRecord(
            seq=late.seq + 1,
            run_id=run.run_id,
            run_seq=late.run_seq + 1,
            ts=run.created_at - 50,
            type=EventType.CANCEL_REQUESTED,
            step=None,
            call=None,
            attempt=None,
            data={"reason": "from a host behind", "source": "cli"},
        ),
    ]
    root = parse(str(timeline_svg(run, skewed, [], now=run.created_at + 5)))
    (requested,) = marks(root, "cancel-requested")
    assert t(requested) >= max(t(b) for b in marks(root, "attempt"))


def test_O1_max_lanes_below_one_is_refused() -> None:
    run, events = synthetic_run(1)
    with pytest.raises(ValueError, match="max_lanes"):
        build_timeline(run, events, [], now=run.created_at, max_lanes=0)
