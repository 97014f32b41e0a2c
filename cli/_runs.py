"""``proctor runs ...``: the group, and its read-only views of runs (list, status,
logs, tree), which never create or change anything. Its writing commands live
in their own modules: ``runs restart`` (``cli._restart``), ``runs prune``
(``cli._prune``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click
from rich.text import Text

from cli import _exits
from cli import _render as render
from cli._call_cancels import call_cancel_line, call_cancels, cancelled_by_code
from cli._event_view import event_line
from cli._main import (
    StoreOptions,
    cli,
    interrupted,
    open_store,
)
from cli._owner import owner_line, owner_state
from cli._reused import reused_calls, reused_table
from cli._scope_view import scope_line, scope_of_calls, scopes
from cli._signal_view import signal_rows, signal_state
from cli._text import clean, plain
from cli._timeouts import run_deadline_of, timeout_json, timeout_line
from cli._tree_calls import (
    body_call_json,
    body_call_label,
    body_calls,
    handle_cancel_note,
    handle_cancels,
    timer_line,
)
from cli._wrapping import copyable
from persistence import (
    EventRecord,
    EventType,
    RunRecord,
    RunState,
    Store,
    follow_run,
    pending_timers,
)


@cli.group()
def runs() -> None:
    """Inspect, restart and prune runs: list, status, logs, tree; restart a
    finished run as a new one; prune old finished runs."""


@runs.command(epilog=_exits.READ_ONE)
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(options: StoreOptions, run_id: str, as_json: bool) -> None:
    """Show a run: state, args, outcome, steps, pending cancel and signals, parent, children."""
    with open_store(options) as store:
        run = store.get_run(run_id)
        steps = store.steps(run_id)
        children = store.list_runs(parent_run_id=run_id)
        events = store.events(run_id)
        cancel = _cancel_state(run, events)
        retries = _pending_retries(events)
        timers = [] if run.status.is_terminal else pending_timers(events)
        owner = owner_state(run, store.runtimes())
        restarted_as = store.restarted_as(run_id)
    signals = signal_state(run, events)
    deadline, now = run_deadline_of(events), time.time()
    if as_json:
        render.echo_json(
            {
                "run": run.to_json(),
                "owner": owner,
                "cancel": cancel,
                "timeout": timeout_json(deadline, now),
                "pending_retries": retries,
                "pending_timers": timers,
                "call_cancels": call_cancels(events),
                "scopes": scopes(events),
                "cancelled_by_code": cancelled_by_code(run, events),
                "steps": [s.to_json() for s in steps],
                "reused_calls": reused_calls(events),
                "children": [_brief(c) for c in children],
                "restarted_as": restarted_as,
                "signals": signals,
            }
        )
        return
    out = render.console()
    rows: list[tuple[str, Text | str]] = [
        ("run", copyable(run.run_id)),
        ("workflow", plain(run.workflow)),
        ("status", render.status_text(run.status, owner_dead=owner["alive"] is False)),
        *([("bad row", plain(f"cannot be read: {run.defect}"))] if run.defect else []),
        ("args", plain(_json_args(run))),
        ("created", render.when(run.created_at)),
        ("started", render.when(run.started_at)),
        ("finished", render.when(run.finished_at)),
        ("duration", render.duration(run.started_at, run.finished_at)),
        ("owner", plain(owner_line(run, owner))),
    ]
    if run.status is RunState.COMPLETED:
        rows.append(("result", plain(json.dumps(run.result, ensure_ascii=False))))
    if run.error:
        rows.append(("error", plain(render.error_text(run.error))))
    if deadline is not None:
        rows.append(("timeout", plain(timeout_line(deadline, run.status, now))))
    if cancel["requested"]:
        rows.append(("cancel", plain(_cancel_line(cancel))))
    by_code = cancelled_by_code(run, events)
    if by_code is not None:
        rows.append(("cancelled", plain(by_code)))
    if run.terminate_requested_at is not None:
        rows.append(("terminated", plain(run.terminate_reason or "(no reason given)")))
    if run.parent_run_id:
        rows.append(("parent", copyable(run.parent_run_id)))
    rows.extend(
        (key, plain(value)) for key, value in render.restart_rows(run, restarted_as, events)
    )
    rows.extend((key, plain(value)) for key, value in signal_rows(signals))
    for retry in retries:
        line = (
            f"step {retry['step']} #{retry['call']} attempt {retry['attempt']} at "
            f"{render.when(retry['retry_at'])} (after {retry['after']})"
        )
        rows.append(("next retry", plain(line)))
    rows.extend(("timer", plain(timer_line(timer))) for timer in timers)
    rows.extend(("call cancel", plain(call_cancel_line(c))) for c in call_cancels(events))
    rows.extend(("scope", plain(scope_line(s))) for s in scopes(events))
    rows.extend(
        ("bad row", plain(f"step #{s.call}.{s.attempt} cannot be read: {s.defect}"))
        for s in steps
        if s.defect is not None
    )
    out.print(render.key_values(rows))
    if reused := reused_calls(events):
        out.print()
        out.print(reused_table(reused))
    if steps:
        out.print()
        out.print(render.steps_table(steps))
    if children:
        out.print()
        out.print(render.runs_table(children))


@runs.command(epilog=_exits.LOGS)
@click.argument("run_id")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing new events until the run is terminal."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def logs(options: StoreOptions, run_id: str, follow: bool, as_json: bool) -> None:
    """Print the run's event log in order; --follow streams it until the run ends.

    Ctrl-C stops following (exit 130); the run is not affected.
    """
    emit = _emitter(as_json)
    with open_store(options) as store:
        store.get_run(run_id)
        if follow:
            with interrupted(f"stopped following run {run_id}; the run goes on"):
                follow_run(store, run_id, emit)
        else:
            for event in store.events(run_id):
                emit(event)


@runs.command(epilog=_exits.READ_ONE)
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as nested JSON.")
@click.pass_obj
def tree(options: StoreOptions, run_id: str, as_json: bool) -> None:
    """Draw the run's supervision tree: its calls (step attempts, child runs,
    timers, signal waits) with their states, and its timeout."""
    with open_store(options) as store:
        root = store.get_run(run_id)
        if as_json:
            render.echo_json(_tree_json(store, root))
            return
        node = render.new_tree(root)
        for key, value in render.restart_rows(root, store.restarted_as(run_id), []):
            node.add(plain(f"{key} {value}"))
        _grow(store, root, node)
    render.console().print(node)


# -- helpers ------------------------------------------------------------------------------


def _emitter(as_json: bool) -> Callable[[EventRecord], None]:
    if as_json:
        return lambda e: render.echo_json(e.to_json())
    out = render.console()
    return lambda e: out.print(event_line(e))


def _json_args(run: RunRecord) -> str:
    if run.defect and any(p.startswith(("args", "kwargs")) for p in run.defect.split("; ")):
        return "(cannot be read)"
    text = json.dumps(run.args, ensure_ascii=False)
    if run.kwargs:
        text += " " + json.dumps(run.kwargs, ensure_ascii=False)
    return text


def _brief(run: RunRecord) -> dict[str, Any]:
    return {"run_id": run.run_id, "workflow": run.workflow, "status": run.status.value}


def _cancel_state(run: RunRecord, events: list[EventRecord]) -> dict[str, Any]:
    """Is a cancel pending, and is a shield holding it back (S1-S2)?

    The body's shield depth and each running step's come from the
    ``shield_entered``/``shield_exited`` records, which carry the depth.
    """
    depth: dict[tuple[int | None, int | None], int] = {}
    delivered = False
    for e in events:
        if e.type in (EventType.SHIELD_ENTERED, EventType.SHIELD_EXITED):
            depth[(e.call, e.attempt)] = int(e.data.get("depth", 0))
        elif e.type is EventType.CANCEL_DELIVERED and e.step is None:
            delivered = True
    pending = run.status is RunState.CANCELLING
    running_steps = {
        (e.call, e.attempt): e.step for e in events if e.type is EventType.STEP_STARTED
    }
    for e in events:
        if e.type.value.startswith("step_") and e.type is not EventType.STEP_STARTED and e.attempt:
            running_steps.pop((e.call, e.attempt), None)
    buffered_by = []
    if pending:
        if depth.get((None, None), 0) > 0:
            buffered_by.append("workflow body")
        for key, name in running_steps.items():
            if depth.get(key, 0) > 0:
                buffered_by.append(f"step {name} #{key[0]}.{key[1]}")
    return {
        "requested": run.cancel_requested_at is not None,
        "pending": pending,
        "delivered_to_body": delivered,
        "reason": run.cancel_reason,
        "source": run.cancel_source,
        "requested_at": run.cancel_requested_at,
        "grace": run.cancel_grace,
        "buffered_by": buffered_by,
    }


def _cancel_line(cancel: dict[str, Any]) -> str:
    reason = cancel["reason"] or "(no reason given)"
    line = f"{reason} (from {cancel['source']}, {render.when(cancel['requested_at'])}"
    if cancel["grace"] is not None:
        line += f", grace {cancel['grace']}s"
    line += ")"
    if cancel["pending"]:
        line += "; pending"
        if cancel["buffered_by"]:
            line += ", buffered by a shield in " + ", ".join(cancel["buffered_by"])
    return line


def _pending_retries(events: list[EventRecord]) -> list[dict[str, Any]]:
    """Attempts a supervisor has scheduled (SV1) that have not started yet."""
    started = {(e.call, e.attempt) for e in events if e.type is EventType.STEP_STARTED}
    return [
        {
            "call": e.call,
            "step": e.step,
            "attempt": e.attempt,
            "retry_at": e.data.get("retry_at"),
            "after": e.data.get("after"),
        }
        for e in events
        if e.type is EventType.STEP_RETRY_SCHEDULED and (e.call, e.attempt) not in started
    ]


def _restarts(events: list[EventRecord]) -> dict[tuple[int | None, int | None], str]:
    """Why each restarted attempt was started: the failure or the sibling before it."""
    return {
        (e.call, e.attempt): str(e.data.get("after"))
        for e in events
        if e.type is EventType.STEP_RETRY_SCHEDULED
    }


def _grow(store: Store, run: RunRecord, node: render.Tree) -> None:
    children = {c.run_id: c for c in store.list_runs(parent_run_id=run.run_id)}
    events = store.events(run.run_id)
    restarts = _restarts(events)
    cancels = handle_cancels(events)
    if (deadline := run_deadline_of(events)) is not None:
        node.add(plain(f"timeout {timeout_line(deadline, run.status, time.time())}"))
    in_scope = scope_of_calls(events)
    for e in events:
        if e.type is EventType.CALL_REUSED:
            label = Text(f"{e.data.get('kind')} {clean(e.step or '')} #{e.call} ")
            label.append("reused", style="cyan")
            label.append(f" from run {clean(str(e.data.get('from_run')))} ({e.data.get('end')})")
            node.add(label)
    for kind, call, item in _calls(store, run, children, events):
        if kind == "body":
            label = body_call_label(item)
            if call in in_scope:
                label.append(f"  in scope {in_scope[call]}", style="cyan")
            node.add(label)
        elif kind == "step":
            label = Text(f"step {clean(item.name)} #{call} attempt {item.attempt} ")
            label.append(item.status.value, style=render.step_style(item.status.value))
            label.append(handle_cancel_note(cancels.get(call)), style="yellow")
            if (call, item.attempt) in restarts:
                after = clean(restarts[(call, item.attempt)])
                label.append(f"  restarted after {after}", style="yellow")
            if call in in_scope:
                label.append(f"  in scope {in_scope[call]}", style="cyan")
            node.add(label)
        else:
            child = render.tree_node(item)
            if call in in_scope:
                child.append(f"  in scope {in_scope[call]}", style="cyan")
            _grow(store, item, node.add(child))
    for retry in _pending_retries(events):
        label = Text(f"step {clean(retry['step'])} #{retry['call']} attempt {retry['attempt']} ")
        label.append("retry scheduled", style="yellow")
        label.append(f" at {render.when(retry['retry_at'])} (after {clean(retry['after'])})")
        node.add(label)


def _calls(
    store: Store, run: RunRecord, children: dict[str, RunRecord], events: list[EventRecord]
) -> list[tuple[str, int, Any]]:
    """The run's step attempts, child runs, timers and signal waits, in call order."""
    items: list[tuple[str, int, Any]] = [("step", s.call, s) for s in store.steps(run.run_id)]
    ended = run.status.is_terminal
    items.extend(("body", c.call, c) for c in body_calls(events, run_ended=ended))
    for child_id, child in children.items():
        call = int(child_id.rsplit(".", 1)[1]) if child_id.startswith(f"{run.run_id}.") else -1
        items.append(("child", call, child))
    items.sort(
        key=lambda item: (item[1], 0 if item[0] == "step" else 1, getattr(item[2], "attempt", 0))
    )
    return items


