"""``proctor cancel``, ``terminate`` and ``start``: requests written into the store.

They write the same records as the in-process API (``persistence``'s request
builders), in one transaction each, through the very calls ``actors.Client``
makes (``persistence._direct``, ``Store.terminate_tree``); the runtime that owns the run notices
them through its ControlInbox. With no runtime alive, terminate still takes
effect at once (T1) and a cancel waits, recorded, for the worker that picks
the run up.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import uuid
from collections.abc import Iterator
from typing import Any

import click

from cli import _exits
from cli import _render as render
from cli import _requesting as requesting
from cli._event_view import event_line
from cli._imports import import_user_module
from cli._json_args import parse_json
from cli._main import (
    EXIT_RUN_ID_IN_USE,
    EXIT_WAIT_TIMED_OUT,
    SECONDS,
    StoreOptions,
    cli,
    fail,
    interrupted,
    open_store,
)
from cli._owner import owner_state
from cli._text import clean, json_text
from persistence import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_REASON_BYTES,
    InvalidArgument,
    NotSerializable,
    ProctorError,
    RunIdInUse,
    RunRecord,
    RunState,
    Store,
    StoreError,
    check_chosen_run_id,
    create_unowned_run,
    deadline_data,
    follow_run,
    follow_to_end,
    roundtrip_arguments,
)

_SECONDS = SECONDS
_TIMEOUT_HELP = "With --wait: give up after this many seconds (exit 5); only with --wait."
_REASON_HELP = (
    f"Why; recorded in the log and shown by `runs status`. At most {MAX_REASON_BYTES} bytes"
    " (UTF-8): a longer one is cut, and the command says so."
)


_RUN_ID_HELP = (
    "The run's id (default: a random one). Starting again with the same id, workflow and"
    " arguments prints the existing run and starts nothing; with others it exits 6."
)


def _origin() -> str:
    return requesting.origin("cli")


@cli.command(epilog=_exits.CANCEL)
@click.argument("run_id")
@click.option("--reason", help=_REASON_HELP)
@click.option(
    "--wait", is_flag=True, help="Show the run's progress and return once it is terminal."
)
@click.option("--timeout", type=_SECONDS, help=_TIMEOUT_HELP)
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
    runtime enforces it; with --wait, so does this command). Ctrl-C during
    --wait stops waiting (exit 130); the cancel stays requested.
    """
    _timeout_needs_wait(timeout, wait)
    start = time.monotonic()
    reason = _checked_reason(reason)
    with open_store(options, write=True) as store:
        appended = requesting.write_cancel(store, run_id, reason, origin=_origin(), grace=grace)
        with interrupted(f"stopped waiting; the cancel of run {run_id} stays requested"):
            _say_if_cut(reason)
            click.echo(requesting.cancel_said(run_id, appended))
            if not wait:
                return
            _say_if_unowned(store, run_id)
            grace_at = None if grace is None else start + grace
            timeout_at = None if timeout is None else start + timeout
            final = _wait(store, run_id, timeout_at, grace_at, reason, after=appended.run_seq)
        if final is None:
            status = store.get_run(run_id).status
            fail(
                f"run {run_id} is still {status} after {timeout}s; the cancel stays requested",
                EXIT_WAIT_TIMED_OUT,
            )
        click.echo(f"run {clean(run_id)} is {final.status}")


@cli.command(epilog=_exits.TERMINATE)
@click.argument("run_id")
@click.option("--reason", help=_REASON_HELP)
@click.pass_obj
def terminate(options: StoreOptions, run_id: str, reason: str | None) -> None:
    """Stop a run and its child runs at once; their code gets no say.

    The run is durably TERMINATED when this returns, whether or not a runtime
    hosts it; a hosting runtime stops its actors right after. No shield, no
    CancellationError, no further step.
    """
    reason = _checked_reason(reason)
    with open_store(options, write=True) as store:
        children = requesting.write_terminate(store, run_id, reason, origin=_origin())
    _say_if_cut(reason)
    click.echo(requesting.terminate_said(run_id, children))


