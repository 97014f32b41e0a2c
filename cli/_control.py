"""``proctor cancel``, ``terminate`` and ``start``: requests written into the store.

They write the same records as the in-process API (``persistence``'s request
builders), in one transaction each; the runtime that owns the run notices
them through its ControlInbox. With no runtime alive, terminate still takes
effect at once (T1) and a cancel waits, recorded, for the worker that picks
the run up.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import time
import uuid
from typing import Any

import click

from cli import _render as render
from cli._main import (
    EXIT_CODES_HELP,
    EXIT_WAIT_TIMED_OUT,
    AlreadyFinishedError,
    RunNotFoundError,
    StoreOptions,
    cli,
    fail,
    open_store,
)
from cli._runs import follow_run
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_VALUE_DEPTH,
    Appended,
    AppendOutcome,
    EventRecord,
    EventType,
    NewEvent,
    NotSerializable,
    Refused,
    RunRecord,
    RunState,
    Store,
    cancel_request,
    check_reason,
    dumps,
    roundtrip_arguments,
)

_SECONDS = click.FloatRange(min=0)
_TIMEOUT_HELP = "With --wait: give up after this many seconds (exit 5)."


def _origin() -> str:
    return f"cli-{os.getpid()}"


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--reason", help="Why; recorded in the log and shown by `runs status`.")
@click.option(
    "--wait", is_flag=True, help="Show the run's progress and return once it is terminal."
)
@click.option(
    "--timeout", type=_SECONDS, help="With --wait: give up after this many seconds (exit 5)."
)
@click.option(
    "--grace",
    type=_SECONDS,
    help="Terminate the run if it is not finished this many seconds after the request.",
)
@click.pass_obj
def cancel(
    options: StoreOptions,
    *,
    run_id: str,
    reason: str | None,
    wait: bool,
    timeout: float | None,
    grace: float | None,
) -> None:
    """Ask a run to cancel: its code meets the request at its next checkpoint.

    The run is durably CANCELLING when this returns. A shielded section of the
    run finishes first. Cancel of a run nobody hosts right now is honoured
    when a worker picks it up; --grace counts from now either way (the owning
    runtime enforces it; with --wait, so does this command).
    """
    start = time.monotonic()
    reason = _checked_reason(reason)
    with open_store(options, write=True) as store:
        event = cancel_request(run_id, reason, source="cli", origin=_origin(), grace=grace)
        outcome = store.append([event])[0]
        appended = _accepted(outcome, run_id, "cancel")
        if appended.changed:
            click.echo(f"cancel requested: run {run_id} is now cancelling")
        else:
            click.echo(f"run {run_id} is already cancelling; the repeated request is logged")
        if wait:
            grace_at = None if grace is None else start + grace
            timeout_at = None if timeout is None else start + timeout
            final = _wait(store, run_id, timeout_at, grace_at, reason, after=appended.run_seq)
            if final is None:
                status = store.get_run(run_id).status
                fail(
                    f"run {run_id} is still {status} after {timeout}s; the cancel stays requested",
                    EXIT_WAIT_TIMED_OUT,
                )
            click.echo(f"run {run_id} is {final.status}")


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--reason", help="Why; recorded in the log and shown by `runs status`.")
@click.pass_obj
def terminate(options: StoreOptions, run_id: str, reason: str | None) -> None:
    """Stop a run and its child runs at once; their code gets no say.

    The run is durably TERMINATED when this returns, whether or not a runtime
    hosts it; a hosting runtime stops its actors right after. No shield, no
    CancellationError, no further step.
    """
    reason = _checked_reason(reason)
    with open_store(options, write=True) as store:
        children = _terminate_tree(store, run_id, reason, source="cli")
    more = f" with {children} child run{'s' if children != 1 else ''}" if children else ""
    click.echo(f"run {run_id} terminated{more}")


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("target", metavar="MODULE:WORKFLOW")
@click.argument("json_args", nargs=-1, metavar="[JSON_ARGS]...")
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments, as one JSON object."
)
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its result.")
@click.option(
    "--timeout", type=_SECONDS, help="With --wait: give up after this many seconds (exit 5)."
)
@click.pass_obj
def start(
    options: StoreOptions,
    *,
    target: str,
    json_args: tuple[str, ...],
    kwargs_json: str | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Create a run of a workflow for a worker to pick up; print its id.

    Each argument is one JSON value: 42, '"text"', '["a", "b"]'. The module is
    imported (from the current directory too) to check that the workflow
    exists and that the arguments fit it. A `proctor worker` that imports
    the same module runs it.
    """
    name, fn = _resolve(target)
    args = [_parse_json(text, f"argument {i}") for i, text in enumerate(json_args, 1)]
    kwargs = _parse_json(kwargs_json, "--kwargs") if kwargs_json is not None else {}
    if not isinstance(kwargs, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--kwargs")
    try:
        # D4, as Runtime.start(): NaN, Infinity, 1e999, too deep, over a
        # runtime's default payload limit: refused, nothing written.
        args_in, kwargs = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {name}", limit=DEFAULT_MAX_PAYLOAD_BYTES
        )
    except NotSerializable as exc:
        raise click.BadParameter(str(exc), param_hint="[JSON_ARGS]...") from exc
    args = list(args_in)
    try:
        inspect.signature(fn).bind(*args, **kwargs)
        dumps([args, kwargs], what=f"arguments of workflow {name}")  # D4: depth too
    except TypeError as exc:  # NotSerializable is one
        raise click.UsageError(f"the arguments do not fit workflow {name}: {exc}") from exc
    run_id = uuid.uuid4().hex
    created = NewEvent(
        run_id=run_id,
        type=EventType.RUN_CREATED,
        data={"workflow": name, "args": args, "kwargs": kwargs, "owner": None},
    )
    with open_store(options, write=True, create=True) as store:
        outcome = store.append([created])[0]
        if isinstance(outcome, Refused):
            fail(f"run {run_id} was not created: {outcome.reason}")
        click.echo(run_id)
        click.echo(f"started run {run_id} of {name}; a worker will pick it up", err=True)
        if not wait:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        final = follow_run(store, run_id, lambda _e: None, deadline=deadline)
    if final is None:
        fail(f"run {run_id} did not finish within {timeout}s", EXIT_WAIT_TIMED_OUT)
    if final.status is not RunState.COMPLETED:
        fail(f"run {run_id} ended {final.status}{_why(final)}")
    click.echo(dumps(final.result))


