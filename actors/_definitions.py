"""``@workflow()`` and ``@step()``, and the awaitables a workflow body yields.

A workflow body is an ``async def`` driven by its RunSupervisor, not by an
asyncio loop: ``await some_step(x)`` suspends the body with a
:class:`StepCall` that the supervisor turns into a StepActor; the step's
completion message resumes the body. ``await other_workflow(x)`` suspends it
with a :class:`ChildCall`, which becomes a child run under its own
RunSupervisor. That is what lets the supervisor stay responsive to Cancel and
Terminate while a step or a child run works.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from actors._arguments import (
    RESERVED_KEYWORDS,
    count,
    fits,
    instance,
    optional_seconds,
    seconds,
    signature_of,
    timeout_options,
)
from actors._body_only import body_only
from actors._cancellation_type import CancellationType, cancellation_type
from actors._context import WorkflowContext, _current
from actors._policy import Intensity, RetryPolicy
from actors._registry import Registry, name_of
from persistence import (
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    roundtrip_arguments,
    safe_repr,
)

#: SV3: what a step's restart does to the other steps of its gather().
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
STRATEGIES: tuple[Strategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")

P = ParamSpec("P")
R = TypeVar("R")

#: Every workflow this process imported, by the name its runs record.
_workflows: Registry[WorkflowDef[..., Any]] = Registry()


class WorkflowDef(Generic[P, R]):
    """A workflow: an ``async def`` body, addressable by a stable name."""

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]],
        name: str,
        intensity: Intensity | None = None,
        strategy: Strategy = "one_for_one",
        *,
        timeout: float | None = None,
        cancel_grace: float | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.signature = signature_of(fn)
        self.intensity = intensity or Intensity()
        self.strategy: Strategy = strategy
        #: B4: seconds a run started with ``start()`` may take (None: no limit).
        self.timeout = timeout
        #: B4, C8: seconds from the timeout's cancel to a terminate (None: never).
        self.cancel_grace = cancel_grace
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> ChildCall[R]:
        """In a workflow body: an awaitable that runs this workflow as a child run.

        The child is a run of its own (its own log, id ``<parent>.<call>``)
        supervised by the caller's RunSupervisor. Awaiting it returns its
        result or raises what :meth:`RunHandle.result` would: ``WorkflowFailed``,
        ``RunCancelled`` or ``RunTerminated``. Cancel and terminate of the parent
        flow down to it (C7, T4).
        """
        ctx = _body_context(f"workflow {self.name!r}", "or start it with Runtime.start()")
        fits(f"workflow {self.name}", self.signature, args, kwargs, reserves_run_id=False)
        # D4: the child gets the arguments' JSON round trip, live as after a
        # resume, within the payload limit.
        sent, named = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {self.name!r}", limit=ctx.max_payload_bytes
        )
        return ChildCall(workflow=self, args=sent, kwargs=tuple(named.items()))

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


class StepDef(Generic[P, R]):
    """A step: a sync or async function run by a StepActor, one per attempt."""

    def __init__(
        self,
        fn: Callable[P, R] | Callable[P, Awaitable[R]],
        name: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        heartbeat_timeout: float | None = None,
        cancellation: CancellationType = CancellationType.TRY_CANCEL,
    ) -> None:
        if retry is not None:
            instance("@step(retry=...)", retry, RetryPolicy, "a RetryPolicy (or None)")
        self.fn = fn
        self.name = name
        self.signature = signature_of(fn)
        self.retry = retry
        self.timeout = optional_seconds("@step(timeout=...)", timeout, positive=True)
        self.heartbeat_timeout = optional_seconds(
            "@step(heartbeat_timeout=...)", heartbeat_timeout, positive=True
        )
        #: B2: what ``handle.cancel()`` does by default (Temporal's default: TRY_CANCEL).
        self.cancellation = cancellation_type("@step(cancellation=...)", cancellation)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> StepCall[R]:
        """In a workflow body: an awaitable that runs this step in a StepActor.

        Every attempt receives the arguments' JSON round trip; the await gives
        the result's (D4).

        Raises:
            NotSerializable: an argument is not JSON; nothing is recorded.
            PayloadTooLarge: the arguments' JSON is over the runtime's
                ``max_payload_bytes``.
        """
        ctx = _body_context(f"step {self.name!r}", f"or call {self.name}.fn(...) directly")
        fits(f"step {self.name}", self.signature, args, kwargs)
        # D4: arguments are JSON within the payload limit, checked here, at the
        # call, before any record; the step gets their round trip, in every
        # attempt, resumed or not.
        sent, named = roundtrip_arguments(
            args, kwargs, what=f"arguments of step {self.name!r}", limit=ctx.max_payload_bytes
        )
        return StepCall(step=self, args=sent, kwargs=tuple(named.items()))

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCall(Generic[R]):
    step: StepDef[..., R]
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    def __await__(self) -> Generator[Any, Any, R]:
        result: R = yield self
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildCall(Generic[R]):
    workflow: WorkflowDef[..., R]
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    def __await__(self) -> Generator[Any, Any, R]:
        result: R = yield self
        return result


#: What a workflow body can await, alone or in a gather().
Call = StepCall[Any] | ChildCall[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Gather:
    calls: tuple[Call, ...]
    #: SV3, for this gather; None: the workflow's strategy.
    strategy: Strategy | None = None

    def __await__(self) -> Generator[Any, Any, list[Any]]:
        results: list[Any] = yield self
        return results


def gather(*calls: Call, strategy: Strategy | None = None) -> Gather:
    """Run steps and child runs in parallel; await their results, in argument order.

    Every call runs to its end before the await resumes. A cancel reaches every
    active step and child run; if any call failed, the await raises the first
    failure in argument order (:class:`StepFailed` for a step).

    ``strategy`` (SV3, Erlang/OTP meanings) says what a step's restart does
    to its sibling steps: ``one_for_one`` (default) nothing;
    ``one_for_all`` every other step is stopped at its next check (or, if it
    finished, its result is dropped) and restarted with it; ``rest_for_one``
    the same for the steps after it in argument order. Child runs are not
    restarted by a sibling.

    Raises:
        InvalidArgumentType: an argument is not a step or child workflow
            call; for a handle of :func:`start_step` or :func:`start_child`,
            the message says to await each handle in turn (their calls
            already run in parallel; Temporal's ``asyncio.gather`` over
            handles is the same wait).
        ProctorError: called in a step or outside a workflow body.
    """
    for call in calls:
        if not isinstance(call, StepCall | ChildCall):
            raise InvalidArgumentType(
                f"gather() takes step calls and child workflow calls, got {safe_repr(call)}"
                + (_HANDLE_HINT if callable(getattr(call, "cancel", None)) else "")
            )
    _check_strategy(strategy)
    body_only("gather()")
    return Gather(calls=calls, strategy=strategy)


#: B2: gather() starts its calls itself (under its restart strategy, SV3); a
#: handle's call is already running, so awaiting each handle does the same.
_HANDLE_HINT = (
    "; a handle's call is already running: await each handle in turn"
    " (`results = [await h for h in handles]`), the calls run in parallel meanwhile"
)


def _check_strategy(strategy: str | None) -> None:
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidArgument(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")


def _body_context(what: str, hint: str) -> WorkflowContext:
    ctx = _current.get()
    if not isinstance(ctx, WorkflowContext):
        raise ProctorError(
            f"{what} was called outside a workflow body; await it inside a @workflow, {hint}"
        )
    return ctx


def workflow(
    _bare: object = None,
    /,
    *,
    name: str | None = None,
    max_restarts: int = 10,
    within: float = 60.0,
    strategy: Strategy = "one_for_one",
    timeout: float | None = None,
    cancel_grace: float | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], WorkflowDef[P, R]]:
    """Declare an ``async def`` as a workflow; ``name`` defaults to module.qualname.

    A name belongs to one definition per process: declaring a different
    function under a name already taken raises ``ValueError`` at import (see
    :func:`_register` for how "the same definition" is judged).

    ``max_restarts`` and ``within``: the run's restart intensity. Once its
    supervisor has restarted steps ``max_restarts`` times within ``within``
    seconds, it stops: the next failure raises :class:`StepFailed` in the
    body, whatever the step's retry policy says.

    ``strategy``: the default strategy of this workflow's ``gather()`` calls
    (SV3; see :func:`gather`).

    ``timeout`` (B4): seconds a run may take; at the deadline it is
    cancelled with source ``timeout`` and, with ``cancel_grace``,
    terminated that many seconds later if still not terminal (C8).
    ``start(..., timeout=...)`` overrides it. Recorded with the run, so a
    restart does not reset it (Temporal's WorkflowExecutionTimeout); see
    the guide "Run timeouts" (``_arguments.timeout_options`` for the errors).
    """
    _check_called("workflow", _bare)
    run_timeout, grace = timeout_options(timeout, cancel_grace)
    if name is not None:
        instance("@workflow(name=...)", name, str, "a str (or None)")
    _check_strategy(strategy)
    intensity = Intensity(
        max_restarts=count("@workflow(max_restarts=...)", max_restarts),
        within=seconds("@workflow(within=...)", within, positive=True),
    )

    def decorate(fn: Callable[P, Awaitable[R]]) -> WorkflowDef[P, R]:
        if not inspect.iscoroutinefunction(fn):
            raise InvalidArgumentType(f"@workflow() needs an async def, got {safe_repr(fn)}")
        _check_run_id_parameter(fn)
        wf = WorkflowDef(
            fn, name_of(fn, name), intensity, strategy, timeout=run_timeout, cancel_grace=grace
        )
        _workflows.register(wf)
        return wf

    return decorate


def _check_run_id_parameter(fn: Callable[..., Any]) -> None:
    """A2, B4: ``Runtime.start`` reserves the keywords ``run_id`` and
    ``timeout`` (``RESERVED_KEYWORDS``), so a keyword-only parameter of
    either name could never be passed; refuse it at definition."""
    signature = signature_of(fn)
    for name, role in RESERVED_KEYWORDS.items():
        param = signature.parameters.get(name) if signature is not None else None
        if param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY:
            raise InvalidArgument(
                f"workflow {safe_repr(fn)} has a keyword-only parameter {name!r}, which"
                f" Runtime.start() reserves for {role} and so could never pass;"
                " rename it, or make it positional"
            )


class _StepDecorator:
    def __init__(self, name: str | None, options: dict[str, Any]) -> None:
        self._name = name
        self._options = options

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> StepDef[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> StepDef[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> StepDef[P, Any]:
        return StepDef(fn, name_of(fn, self._name), **self._options)


def step(
    _bare: object = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    cancellation: CancellationType = CancellationType.TRY_CANCEL,
) -> _StepDecorator:
    """Declare a sync or async function as a step; ``name`` defaults to module.qualname.

    Args:
        retry: restart a failed or timed-out attempt as a fresh StepActor,
            with back-off (default: no retry). Cancel and terminate are
            never retried.
        timeout: seconds an attempt may run before it is timed out.
        heartbeat_timeout: seconds an attempt may go without ``ctx.heartbeat()``
            before it is timed out; its next attempt sees
            ``ctx.last_heartbeat_details``.
        cancellation: what ``handle.cancel()`` of a handle from
            :func:`start_step` does when it names no mode (B2; Temporal's
            ``ActivityCancellationType``, default ``TRY_CANCEL``).
    """
    _check_called("step", _bare)
    if name is not None:
        instance("@step(name=...)", name, str, "a str (or None)")
    options = {
        "retry": retry,
        "timeout": timeout,
        "heartbeat_timeout": heartbeat_timeout,
        "cancellation": cancellation,
    }
    return _StepDecorator(name, options)


def _check_called(decorator: str, bare: object) -> None:
    """``@workflow`` / ``@step`` written without parentheses pass the function."""
    if bare is not None:
        raise InvalidArgumentType(
            f"write @{decorator}() with parentheses (options are keywords), got @{decorator}"
            f" applied to {safe_repr(bare)}"
        )


def lookup_workflow(name: str) -> WorkflowDef[..., Any] | None:
    """The workflow this process registered under ``name``, if any."""
    return _workflows.get(name)


def registered_workflows() -> list[str]:
    """The names of every workflow this process has imported."""
    return _workflows.names()
