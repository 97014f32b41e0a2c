"""A bad argument fails at the call that passed it, clearly, and loses nothing.

Each kind of bad argument (wrong type, out of range, NaN or infinite,
a signature it does not fit, a decorator without parentheses) raises
``InvalidArgumentType`` (a ``TypeError``) or ``InvalidArgument`` (a
``ValueError``) naming it, before anything is created, started or written.
Before, several were accepted and failed later, inside a supervisor (a
``retry=5`` crashed it at the first failure) or a run (``start()`` with too
many arguments created a run that failed).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors import (
    CancelScope,
    InvalidArgument,
    InvalidArgumentType,
    NotSerializable,
    ProctorError,
    RetryPolicy,
    RunNotFound,
    RunState,
    Runtime,
    RuntimeClosed,
    gather,
    shield,
    start_child,
    step,
    workflow,
)
from persistence import cancel_request, open_store, run_query


@step()
def add(a: int, b: int) -> int:
    return a + b


@workflow()
async def adds(a: int, b: int) -> int:
    return await add(a, b)


@workflow()
async def adds_badly(a: int) -> str:
    try:
        await add(a, a, a)  # type: ignore[call-arg]
    except InvalidArgumentType as exc:  # at the call, in the body: catchable
        return str(exc)
    return "not refused"


def _async_noop() -> Callable[..., Any]:
    async def body() -> None:
        return None

    return body


# (id, the declaration, the error, what its message names)
DECLARATIONS: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("step retry not a policy", lambda: step(retry=5)(print), InvalidArgumentType, "RetryPolicy"),  # type: ignore[arg-type]
    ("step timeout text", lambda: step(timeout="x")(print), InvalidArgumentType, "timeout"),  # type: ignore[arg-type]
    ("step timeout NaN", lambda: step(timeout=math.nan)(print), InvalidArgument, "finite"),
    ("step heartbeat -1", lambda: step(heartbeat_timeout=-1)(print), InvalidArgument, "positive"),
    ("step name not text", lambda: step(name=5)(print), InvalidArgumentType, "name"),  # type: ignore[arg-type]
    ("step without ()", lambda: step(print), InvalidArgumentType, "parentheses"),  # type: ignore[arg-type]
    ("workflow restarts -1", lambda: workflow(max_restarts=-1), InvalidArgument, "max_restarts"),
    ("workflow restarts 1.5", lambda: workflow(max_restarts=1.5), InvalidArgumentType, "int"),  # type: ignore[arg-type]
    ("workflow within text", lambda: workflow(within="x"), InvalidArgumentType, "within"),  # type: ignore[arg-type]
    ("workflow within 0", lambda: workflow(within=0), InvalidArgument, "positive"),
    ("workflow name not text", lambda: workflow(name=5), InvalidArgumentType, "name"),  # type: ignore[arg-type]
    ("workflow without ()", lambda: workflow(_async_noop()), InvalidArgumentType, "parentheses"),
    ("workflow of a sync def", lambda: workflow()(print), InvalidArgumentType, "async def"),  # type: ignore[arg-type]
    (
        "policy interval text",
        lambda: RetryPolicy(initial_interval="1"),
        InvalidArgumentType,
        "interval",
    ),  # type: ignore[arg-type]
    ("policy jitter NaN", lambda: RetryPolicy(jitter=math.nan), InvalidArgument, "jitter"),
    ("policy attempts 1.5", lambda: RetryPolicy(max_attempts=1.5), InvalidArgumentType, "attempts"),  # type: ignore[arg-type]
    (
        "policy bare class",
        lambda: RetryPolicy(non_retryable=ValueError),
        InvalidArgumentType,
        "tuple",
    ),  # type: ignore[arg-type]
    ("gather of a non-call", lambda: gather(1), InvalidArgumentType, "gather"),  # type: ignore[arg-type]
    ("gather strategy", lambda: gather(strategy="bogus"), InvalidArgument, "strategy"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [pytest.param(m, e, r, id=i) for i, m, e, r in DECLARATIONS],
)
def test_a_bad_declaration_fails_where_it_is_written(
    make: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        make()
    assert isinstance(caught.value, ProctorError)
    # The builtin the value is wrong as, for callers that catch builtins.
    assert isinstance(caught.value, TypeError if error is InvalidArgumentType else ValueError)


@pytest.mark.parametrize(
    "options",
    [{"db": 123}, {"clock": "x"}, {"claim_runs": "yes"}, {"resume": None}],
    ids=str,
)
def test_a_bad_runtime_option_is_refused_before_anything_starts(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentType, match=next(iter(options))):
        Runtime(**({"db": tmp_path / "x.db"} | options))
    assert not (tmp_path / "x.db").exists()


def test_start_with_arguments_that_do_not_fit_creates_nothing(rt: Runtime) -> None:
    with pytest.raises(
        InvalidArgumentType, match=r"do not fit workflow .*adds\(a: int, b: int\) -> int"
    ):
        rt.start(adds, 1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentType, match="do not fit"):
        rt.start(adds, 1, c=2)  # type: ignore[call-arg]
    assert rt.list_runs() == []
    assert rt.start(adds, 1, 2).result(timeout=10) == 3


def test_a_step_call_that_does_not_fit_raises_at_the_call_in_the_body(rt: Runtime) -> None:
    message = rt.start(adds_badly, 1).result(timeout=10)
    assert "do not fit step" in message
    assert "add(a: int, b: int)" in message


@pytest.mark.parametrize(
    ("status", "error"),
    [("runing", InvalidArgument), (5, InvalidArgumentType), ([None], InvalidArgumentType)],
    ids=str,
)
def test_list_runs_takes_a_state_or_its_name_and_refuses_others(
    rt: Runtime, status: Any, error: type[Exception]
) -> None:
    done = rt.start(adds, 1, 2)
    done.result(timeout=10)
    assert [r.run_id for r in rt.list_runs(status="completed")] == [done.run_id]
    assert [r.run_id for r in rt.list_runs(status=["COMPLETED", RunState.FAILED])] == [done.run_id]
    with pytest.raises(error, match="status"):
        rt.list_runs(status=status)
    for limit, limit_error in ((-1, InvalidArgument), ("2", InvalidArgumentType)):
        with pytest.raises(limit_error, match="limit"):
            rt.list_runs(limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timeout", "error"),
    [("x", InvalidArgumentType), (-1, InvalidArgument), (math.nan, InvalidArgument)],
    ids=str,
)
def test_a_bad_wait_timeout_is_refused_and_a_bad_cancel_writes_nothing(
    rt: Runtime, timeout: Any, error: type[Exception]
) -> None:
    handle = rt.start(adds, 1, 2)
    with pytest.raises(error, match="timeout"):
        handle.result(timeout=timeout)
    with pytest.raises(error, match="timeout"):
        handle.wait_finished(timeout=timeout)
    assert handle.result(timeout=10) == 3
    pending = rt.start(adds, 2, 2)
    for kwargs in ({"wait": True, "timeout": timeout}, {"grace": timeout}):
        with pytest.raises(error):
            rt.cancel(pending.run_id, "bad", **kwargs)
    assert rt.get_run(pending.run_id).cancel_requested_at is None  # nothing was written


def test_a_bad_async_wait_timeout_is_refused(rt: Runtime) -> None:
    handle = rt.start(adds, 1, 2)

    async def wait() -> int:
        with pytest.raises(InvalidArgument, match="timeout"):
            await handle.result_async(timeout=math.inf)
        return await handle.result_async(timeout=10)

    assert asyncio.run(wait()) == 3


def test_a_closed_runtime_refuses_a_with_block(db: Path) -> None:
    rt = Runtime(db)
    rt.close()
    with pytest.raises(RuntimeClosed), rt:
        pass


def test_shield_outside_a_step_or_body_says_so() -> None:
    outside = r"shield\(\) is used inside a step or a workflow body"
    with pytest.raises(ProctorError, match=outside), shield():
        pass


def test_a_reason_that_is_not_text_says_so_not_that_it_is_not_json(rt: Runtime) -> None:
    done = rt.start(adds, 1, 2)
    done.result(timeout=10)
    with pytest.raises(NotSerializable, match=r"reason must be text \(a str\) or None, got int: 5"):
        rt.cancel(done.run_id, 5)  # type: ignore[arg-type]


@workflow()
async def cancels_a_child_with_a_nul(a: int) -> str:
    child = await start_child(adds, a, a)
    try:
        child.cancel(reason="bad\x00reason")
    except NotSerializable as exc:  # at the call, in the body: catchable
        said = str(exc)
    else:
        said = "not refused"
    with CancelScope() as scope:
        try:
            scope.cancel("bad\x00reason")
        except NotSerializable:
            said += " | scope refused too"
    await child
    return said


def test_a_reason_holding_a_nul_is_refused_on_every_store_and_writes_nothing(
    rt: Runtime,
) -> None:
    """PostgreSQL keeps no NUL in text: refused at the call on both stores, so
    a reason means the same wherever it is recorded (and no run retries a
    write the server can never take)."""
    running = rt.start(adds, 1, 2)
    running.result(timeout=10)
    nul = r"reason holds a NUL character \(\\x00\)"
    with pytest.raises(NotSerializable, match=nul):
        rt.cancel(running.run_id, "stop\x00now")
    with pytest.raises(NotSerializable, match=nul):
        rt.terminate(running.run_id, "stop\x00now")
    said = rt.start(cancels_a_child_with_a_nul, 2).result(timeout=20)
    assert "holds a NUL character" in said
    assert said.endswith(" | scope refused too")
    assert rt.get_run(running.run_id).status is RunState.COMPLETED


def test_a_run_id_holding_a_nul_names_no_run_on_every_store(rt: Runtime, db: Any) -> None:
    """No run id holds a NUL (a chosen id must be printable), and PostgreSQL
    cannot even compare text holding one: a tester's lookups, cancels and
    listings with one were store errors there and "not found" on SQLite.
    Now every store answers as for any id no run has, without asking."""
    done = rt.start(adds, 1, 2)
    done.result(timeout=10)
    ghost = "a\x00b"
    with pytest.raises(RunNotFound):
        rt.get_run(ghost)
    with pytest.raises(RunNotFound):
        rt.events(ghost)
    with pytest.raises(RunNotFound):
        rt.cancel(ghost, "why")
    with pytest.raises(RunNotFound):
        rt.terminate(ghost, "why")
    with pytest.raises(RunNotFound):
        rt.signal(ghost, "go", None)
    with open_store(db) as store:
        assert store.find_run(ghost) is None
        assert store.events(ghost) == []
        assert store.restarted_as(ghost) == []
        assert store.descendants(ghost) == []
        assert store.steps(ghost) == []
        outcome, children = store.terminate_tree(ghost, None, source="cli")
        assert (outcome.accepted, outcome.status, children) == (False, None, [])  # type: ignore[union-attr]
        mixed = store.append_groups([[cancel_request(ghost, None, source="cli")], []])
        assert [o.accepted for o in mixed[0]] == [False]
    with pytest.raises(InvalidArgument, match="NUL"):
        rt.list_runs(workflow="a\x00")
    with pytest.raises(InvalidArgument, match="at most"):
        run_query(limit=2**70)
    assert rt.get_run(done.run_id).status is RunState.COMPLETED
