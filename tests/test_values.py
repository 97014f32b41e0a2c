"""The same values live and after a resume (D4, H1, H2), and user objects that
misbehave when described (SV1, SV4).

A value crosses the store as JSON: what a body or step receives live is the
value's JSON round trip, exactly what it receives after a resume. A value
JSON cannot give back unchanged is refused at the call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import (
    CancellationError,
    NonDeterminismError,
    NotSerializable,
    ProctorError,
    RetryPolicy,
    RunState,
    Runtime,
    StepFailed,
    WorkflowFailed,
    gather,
    get_context,
    step,
    workflow,
)
from actors._errors import describe
from cli import cli
from persistence import (
    MAX_VALUE_DEPTH,
    EventType,
    InvalidTransition,
    NewEvent,
    _append,
    dumps,
    open_store,
    roundtrip,
)
from tests.conftest import (
    GATES,
    NOTES,
    gate,
    note,
    open_rt,
    steps_of,
    wait_until,
)
from tests.store_access import store_exists

pytestmark = pytest.mark.timeout(30)


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


#: Values that are not JSON data, by name (step arguments are JSON: the steps
#: below look them up here).
NOT_JSON: dict[str, Any] = {
    "circular": _circular(),
    "5000-deep": _deep(5000),
    "NaN": float("nan"),
    "Infinity": float("inf"),
    "1e999": float("1e999"),
    "lone-surrogate": "\ud800",
    "int-key": {1: "x"},
    "mixed-keys": {1: "a", 2.5: "b", None: "c"},
}


# -- H1, H2: heartbeat details -------------------------------------------------------


@step()
def progressing(key: str) -> object:
    ctx = get_context()
    note(f"{key}:from", ctx.last_heartbeat_details)
    done = (ctx.last_heartbeat_details or {"done": 0})["done"]
    ctx.heartbeat({"done": done + 1})  # recorded at once
    ctx.heartbeat({"done": done + 2})  # within the throttle: not written now
    gate(f"{key}:beat:{ctx.attempt}").set()
    while not gate(key).wait(0.001):
        ctx.heartbeat()  # a mailbox check that keeps the latest details
    return ctx.last_heartbeat_details


@workflow()
async def call_progressing(key: str) -> object:
    return await progressing(key)


def test_H2_after_a_close_the_resumed_attempt_sees_the_latest_details(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(call_progressing, "c").run_id
    assert gate("c:beat:1").wait(10)
    first.close()  # the attempt is abandoned; its end record keeps {"done": 2}
    assert steps_of(first, run_id)[0].heartbeat_details == {"done": 2}
    second = open_rt(runtimes, db)
    assert gate("c:beat:2").wait(10)
    gate("c").set()
    assert second.handle(run_id).result(timeout=10) == {"done": 4}
    assert NOTES["c:from"] == [None, {"done": 2}]


def test_H2_after_a_crash_the_resumed_attempt_sees_the_details_the_store_holds(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(call_progressing, "k").run_id
    assert gate("k:beat:1").wait(10)
    wait_until(lambda: steps_of(first, run_id)[0].heartbeat_details is not None)
    first.kill()  # nothing more reaches the store: what it holds is what is left
    held = steps_of(first, run_id)[0].heartbeat_details
    assert held in ({"done": 1}, {"done": 2})
    second = open_rt(runtimes, db)
    assert gate("k:beat:2").wait(10)
    gate("k").set()
    second.handle(run_id).result(timeout=10)
    assert NOTES["k:from"] == [None, held]  # as Temporal after a worker crash
    lost = [e for e in second.events(run_id) if e.type.value == "step_abandoned"]
    assert [e.data.get("last_heartbeat_details") for e in lost] == [held]


@step()
def beats_twice_and_returns() -> str:
    ctx = get_context()
    ctx.heartbeat({"done": 1})
    ctx.heartbeat({"done": 2})  # throttled: made good by the attempt's end
    return "ok"


@workflow()
async def call_beats_twice() -> str:
    return await beats_twice_and_returns()


def test_H1_the_store_keeps_the_latest_details_when_the_attempt_ends(rt: Runtime) -> None:
    handle = rt.start(call_beats_twice)
    assert handle.result(timeout=10) == "ok"
    assert steps_of(rt, handle.run_id)[0].heartbeat_details == {"done": 2}


@step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
def beats_then_fails() -> object:
    ctx = get_context()
    if ctx.attempt == 1:
        ctx.heartbeat({"done": 7})
        raise ConnectionError("flaky")
    return ctx.last_heartbeat_details


@workflow()
async def call_beats_then_fails() -> object:
    return await beats_then_fails()


def test_H2_a_retry_after_a_failure_sees_the_latest_details(rt: Runtime) -> None:
    """Not only after a heartbeat timeout: any next attempt starts from them."""
    assert rt.start(call_beats_then_fails).result(timeout=10) == {"done": 7}


@step()
def sibling(key: str) -> str:
    ctx = get_context()
    note(key, ctx.last_heartbeat_details)
    ctx.heartbeat({"a": ctx.attempt})
    gate(f"{key}:beat:{ctx.attempt}").set()
    while not gate(key).wait(0.001):
        ctx.heartbeat()
    return "done"


@step(retry=RetryPolicy(max_attempts=2, initial_interval=0))
def fails_once_after(key: str) -> str:
    if get_context().attempt == 1:
        assert gate(f"{key}:beat:1").wait(10)
        raise ConnectionError("flaky")
    return "ok"


@workflow(strategy="one_for_all")
async def siblings(key: str) -> list[Any]:
    return await gather(sibling(key), fails_once_after(key))


def test_H2_a_sibling_restarted_with_a_failed_step_sees_its_latest_details(rt: Runtime) -> None:
    """SV3's one_for_all restart is a restart too: the next attempt starts from them."""
    handle = rt.start(siblings, "s")
    assert gate("s:beat:2").wait(10)
    gate("s").set()
    assert handle.result(timeout=10) == ["done", "ok"]
    assert NOTES["s"] == [None, {"a": 1}]