# -- helpers ------------------------------------------------------------------------------


def _accepted(outcome: AppendOutcome, run_id: str, verb: str) -> Appended:
    """The request was recorded, or exit 3 (no such run) / 4 (already finished)."""
    if isinstance(outcome, Appended):
        return outcome
    if outcome.status is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    raise AlreadyFinishedError(
        f"run {run_id} already finished: {outcome.status}; {verb} changed nothing"
    )


def _terminate_tree(store: Store, run_id: str, reason: str | None, *, source: str) -> int:
    """T1 and T4, in one transaction: the run and each unfinished descendant.

    Returns how many descendants this terminated.
    """
    outcome, terminated = store.terminate_tree(run_id, reason, source=source, origin=_origin())
    _accepted(outcome, run_id, "terminate")
    return len(terminated)


def _wait(
    store: Store,
    run_id: str,
    timeout_at: float | None,
    grace_at: float | None,
    reason: str | None,
    *,
    after: int,
) -> RunRecord | None:
    """Follow the run until it is terminal; terminate it when the grace ends (C8)."""
    out = render.console()
    seen = after

    def emit(event: EventRecord) -> None:
        nonlocal seen
        seen = event.run_seq
        out.print(render.event_line(event))

    while True:
        deadline = min((d for d in (timeout_at, grace_at) if d is not None), default=None)
        final = follow_run(store, run_id, emit, after=seen, deadline=deadline)
        if final is not None:
            return final
        if grace_at is None or time.monotonic() < grace_at:
            return None  # the timeout came first
        grace_at = None
        why = f"cancel grace expired ({reason})" if reason else "cancel grace expired"
        click.echo(f"grace is over: terminating run {run_id}")
        # It may have finished meanwhile, or its runtime's own grace timer fired.
        with contextlib.suppress(AlreadyFinishedError):
            _terminate_tree(store, run_id, why, source="grace")


_HINT = "MODULE:WORKFLOW"


def _resolve(target: str) -> tuple[str, Any]:
    """MODULE:WORKFLOW -> (the workflow's registered name, its body function)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(
            "expected MODULE:WORKFLOW, e.g. shop.workflows:order", param_hint="MODULE:WORKFLOW"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the project's own modules
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise click.BadParameter(
            f"cannot import {module_name}: {exc}", param_hint="MODULE:WORKFLOW"
        ) from exc
    obj = getattr(module, attr, None)
    fn, name = getattr(obj, "fn", None), getattr(obj, "name", None)
    if obj is None or not isinstance(name, str) or not inspect.iscoroutinefunction(fn):
        raise click.BadParameter(f"{target} is not a @workflow()", param_hint=_HINT)
    return name, fn


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{text!r} is not JSON ({exc.msg}); quote strings, e.g. '\"text\"'", param_hint=what
        ) from exc
    except RecursionError as exc:
        raise click.BadParameter(
            f"nested deeper than a value may be ({MAX_VALUE_DEPTH} levels)", param_hint=what
        ) from exc


def _checked_reason(reason: str | None) -> str | None:
    """``--reason`` as the log keeps it, or a usage error (exit 2)."""
    try:
        return check_reason(reason, "--reason")
    except NotSerializable as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from exc


def _why(record: RunRecord) -> str:
    if record.error:
        return f": {record.error.get('type')}: {record.error.get('message')}"
    reason = (
        record.cancel_reason if record.status is RunState.CANCELLED else record.terminate_reason
    )
    return f": {reason}" if reason else ""
