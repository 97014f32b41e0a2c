"""The public API's errors: one tree, every public error in it, nothing foreign leaking.

Nothing from pykka and no bare builtin exception leaves a public call; a
closed or killed runtime says so with :class:`RuntimeClosed` from every
call; each public method raises what its docstring says it raises.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

import actors
import persistence
import persistence._errors
from actors import (
    FakeClock,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    PayloadTooLarge,
    ProctorError,
    RetryPolicy,
    RunCancelled,
    RunHandle,
    RunNotFound,
    RunState,
    RunTerminated,
    Runtime,
    RuntimeClosed,
    WaitTimeout,
    WorkflowFailed,
    get_context,
    step,
    workflow,
)
from actors._guardian import Guardian
from actors.testing import ProctorTestKit
from tests.conftest import assert_nothing_left, gate, wait_until
from tests.store_access import store_exists

PUBLIC_ERRORS = {
    name: obj
    for name in actors.__all__
    if isinstance(obj := getattr(actors, name), type) and issubclass(obj, BaseException)
}


@step()
def echo_step(x: int) -> int:
    return x


@step()
def parked_step() -> None:
    # Parked until the gate opens, checking its mailbox: a close stops it.
    ctx = get_context()
    while not gate("errors-parked").wait(0.001):
        ctx.check_cancellation()


@workflow()
async def echo_flow(x: int) -> int:
    return await echo_step(x)


@workflow()
async def parked_flow() -> None:
    await parked_step()


@workflow()
async def failing_flow() -> None:
    raise RuntimeError("boom")


# -- the tree ------------------------------------------------------------------------


def _drawn() -> set[str]:
    doc = persistence._errors.__doc__ or ""
    tree = doc[doc.index("ProctorError\n") :]
    return set(re.findall(r"(?:^|[─ ])([A-Z][A-Za-z]+)(?=[( ]|$)", tree, re.MULTILINE))


def test_the_one_tree_draws_every_public_error_and_nothing_else() -> None:
    drawn = _drawn() & (set(PUBLIC_ERRORS) | {"ProctorError"})
    assert set(PUBLIC_ERRORS) == drawn, (
        f"not drawn: {sorted(set(PUBLIC_ERRORS) - drawn)};"
        f" drawn but not public: {sorted(drawn - set(PUBLIC_ERRORS))}"
    )
    # ...and nothing drawn that is not an error of Proctor's at all.
    stray = {n for n in _drawn() if n.endswith(("Error", "Failed")) and n not in PUBLIC_ERRORS}
    assert stray <= {"BaseException", "TypeError", "ValueError", "TimeoutError"}, stray
    for name, error in PUBLIC_ERRORS.items():
        assert issubclass(error, ProctorError) or name in {"CancellationError", "Terminated"}


def test_run_already_finished_is_not_public_a_finished_run_says_so_in_its_result(
    rt: Runtime,
) -> None:
    """It was exported and never raised: a control request on a finished run
    is not an error (C6), its ControlResult says it changed nothing."""
    assert not hasattr(actors, "RunAlreadyFinished")
    assert not hasattr(persistence, "RunAlreadyFinished")
    run = rt.start(echo_flow, 1)
    assert run.result(timeout=10) == 1
    for result in (run.cancel("late"), run.terminate("late")):
        assert result.changed is False
        assert result.status is RunState.COMPLETED
        assert "already finished" in result.message


# -- what the docstrings say ---------------------------------------------------------


def _raises_section(obj: object) -> set[str]:
    doc = inspect.getdoc(obj) or ""
    named: set[str] = set(re.findall(r"Raises?\s+:class:`(\w+)`", doc))
    if "Raises:" in doc:
        section = doc.split("Raises:", 1)[1]
        for line in section.splitlines():
            if line and not line.startswith(" "):
                break  # the section ended
            head = line.strip().split(":", 1)[0]
            if line.startswith("    ") and not line.startswith("        ") and ":" in line:
                named |= {n.strip() for n in head.split(",")}
    return named


PUBLIC_CALLS: list[tuple[str, object]] = [
    ("Runtime", Runtime),
    *(
        (f"Runtime.{name}", member)
        for name, member in vars(Runtime).items()
        if not name.startswith("_") and callable(member)
    ),
    *(
        (f"RunHandle.{name}", member)
        for name, member in vars(RunHandle).items()
        if not name.startswith("_") and callable(member)
    ),
]


def test_the_public_docstrings_name_only_public_proctor_errors() -> None:
    wrong = [
        f"{name} documents {error}"
        for name, call in PUBLIC_CALLS
        for error in sorted(_raises_section(call))
        if error not in PUBLIC_ERRORS
    ]
    assert wrong == []


# -- each public call raises what it documents -----------------------------------------


def _documented(
    rt: Runtime,
) -> list[tuple[Callable[..., Any], type[BaseException], Callable[[], object]]]:
    done = rt.start(echo_flow, 1)
    done.result(timeout=10)
    parked = rt.start(parked_flow)
    missing = RunHandle(rt, "no-such-run")
    cancelled, terminated = rt.start(parked_flow), rt.start(parked_flow)
    cancelled.cancel("stop")
    terminated.terminate("stop")
    failed = rt.start(failing_flow)
    return [
        (Runtime.start, NotSerializable, lambda: rt.start(echo_flow, {1, 2})),
        (
            Runtime.start,
            PayloadTooLarge,
            lambda: rt.start(echo_flow, "x" * (rt.max_payload_bytes + 1)),
        ),
        (Runtime.start, InvalidArgumentType, lambda: rt.start(echo_step, 1)),  # type: ignore[arg-type]
        (Runtime.handle, RunNotFound, lambda: rt.handle("no-such-run")),
        (Runtime.get_run, RunNotFound, lambda: rt.get_run("no-such-run")),
        (Runtime.events, RunNotFound, lambda: rt.events("no-such-run")),
        (Runtime.cancel, RunNotFound, lambda: rt.cancel("no-such-run")),
        (Runtime.cancel, NotSerializable, lambda: rt.cancel(done.run_id, b"bytes")),  # type: ignore[arg-type]
        (Runtime.terminate, RunNotFound, lambda: rt.terminate("no-such-run")),
        (Runtime.terminate, NotSerializable, lambda: rt.terminate(done.run_id, b"x")),  # type: ignore[arg-type]
        (RunHandle.result, WaitTimeout, lambda: parked.result(timeout=0.05)),
        (RunHandle.result, TimeoutError, lambda: parked.result(timeout=0.05)),  # as before
        (RunHandle.result, RunTerminated, lambda: terminated.result(timeout=10)),
        (RunHandle.result, WorkflowFailed, lambda: failed.result(timeout=10)),
        (RunHandle.result, RunCancelled, lambda: _released(cancelled).result(timeout=10)),
        (RunHandle.result, RunNotFound, lambda: missing.result(timeout=1)),
    ]


def _released(run: RunHandle[Any]) -> RunHandle[Any]:
    gate("errors-parked").set()  # its step returns; the cancel then ends the run
    return run


def test_each_public_call_raises_the_errors_its_docstring_names(rt: Runtime) -> None:
    try:
        for method, error, trigger in _documented(rt):
            documented = _raises_section(method)
            assert (
                error.__name__ in documented
                or error is TimeoutError
                or any(
                    issubclass(error, PUBLIC_ERRORS[d]) for d in documented if d in PUBLIC_ERRORS
                )
            ), f"{method.__qualname__} raises {error.__name__} but does not say so"
            with pytest.raises(error):
                trigger()
    finally:
        gate("errors-parked").set()


# -- bad arguments are ours, and still the builtin they are ----------------------------


@pytest.mark.parametrize(
    ("options", "builtin"),
    [
        ({"max_batch": 0}, ValueError),
        ({"request_timeout": 0}, ValueError),
        ({"max_payload_bytes": "many"}, TypeError),
        ({"retention": "forever"}, TypeError),
        ({"retention": -1}, ValueError),
        ({"max_concurrent_steps": 0}, ValueError),
        ({"max_concurrent_steps": 1.5}, TypeError),
        ({"lease_ttl": 1.0, "busy_timeout": 1.0}, ValueError),
        ({"lease_ttl": -1.0}, ValueError),
        # Non-finite durations compare false (NaN) or wait forever (inf).
        ({"request_timeout": math.nan}, ValueError),
        ({"request_timeout": math.inf}, ValueError),
        ({"shutdown_timeout": math.nan}, ValueError),
        ({"shutdown_timeout": -1.0}, ValueError),
        ({"shutdown_timeout": "5"}, TypeError),
        ({"control_interval": 0}, ValueError),
        ({"control_interval": math.nan}, ValueError),
        ({"lease_ttl": math.inf}, ValueError),
        ({"busy_timeout": math.nan}, ValueError),
        ({"busy_timeout": True}, TypeError),
        # SQLite ignores a synchronous level it does not know: we refuse it.
        ({"synchronous": "BOGUS"}, ValueError),
        ({"synchronous": "full; PRAGMA x"}, ValueError),
    ],
    ids=str,
)
def test_a_bad_setting_is_an_invalid_argument_and_nothing_is_opened(
    db: Path, options: dict[str, Any], builtin: type[Exception]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Runtime(db, **options)
    assert isinstance(caught.value, builtin)
    assert isinstance(caught.value, InvalidArgumentType) == (builtin is TypeError)
    assert not store_exists(db)  # refused before the store is touched


def test_start_of_something_not_a_workflow_is_an_invalid_argument_type(rt: Runtime) -> None:
    with pytest.raises(InvalidArgumentType, match="takes a @workflow"):
        rt.start(echo_step, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # what callers caught before
        rt.start(print)  # type: ignore[arg-type]


def test_bad_definitions_policies_and_test_helpers_are_invalid_arguments(db: Path) -> None:
    with pytest.raises(InvalidArgument):
        step(timeout=-1)(lambda: None)
    with pytest.raises(InvalidArgument):
        workflow(strategy="all_for_none")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidArgument):
        FakeClock().advance(-1)
    with ProctorTestKit(db) as kit, pytest.raises(InvalidArgument):
        kit.hang(echo_step, times=0)


def test_a_closed_test_kit_starts_no_runtime_and_says_so(db: Path) -> None:
    before = set(threading.enumerate())
    kit = ProctorTestKit(db)
    run = kit.runtime.start(echo_flow, 1)
    kit.close()
    with pytest.raises(RuntimeClosed):
        kit.restart()  # it started a runtime nobody would close
    with pytest.raises(RuntimeClosed):
        kit.wait_for_status(run, "completed", timeout=1)
    assert_nothing_left(before)


# -- a dead runtime -------------------------------------------------------------------


def _every_public_call(rt: Runtime, run: RunHandle[Any]) -> dict[str, Callable[[], object]]:
    return {
        "start": lambda: rt.start(echo_flow, 1),
        "handle": lambda: rt.handle(run.run_id),
        "cancel": lambda: rt.cancel(run.run_id),
        "terminate": lambda: rt.terminate(run.run_id),
        "get_run": lambda: rt.get_run(run.run_id),
        "list_runs": rt.list_runs,
        "events": lambda: rt.events(run.run_id),
        "handle.status": run.status,
        "handle.record": run.record,
        "handle.events": run.events,
        "handle.cancel": run.cancel,
        "handle.terminate": run.terminate,
        "handle.wait_finished": lambda: run.wait_finished(1),
        "handle.result": lambda: run.result(1),
        "handle.result_async": lambda: asyncio.run(run.result_async(1)),
        "handle.__await__": lambda: asyncio.run(_awaited(run)),
    }


async def _awaited(run: RunHandle[Any]) -> object:
    return await run


@pytest.fixture
def dead_runtime_calls(db: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    before = set(threading.enumerate())
    rt = Runtime(db)
    run = rt.start(echo_flow, 1)
    run.result(timeout=10)
    getattr(rt, request.param)()
    yield _every_public_call(rt, run)
    assert_nothing_left(before)


NAMES = [
    "start", "handle", "cancel", "terminate", "get_run", "list_runs", "events",
    "handle.status", "handle.record", "handle.events", "handle.cancel",
    "handle.terminate", "handle.wait_finished", "handle.result",
    "handle.result_async", "handle.__await__",
]  # fmt: skip


@pytest.mark.parametrize("dead_runtime_calls", ["close", "kill"], indirect=True)
@pytest.mark.parametrize("call", NAMES)
def test_a_closed_or_killed_runtime_raises_runtime_closed_from_every_public_call(
    dead_runtime_calls: dict[str, Callable[[], object]], call: str
) -> None:
    assert set(dead_runtime_calls) == set(NAMES)
    with pytest.raises(RuntimeClosed, match="is closed"):
        dead_runtime_calls[call]()


def test_a_wait_under_way_when_the_runtime_closes_raises_runtime_closed(db: Path) -> None:
    before = set(threading.enumerate())
    rt = Runtime(db)
    run = rt.start(parked_flow)
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            run.result(timeout=30)
        except BaseException as exc:
            failed.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_until(lambda: run.run_id in rt._waiter.watchers._watch)  # it waits
    rt.close()  # its step is still parked: it unwinds at its next check
    waiter.join(10)
    assert not waiter.is_alive()
    assert len(failed) == 1
    assert isinstance(failed[0], RuntimeClosed), repr(failed[0])
    assert_nothing_left(before)


def test_a_runtime_whose_guardian_dies_at_start_raises_runtime_closed_not_actor_dead(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pykka's ActorDeadError (or Timeout) of the first ask must not leak."""
    before = set(threading.enumerate())
    start = Guardian.start

    def broken(self: Guardian) -> None:
        raise RuntimeError("injected: the Guardian cannot start")

    def start_dead(*args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
        ref = start(*args, **kwargs)
        ref.actor_stopped.wait(10)  # dead before the facade asks it anything
        return ref

    monkeypatch.setattr(Guardian, "started", broken)
    monkeypatch.setattr(Guardian, "start", start_dead)
    with pytest.raises(RuntimeClosed, match="could not start") as caught:
        Runtime(db)
    assert isinstance(caught.value.__cause__, pykka.ActorDeadError)
    assert_nothing_left(before)