# -- D4: values live and after resume --------------------------------------------------


@step()
def pair_step() -> object:
    get_context().heartbeat((1, (2,)))
    return (3, (4,)), get_context().last_heartbeat_details


@step()
def waits(key: str) -> str:
    ctx = get_context()
    gate(f"{key}:started").set()
    while not gate(key).wait(0.001):
        ctx.check_cancellation()  # a mailbox check: a killed runtime's attempt unwinds
    return "released"


@workflow()
async def echo_child(value: object) -> object:
    return value, value


@workflow()
async def sees_values(key: str, pair: object, *, named: object) -> str:
    result = await pair_step()
    child = await echo_child((5, 6))
    note(key, [pair, named, result, child])
    return await waits(key)


def test_D4_a_body_sees_the_same_values_live_and_after_resume(
    runtimes: list[Runtime], db: Path
) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(sees_values, "v", (1, 2), named={"t": (3,)}).run_id
    assert gate("v:started").wait(10)
    first.kill()
    GATES.pop("v:started")
    second = open_rt(runtimes, db)
    assert gate("v:started").wait(10)
    gate("v").set()
    assert second.handle(run_id).result(timeout=10) == "released"
    live, replayed = NOTES["v"]
    assert live == replayed  # == alone would take (1, 2) for [1, 2]: compare the JSON too
    assert dumps(live) == dumps(replayed)
    assert repr(live) == repr(replayed)
    assert live == [[1, 2], {"t": [3]}, [[3, [4]], [1, [2]]], [[5, 6], [5, 6]]]


@step()
def returns_bad(name: str) -> object:
    return NOT_JSON[name]


@workflow()
async def awaits_bad_result(name: str) -> str:
    try:
        await returns_bad(name)
    except NotSerializable as exc:
        return f"refused: {exc}"
    return "accepted"


@step(retry=RetryPolicy(max_attempts=3, initial_interval=0))
def returns_bad_with_retries(name: str) -> object:
    return NOT_JSON[name]


@workflow()
async def awaits_bad_result_with_retries(name: str) -> str:
    try:
        await returns_bad_with_retries(name)
    except NotSerializable:
        return "refused"
    return "accepted"