def _tree_json(store: Store, run: RunRecord) -> dict[str, Any]:
    children = {c.run_id: c for c in store.list_runs(parent_run_id=run.run_id)}
    events = store.events(run.run_id)
    cancels = handle_cancels(events)
    in_scope = scope_of_calls(events)
    nodes = []
    for kind, call, item in _calls(store, run, children, events):
        if kind == "body":
            nodes.append({**body_call_json(item), "scope": in_scope.get(call)})
        elif kind == "step":
            nodes.append(
                {
                    "kind": "step",
                    "call": call,
                    "name": item.name,
                    "attempt": item.attempt,
                    "status": item.status.value,
                    "handle_cancel": cancels.get(call),
                    "scope": in_scope.get(call),
                }
            )
        else:
            nodes.append(
                {
                    "kind": "run",
                    "call": call,
                    "scope": in_scope.get(call),
                    **_tree_json(store, item),
                }
            )
    reused = [
        {"kind": "reused", "call": e.call, "name": e.step, "from_run": e.data.get("from_run")}
        for e in events
        if e.type is EventType.CALL_REUSED
    ]
    links = {"restarted_from": run.restarted_from, "restarted_as": store.restarted_as(run.run_id)}
    timeout = {"timeout": timeout_json(run_deadline_of(events), time.time())}
    return {**_brief(run), **links, **timeout, "children": [*reused, *nodes]}
