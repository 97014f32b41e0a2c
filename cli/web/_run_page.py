"""The run page ``/runs/{run_id}``: header, timeline, supervision tree, event log, values.

Invariants: it reads the run, its log, its step attempts, its descendants
and the runtimes in one read-only connection, and writes nothing; an unknown
run id is a 404 page saying so (the CLI's words). ``/live/runs/{run_id}``
answers the page's changing part alone, for its live refresh; the action
forms stay outside that part, so a refresh never clears what the user types.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cli._owner import owner_state
from cli.web import _flash
from cli.web._state import Dashboard, dashboard_of
from cli.web._timeline_svg import timeline_svg
from persistence import (
    EventRecord,
    EventType,
    RunRecord,
    RuntimeRecord,
    StepRecord,
    Store,
    StoreError,
)

#: Records another process writes into a run's log: no sign of its owner's life.
_WRITTEN_BY_OTHERS = frozenset(
    {
        EventType.RUN_CREATED,
        EventType.CANCEL_REQUESTED,
        EventType.TERMINATE_REQUESTED,
        EventType.SIGNAL_SENT,
    }
)


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A run of the supervision tree and its child runs."""

    run: RunRecord
    children: list[TreeNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunView:
    """Everything the run page shows, read at one moment."""

    run: RunRecord
    events: list[EventRecord]
    steps: list[StepRecord]
    tree: TreeNode
    owner: dict[str, Any]
    timeline: Markup


def tree_of(run: RunRecord, descendants: list[RunRecord]) -> TreeNode:
    """The run's descendants as a tree (by ``parent_run_id``), oldest child first."""
    nodes = {r.run_id: TreeNode(r) for r in [run, *descendants]}
    for r in sorted(descendants, key=lambda d: (d.created_at, d.run_id)):
        parent = nodes.get(r.parent_run_id or "")
        if parent is not None and r.run_id != run.run_id:
            parent.children.append(nodes[r.run_id])
    return nodes[run.run_id]


def owner_gone_at(
    run: RunRecord,
    owner: dict[str, Any],
    runtimes: list[RuntimeRecord],
    events: list[EventRecord],
    steps: list[StepRecord],
) -> float | None:
    """When the dead owner of a run still going last showed life (epoch seconds),
    or None when its owner is alive, unknown, or the run is finished.

    The latest of its runtime's last renewal (``heartbeat_at``), stop or
    start, the run's records its owner writes (not a request or a signal
    another process writes) and its steps' heartbeats.
    """
    if owner.get("alive") is not False:
        return None
    found = next((r for r in runtimes if r.owner == run.owner), None)
    signs = [] if found is None else [found.heartbeat_at, found.stopped_at, found.started_at]
    signs += [e.ts for e in events if e.type not in _WRITTEN_BY_OTHERS]
    signs += [s.heartbeat_at for s in steps]
    return max((t for t in signs if t is not None), default=run.created_at)


def read_run(store: Store, run_id: str) -> RunView | None:
    """The run's view, or None when no run has this id."""
    with store.snapshot():
        run = store.find_run(run_id)
        if run is None:
            return None
        events = store.events(run_id)
        steps = store.steps(run_id)
        descendants = store.descendants(run_id, unfinished=False)
        runtimes = store.runtimes()
        owner = owner_state(run, runtimes)
    gone = owner_gone_at(run, owner, runtimes, events, steps)
    return RunView(
        run=run,
        events=events,
        steps=steps,
        tree=tree_of(run, descendants),
        owner=owner,
        timeline=timeline_svg(run, events, steps, now=time.time(), owner_gone_at=gone),
    )


async def run_answer(
    dashboard: Dashboard,
    run_id: str,
    template: str,
    *,
    status_code: int = 200,
    flash: list[str] | None = None,
) -> HTMLResponse:
    """The run page (or its live part) with an optional flash message; 404 when unknown."""
    try:
        view = await run_in_threadpool(dashboard.stores.read, lambda s: read_run(s, run_id))
    except StoreError as exc:
        return dashboard.problem(503, str(exc))
    if view is None:
        message = f"no run with id {run_id!r} in {dashboard.stores.shown}"
        if flash:
            return dashboard.problem(status_code if status_code != 200 else 404, flash[-1])
        return dashboard.problem(404, message)
    return dashboard.page(template, status_code, view=view, flash=flash or [])


def run_path(run_id: str) -> str:
    """The run page's path, quoted as the pages link it (Jinja's ``urlencode``)."""
    return "/runs/" + quote(run_id, safe="/")


async def run_page(request: Request) -> HTMLResponse:
    """``GET /runs/{run_id}``: the whole run page, with what an action just said, once."""
    run_id: str = request.path_params["run_id"]
    said = _flash.take_flash(request, run_id)
    page = await run_answer(dashboard_of(request), run_id, "run.html", flash=said)
    if said is not None:
        _flash.clear_flash(page)
    return page


async def run_live(request: Request) -> HTMLResponse:
    """``GET /live/runs/{run_id}``: the run page's changing part alone."""
    return await run_answer(dashboard_of(request), request.path_params["run_id"], "run_live.html")