@workflow()
async def passes_bad_args(name: str) -> str:
    try:
        await returns_bad(NOT_JSON[name])
    except NotSerializable:
        return "refused"
    return "accepted"


@workflow()
async def passes_bad_child_args(name: str) -> str:
    try:
        await echo_child(NOT_JSON[name])
    except NotSerializable:
        return "refused"
    return "accepted"


@workflow()
async def returns_bad_result(name: str) -> object:
    return NOT_JSON[name]


@step()
def beats_bad(name: str) -> str:
    ctx = get_context()
    ctx.heartbeat({"ok": 1})
    try:
        ctx.heartbeat(NOT_JSON[name])
    except NotSerializable:
        return f"refused, kept {ctx.last_heartbeat_details}"
    return "accepted"


@workflow()
async def call_beats_bad(name: str) -> str:
    return await beats_bad(name)


@pytest.mark.parametrize("name", list(NOT_JSON))
def test_D4_a_value_that_is_not_json_is_refused_at_every_call(rt: Runtime, name: str) -> None:
    value = NOT_JSON[name]
    with pytest.raises(NotSerializable):
        rt.start(returns_bad_result, value)
    with pytest.raises(NotSerializable):
        rt.start(returns_bad_result, "x", extra=value)
    assert rt.list_runs() == []  # nothing written
    assert rt.start(awaits_bad_result, name).result(timeout=10).startswith("refused")
    retried = rt.start(awaits_bad_result_with_retries, name)
    assert retried.result(timeout=10) == "refused"
    assert len(steps_of(rt, retried.run_id)) == 1  # the caller's bug: never retried
    assert rt.start(passes_bad_args, name).result(timeout=10) == "refused"
    assert rt.start(passes_bad_child_args, name).result(timeout=10) == "refused"
    assert rt.start(call_beats_bad, name).result(timeout=10) == "refused, kept {'ok': 1}"
    with pytest.raises(WorkflowFailed) as failed:
        rt.start(returns_bad_result, name).result(timeout=10)
    assert failed.value.error["type"] == "NotSerializable"
    assert rt.start(echo_child, 1).result(timeout=10) == [1, 1]  # the runtime is intact


def test_D4_a_step_result_with_other_than_str_keys_is_refused_not_changed(rt: Runtime) -> None:
    message = rt.start(awaits_bad_result, "mixed-keys").result(timeout=10)
    assert "a dict key must be a str, not int" in message


def test_D4_values_nested_up_to_the_bound_cross_and_deeper_ones_do_not() -> None:
    inside = _deep(MAX_VALUE_DEPTH)
    assert roundtrip(inside, what="value")[1] == inside
    with pytest.raises(NotSerializable, match=f"nested deeper than {MAX_VALUE_DEPTH} levels"):
        roundtrip(_deep(MAX_VALUE_DEPTH + 1), what="value")
    shared = [1]
    assert roundtrip([shared, shared], what="value")[1] == [[1], [1]]  # not a cycle


@pytest.mark.parametrize(
    "text",
    ["NaN", "Infinity", "[-Infinity]", "1e999", '"\\ud800"', "[" * 5000 + "]" * 5000, '{"a":NaN}'],
    ids=["NaN", "Infinity", "minus-Infinity", "1e999", "lone-surrogate", "5000-deep", "nested-NaN"],
)
def test_D4_proctor_start_refuses_values_that_are_not_json_and_creates_nothing(
    db: Path, text: str
) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db), "start", "tests.cli_workflows:add", "1", text]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not store_exists(db) or open_store(db, readonly=True).list_runs() == []


def test_D4_a_reason_that_is_not_text_is_refused_at_the_call(rt: Runtime, db: Path) -> None:
    handle = rt.start(passes_bad_args, "NaN")
    handle.wait_finished(timeout=10)
    with pytest.raises(NotSerializable):
        rt.cancel(handle.run_id, object())  # type: ignore[arg-type]
    with pytest.raises(NotSerializable):
        rt.terminate(handle.run_id, "\ud800")
    result = CliRunner().invoke(
        cli, ["--db", str(db), "cancel", handle.run_id, "--reason", "\udcff"]
    )
    assert result.exit_code == 2, result.output  # not "no run with id" (exit 3)
    assert "--reason" in result.output


