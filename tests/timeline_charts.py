"""Reading the timeline chart as the browser tests do, for the timeline's tests.

One concept: the SVG's DOM contract (``data-kind``, ``data-t``, ``data-seq``,
a ``<title>`` per mark) read back with ``xml.etree``, and a run's records
read from its store as the dashboard reads them; plus a hand-built log of
many calls.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from cli.web._timeline_svg import timeline_svg
from persistence import EventRecord, EventType, RunRecord, RunState, StepRecord, open_store
from tests.conftest import Target

SVG = "{http://www.w3.org/2000/svg}"


def records(db: Target, run_id: str) -> tuple[RunRecord, list[EventRecord], list[StepRecord]]:
    with open_store(db, readonly=True) as store:
        return store.get_run(run_id), store.events(run_id), store.steps(run_id)


def chart(db: Target, run_id: str, *, now: float | None = None) -> ET.Element:
    """The run's SVG, parsed (so it is well-formed XML), as the run page embeds it."""
    run, events, steps = records(db, run_id)
    svg = str(timeline_svg(run, events, steps, now=time.time() if now is None else now))
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("id") == "timeline"
    return root


def parse(svg: str) -> ET.Element:
    """Our own output, parsed: that it parses proves it well-formed XML."""
    return ET.fromstring(svg)  # noqa: S314 - the chart under test, not untrusted input


def marks(root: ET.Element, kind: str) -> list[ET.Element]:
    found = [el for el in root.iter() if el.get("data-kind") == kind]
    for el in found:  # the contract: every mark has data-t and a <title>
        assert el.get("data-t") is not None
        assert el.find(f"{SVG}title") is not None, el.attrib
    return found


def t(el: ET.Element, attr: str = "data-t") -> float:
    value = el.get(attr)
    assert value is not None, (attr, el.attrib)
    return float(value)


def order_key(el: ET.Element) -> tuple[float, int]:
    return t(el), int(el.get("data-seq") or 0)


def title(el: ET.Element) -> str:
    found = el.find(f"{SVG}title")
    assert found is not None
    return found.text or ""


def synthetic_run(calls: int) -> tuple[RunRecord, list[EventRecord]]:
    """A RUNNING run's log of ``calls`` sequential step calls, built by hand:
    call 1234 fails once and is retried, the last one is still running."""
    log = HandLog("big", workflow="bulk")
    log.add(EventType.RUN_CREATED, 0, workflow="bulk")
    log.add(EventType.RUN_STARTED, 0)
    for call in range(calls):
        at = call * 1.0
        log.add(EventType.STEP_SCHEDULED, at, call)
        log.add(EventType.STEP_STARTED, at, call, 1)
        if call == 1234:
            error = {"type": "E", "message": "x"}
            log.add(EventType.STEP_FAILED, at + 0.2, call, 1, error=error)
            log.add(EventType.STEP_RETRY_SCHEDULED, at + 0.2, call, 2, delay=0.3)
            log.add(EventType.STEP_STARTED, at + 0.5, call, 2)
            log.add(EventType.STEP_COMPLETED, at + 0.9, call, 2)
        elif call < calls - 1:
            log.add(EventType.STEP_COMPLETED, at + 0.9, call, 1)
    return log.run(RunState.RUNNING), log.events


class HandLog:
    """A run's log built by hand, one record at a time (``add``), for what a
    live run does not write at will; ``run(status)`` is its run record."""

    def __init__(self, run_id: str = "hand", *, workflow: str = "hand") -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.created = 1_800_000_000.0
        self.events: list[EventRecord] = []

    def add(
        self,
        type_: EventType,
        ts: float,
        call: int | None = None,
        attempt: int | None = None,
        step: str | None = None,
        **data: object,
    ) -> None:
        n = len(self.events) + 1
        self.events.append(
            EventRecord(
                seq=n,
                run_id=self.run_id,
                run_seq=n,
                ts=self.created + ts,
                type=type_,
                step=step if step is not None or call is None else "work",
                call=call,
                attempt=attempt,
                data=dict(data),
            )
        )

    def run(self, status: RunState, finished: float | None = None) -> RunRecord:
        return RunRecord(
            run_id=self.run_id,
            workflow=self.workflow,
            status=status,
            args=[],
            kwargs={},
            result=None,
            error=None,
            parent_run_id=None,
            owner="rt-1",
            cancel_requested_at=None,
            cancel_reason=None,
            cancel_source=None,
            cancel_grace=None,
            terminate_requested_at=None,
            terminate_reason=None,
            created_at=self.created,
            started_at=self.created,
            finished_at=None if finished is None else self.created + finished,
            last_seq=len(self.events),
        )

    def chart(self, status: RunState, *, now: float, owner_gone: float | None = None) -> ET.Element:
        """The SVG of this log, parsed; ``now`` and ``owner_gone`` in seconds
        since its creation (``owner_gone``: the dead owner's last sign of life)."""
        finished = now if status.is_terminal else None
        run = self.run(status, finished)
        at = self.created + now
        if owner_gone is None:
            return parse(str(timeline_svg(run, self.events, [], now=at)))
        svg = timeline_svg(run, self.events, [], now=at, owner_gone_at=self.created + owner_gone)
        return parse(str(svg))