@cli.command(epilog=_exits.START)
@click.argument("target", metavar="MODULE:WORKFLOW")
@click.argument("json_args", nargs=-1, metavar="[JSON_ARGS]...")
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments, as one JSON object."
)
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its result.")
@click.option("--timeout", type=_SECONDS, help=_TIMEOUT_HELP)
@click.option("--run-id", "run_id", metavar="ID", help=_RUN_ID_HELP)
@click.option(
    "--run-timeout",
    "run_timeout",
    type=_SECONDS,
    help="Seconds the run may take (B4), instead of its @workflow(timeout=...): then it"
    " is cancelled with source timeout. Counted from now, PENDING time included.",
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
    run_id: str | None,
    run_timeout: float | None,
) -> None:
    """Create a run of a workflow for a worker to pick up; print its id.

    Each argument is one JSON value: 42, '"text"', '["a", "b"]'. The module is
    imported (from the current directory too) to check that the workflow
    exists and that the arguments fit it. A `proctor worker` that imports
    the same module runs it. Ctrl-C during --wait stops waiting (exit 130);
    the run stays. With --run-id, starting again is safe: the same start
    prints the existing run; another start with that id exits 6.
    """
    _timeout_needs_wait(timeout, wait, run_timeout=True)
    if run_timeout == 0:
        raise click.BadParameter("must be a positive number of seconds", param_hint="--run-timeout")
    name, fn, workflow = _resolve(target)
    # B4: the option, else the decorator's (WorkflowDef.timeout, read by name:
    # this command does not import actors).
    seconds = run_timeout if run_timeout is not None else getattr(workflow, "timeout", None)
    grace = getattr(workflow, "cancel_grace", None)
    args = [parse_json(text, f"argument {i}") for i, text in enumerate(json_args, 1)]
    kwargs = parse_json(kwargs_json, "--kwargs") if kwargs_json is not None else {}
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
    except TypeError as exc:
        raise click.UsageError(clean(f"the arguments do not fit workflow {name}: {exc}")) from exc
    run_id = uuid.uuid4().hex if run_id is None else chosen_run_id(run_id)
    with open_store(options, write=True, create=True) as store:
        with creating():
            record, new = create_unowned_run(
                store,
                name,
                args,
                kwargs,
                run_id=run_id,
                extra=deadline_data(seconds, grace, now=time.time()),
            )
        with interrupted(f"stopped waiting; run {run_id} stays, for a worker to run"):
            click.echo(run_id)
            click.echo(
                f"started run {run_id} of {clean(name)}; a worker will pick it up"
                if new
                else f"run {run_id} of {clean(name)} already existed ({record.status}):"
                " the same start, so nothing new was started",
                err=True,
            )
            if not wait:
                return
            deadline = None if timeout is None else time.monotonic() + timeout
            final = follow_run(store, run_id, lambda _e: None, deadline=deadline)
    if final is None:
        fail(f"run {run_id} did not finish within {timeout}s", EXIT_WAIT_TIMED_OUT)
    if final.status is not RunState.COMPLETED:
        fail(f"run {run_id} ended {final.status}{_why(final)}")
    click.echo(json_text(final.result))


# -- helpers ------------------------------------------------------------------------------


def chosen_run_id(run_id: str) -> str:
    """``--run-id`` as a run id a caller may choose (A2), or a usage error (exit 2)."""
    try:
        return check_chosen_run_id(run_id)
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc), param_hint="--run-id") from exc


@contextlib.contextmanager
def creating() -> Iterator[None]:
    """Around the creation of a run nobody hosts (A2): exit 6 when the id is
    taken by another start, 1 when the store refused it otherwise."""
    try:
        yield
    except RunIdInUse as exc:
        fail(str(exc), EXIT_RUN_ID_IN_USE)
    except StoreError:
        raise  # open_store says it
    except ProctorError as exc:
        fail(str(exc))


def _timeout_needs_wait(timeout: float | None, wait: bool, *, run_timeout: bool = False) -> None:
    if timeout is not None and not wait:  # run_timeout: the command has --run-timeout too
        also = "; for a deadline of the run itself, use --run-timeout" if run_timeout else ""
        raise click.UsageError(f"--timeout only bounds --wait; add --wait, or drop --timeout{also}")


def _say_if_cut(reason: str | None) -> None:
    note = requesting.cut_note(reason)
    if note is not None:
        click.echo(note, err=True)


def _say_if_unowned(store: Store, run_id: str) -> None:
    """Before waiting: say when no runtime hosts the run, so nothing happens yet."""
    record = store.get_run(run_id)
    if record.status.is_terminal:
        return
    if record.owner is None:
        click.echo(
            f"no runtime owns run {clean(run_id)} yet: the cancel takes effect when a worker"
            " that knows its workflow picks it up",
            err=True,
        )
        return
    owner = owner_state(record, store.runtimes())
    if owner["alive"] is False:
        click.echo(
            f"no runtime owns run {clean(run_id)}: {clean(owner['why_dead'])}; the cancel"
            " takes effect when a worker that knows its workflow resumes it",
            err=True,
        )


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
    return follow_to_end(
        store,
        run_id,
        timeout_at=timeout_at,
        grace_at=grace_at,
        reason=reason,
        origin=_origin(),
        emit=lambda event: out.print(event_line(event)),
        after=after,
        on_grace=lambda: click.echo(f"grace is over: terminating run {run_id}"),
    )


_HINT = "MODULE:WORKFLOW"


def _resolve(target: str) -> tuple[str, Any, Any]:
    """MODULE:WORKFLOW -> (the workflow's registered name, its body function, the
    ``@workflow()`` object)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise click.BadParameter(
            "expected MODULE:WORKFLOW, e.g. shop.workflows:order", param_hint="MODULE:WORKFLOW"
        )
    module = import_user_module(module_name, param_hint=_HINT)
    obj = getattr(module, attr, None)
    fn, name = getattr(obj, "fn", None), getattr(obj, "name", None)
    if obj is None or not isinstance(name, str) or not inspect.iscoroutinefunction(fn):
        raise click.BadParameter(f"{clean(target)} is not a @workflow()", param_hint=_HINT)
    return name, fn, obj


def _checked_reason(reason: str | None) -> str | None:
    """``--reason`` as the log keeps it, or a usage error (exit 2)."""
    try:
        return requesting.checked_reason(reason, "--reason")
    except NotSerializable as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from exc


def _why(record: RunRecord) -> str:
    if record.error:
        return f": {record.error.get('type')}: {record.error.get('message')}"
    reason = (
        record.cancel_reason if record.status is RunState.CANCELLED else record.terminate_reason
    )
    return f": {reason}" if reason else ""