@step()
def refused_step() -> str:
    return "done"


@workflow()
async def calls_refused_step() -> str:
    return await refused_step()


def test_D1_a_record_the_store_refuses_fails_the_run_instead_of_hanging_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every refused write surfaces: a refusal that is not fencing (a record
    Proctor built wrong, say) fails the run with the store's reason."""
    project = _append.project_step

    def refusing(conn: Any, ev: NewEvent, *rest: Any) -> None:
        if ev.type is EventType.STEP_COMPLETED and (ev.step or "").endswith("refused_step"):
            raise InvalidTransition("refused for this test")
        project(conn, ev, *rest)

    monkeypatch.setattr(_append, "project_step", refusing)
    with pytest.raises(WorkflowFailed) as failed:
        rt.start(calls_refused_step).result(timeout=10)
    assert failed.value.error["type"] == "ProctorError"
    assert "the store refused a record" in failed.value.error["message"]
    assert "refused for this test" in failed.value.error["message"]


# -- D2: a replay failure names its real cause -----------------------------------------

BREAK_ON_REPLAY: dict[str, bool] = {"on": False}


@workflow()
async def fragile(key: str) -> str:
    lookup = {"a": 1}
    first = await waits(f"{key}.1")
    if BREAK_ON_REPLAY["on"]:
        lookup.pop("a")
    return first + str(lookup["a"]) + await waits(f"{key}.2")


def test_D2_a_replay_failure_names_its_real_cause(runtimes: list[Runtime], db: Path) -> None:
    first = open_rt(runtimes, db)
    run_id = first.start(fragile, "f").run_id
    gate("f.1").set()
    assert gate("f.2:started").wait(10)
    first.kill()
    BREAK_ON_REPLAY["on"] = True
    try:
        second = open_rt(runtimes, db)
        record = second.handle(run_id).wait_finished(timeout=10)
    finally:
        BREAK_ON_REPLAY["on"] = False
    assert record.status is RunState.FAILED
    assert record.error is not None
    assert record.error["type"] == NonDeterminismError.__name__
    assert "the workflow raised KeyError: 'a'" in record.error["message"]
    assert "The workflow code changed" not in record.error["message"]
    assert "lookup.pop" in record.error["traceback"] or "KeyError" in record.error["traceback"]


# -- SV1, SV4: exceptions and objects whose own code raises when described ---------------


class Hostile(Exception):
    """An exception that cannot be printed: str, repr and args all raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    @property  # type: ignore[override]
    def args(self) -> tuple[Any, ...]:
        raise RuntimeError("no args for you")


@step(retry=RetryPolicy(max_attempts=3, initial_interval=0, non_retryable=(Hostile,)))
def raises_hostile() -> None:
    raise Hostile


@workflow()
async def catches_hostile() -> object:
    try:
        await raises_hostile()
    except StepFailed as exc:
        return [exc.error["type"], exc.error["message"], type(exc.__cause__).__name__]
    return "unreachable"


def test_SV1_an_exception_whose_str_raises_keeps_its_type_and_its_retry_policy(
    rt: Runtime,
) -> None:
    handle = rt.start(catches_hostile)
    kind, message, cause = handle.result(timeout=10)  # type: ignore[misc]
    assert (kind, cause) == ("Hostile", "Hostile")
    assert message == "<unprintable tests.test_values.Hostile: its __str__ raised RuntimeError>"
    assert len(steps_of(rt, handle.run_id)) == 1  # non_retryable honoured: one attempt


@workflow()
async def body_raises_hostile() -> None:
    raise Hostile


@step()
def raises_undecodable() -> None:
    raise ValueError(os.fsdecode(b"file-\xff"))  # a lone surrogate in the message


@workflow()
async def body_raises_undecodable(in_step: bool) -> None:
    if in_step:
        await raises_undecodable()
    raise CancellationError(os.fsdecode(b"reason-\xff"))


class HostileAwaitable:
    def __await__(self) -> Iterator[Any]:
        yield Hostile()

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@workflow()
async def awaits_hostile() -> None:
    await HostileAwaitable()


def test_SV4_a_body_raising_an_exception_whose_str_raises_fails_its_run_cleanly(
    rt: Runtime,
) -> None:
    with pytest.raises(WorkflowFailed) as failed:
        rt.start(body_raises_hostile).result(timeout=10)
    assert failed.value.error["type"] == "Hostile"
    assert "unprintable" in failed.value.error["message"]
    with pytest.raises(WorkflowFailed) as awaited:
        rt.start(awaits_hostile).result(timeout=10)
    assert awaited.value.error["type"] == ProctorError.__name__
    assert "<unprintable tests.test_values.Hostile" in awaited.value.error["message"]
    with pytest.raises(WorkflowFailed) as undecodable:
        rt.start(body_raises_undecodable, True).result(timeout=10)
    assert "file-\\udcff" in undecodable.value.error["message"]
    cancelled = rt.start(body_raises_undecodable, False)
    assert cancelled.wait_finished(timeout=10).status is RunState.CANCELLED
    ended = [e for e in rt.events(cancelled.run_id) if e.type.value == "run_cancelled"]
    assert [e.data["reason"] for e in ended] == ["reason-\\udcff"]
    assert rt.start(echo_child, 2).result(timeout=10) == [2, 2]  # nothing crashed


def test_SV4_describing_a_hostile_object_never_raises() -> None:
    described = describe(Hostile())
    assert described["type"] == "Hostile"
    assert described["message"].startswith("<unprintable")
    assert "Hostile" in described["traceback"]
    dumps(described)  # the description itself is JSON
    assert CancellationError(Hostile()).reason == (  # type: ignore[arg-type]
        "<unprintable tests.test_values.Hostile: its __str__ raised RuntimeError>"
    )


# -- the codec itself: one rule for every value ------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities included: refused
    | st.text()  # lone surrogates included: refused
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers() | st.none(), inner, max_size=4)
    ),
    max_leaves=20,
)


def _json_data(value: Any) -> Any:
    """What JSON gives back for plain data; raises ValueError for anything else."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a JSON number")
    if isinstance(value, str):
        value.encode("utf-8")  # raises for a lone surrogate
        return value
    if isinstance(value, list | tuple):
        return [_json_data(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("a key that is not a str")
        return {_json_data(k): _json_data(v) for k, v in value.items()}
    return value


# Generating 300 nested values is slow on a loaded 2-core machine: that is
# not what this test checks, so hypothesis's too_slow health check is off.
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_values)
def test_D4_the_codec_gives_back_plain_data_unchanged_and_refuses_the_rest(value: Any) -> None:
    try:
        expected = _json_data(value)
    except (ValueError, UnicodeEncodeError):
        with pytest.raises(NotSerializable):
            roundtrip(value, what="value")
        return
    text, back = roundtrip(value, what="value")
    assert back == expected
    assert dumps(back) == text  # stable: the round trip of the round trip is itself


@step()
def a_list() -> list[int]:
    return [1]


@step()
def after_the_list(key: str) -> int:
    assert gate(key).wait(10)
    return 0


@workflow()
async def changes_its_result(key: str) -> list[int]:
    got = await a_list()
    got.append(2)  # the body's own copy: the step's record must not change
    await after_the_list(key)
    return got


def test_D4_a_body_that_changes_a_step_result_changes_only_its_own_copy(db: Path) -> None:
    """A step's end is written with the body's next group, after the body has
    gone on in memory: the record must hold what the step returned, not what
    the body made of it, or replay would start from the changed value."""
    first = Runtime(db, shutdown_timeout=0.1)
    handle = first.start(changes_its_result, "changes-result")
    wait_until(lambda: [e.step for e in first.events(handle.run_id)][-1] == after_the_list.name)
    first.kill()  # while the second step runs: its end is not recorded
    with open_store(db, readonly=True) as store:
        events = store.events(handle.run_id)
    recorded = [e.data["result"] for e in events if e.type is EventType.STEP_COMPLETED]
    assert recorded == [[1]]
    gate("changes-result").set()
    with Runtime(db) as second:  # replays the first step's recorded result
        assert second.handle(handle.run_id).result(timeout=10) == [1, 2]
