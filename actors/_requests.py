"""The facade's requests to the actor tree: create a run, cancel it, terminate it.

Each request is handed to the Journal (or, for a new run, to the Guardian,
whose new supervisor writes the creation with the body's first records) and
answered once it is durable (D1). A request is two halves: its submission
(check the arguments, hand the message to the actor; a :class:`Submitted`
comes back) and its answer (wait for the reply, blocking with :meth:`Requests.wait`
or awaited with :meth:`Requests.wait_async`, then map the outcome), so the sync
and async APIs share every rule (A1).

Invariants:

* a request returns only once its record is durable, or raises
  :class:`OutcomeUnknown` naming the run when no answer came within
  ``request_timeout``, or when the store's server dropped the connection
  (it may have committed: A3), or a :class:`StoreError` when nothing of it
  was written;
* a control message reaches a hosted run's supervisor only after its record
  commits (the Journal delivers it), never before;
* a request on a terminal run changes nothing and says so (C6), never raises;
* the awaited answer never blocks the event loop: the actor resolves a
  :class:`Reply`, which wakes the loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pykka

from actors._arguments import binder, fits, flag, optional_seconds, text
from actors._arguments import run_id as check_run_id
from actors._base import tell
from actors._clock import Clock
from actors._definitions import WorkflowDef
from actors._directory import Directory
from actors._errors import RuntimeClosed
from actors._handle import ControlResult, cut_note, refused_result, terminated_result
from actors._messages import (
    Cancel,
    ControlAppend,
    GraceExpired,
    ScheduleTimer,
    StartRun,
    Terminate,
    TerminateTree,
)
from actors._replies import Creation, Reply, Submitted
from actors._run_timeouts import start_deadline
from actors._starts import settle_creation
from actors._tracing import trace_context
from persistence import (
    Appended,
    AppendOutcome,
    EventType,
    InvalidArgumentType,
    NewEvent,
    OutcomeUnknown,
    ProctorError,
    RunIdInUse,
    RunNotFound,
    RunState,
    Store,
    StoreError,
    StoreUnavailable,
    cancel_request,
    cap_reason,
    check_chosen_run_id,
    check_reason,
    deadline_of,
    existing_start,
    reason_cut,
    roundtrip_arguments,
    safe_repr,
)

T = TypeVar("T")


class Requests:
    """Writes of one runtime's facade, through its Guardian and Journal.

    Args:
        owner: the runtime's id (the owner of the runs it creates, the
            origin of its requests).
        guardian, journal, timers: the runtime's actors.
        directory: the runs hosted here, to deliver control to.
        clock: the Timers' clock (a cancel's grace counts on it).
        request_timeout: seconds to wait for a durable answer.
        reader: the runtime's store, to read a run whose id a start met (A2).
        closing: whether the runtime's close has begun.
    """

    def __init__(
        self,
        *,
        owner: str,
        guardian: pykka.ActorRef[Any],
        journal: pykka.ActorRef[Any],
        timers: pykka.ActorRef[Any],
        directory: Directory,
        clock: Clock,
        request_timeout: float,
        reader: Store,
        closing: Callable[[], bool],
    ) -> None:
        self._owner = owner
        self._guardian = guardian
        self._journal = journal
        self._timers = timers
        self._directory = directory
        self._clock = clock
        self._request_timeout = request_timeout
        self._reader = reader
        self._closing = closing

    def create(
        self,
        workflow: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        limit: int,
        run_id: str | None = None,
        timeout: float | None = None,
    ) -> Submitted[str]:
        """Start a new run of ``workflow``; answers its id. See :meth:`Runtime.start`.

        ``limit``: the most bytes of JSON the arguments may take; ``run_id``:
        the caller's id for the run (A2), None for a new random one. With a
        chosen id this reads the store (is it the same start again?): call
        it off an event loop's thread. ``timeout``: the run's (B4), None
        for the workflow's own.
        """
        if not isinstance(workflow, WorkflowDef):
            raise InvalidArgumentType(f"start() takes a @workflow(), got {safe_repr(workflow)}")
        # B4's deadline, and O2's trace context of the caller (``_tracing``).
        extra = start_deadline(workflow, timeout, now=self._clock.time()) | trace_context()
        chosen = run_id is not None
        run_id = check_chosen_run_id(run_id) if chosen else uuid.uuid4().hex
        # D4: the body gets the arguments' JSON round trip, as it will after a resume.
        args, kwargs = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {workflow.name!r}", limit=limit
        )
        # ...and they must fit its signature, or the run would only fail (as `proctor start`).
        fits(f"workflow {workflow.name}", workflow.signature, args, kwargs)
        created = NewEvent(
            run_id=run_id,
            type=EventType.RUN_CREATED,
            data={
                "workflow": workflow.name,
                "args": list(args),
                "kwargs": kwargs,
                "owner": self._owner,
                **extra,
            },
        )
        return self.host_new(workflow, created, chosen=chosen)

    def host_new(
        self,
        workflow: WorkflowDef[..., Any],
        created: NewEvent,
        reused: tuple[NewEvent, ...] = (),
        *,
        chosen: bool,
    ) -> Submitted[str]:
        """Create the run ``created`` describes and host it here; answers its id.

        ``reused``: a restart's reused calls (A7), written with the creation.
        ``chosen``: the caller chose the id (A2): the same start of an
        existing run id gets that run, started again by nothing (``_starts``);
        the store is read first, and the answer may wait for a creation of
        the same id in flight here (``Submitted.blocking``).
        """
        run_id = created.run_id
        reply: Reply[tuple[AppendOutcome, ...]] = Reply()
        bind = binder(workflow.signature)
        if chosen and existing_start(self._reader, created, bind) is not None:
            reply.set(())  # the same start again (A2): nothing new runs
            answered = Creation(created=False)
            return Submitted(
                reply=reply,
                run_id=run_id,
                request="start",
                answer=lambda _: run_id,
                creation=answered,
            )
        # The run's supervisor writes the record with the body's first ones
        # (usually the first step's start), in one group; we answer once it
        # is durable.
        d = created.data
        tell(
            self._guardian,
            StartRun(
                run_id=run_id,
                workflow=workflow,
                args=tuple(d["args"]),
                kwargs=tuple(d["kwargs"].items()),
                state=RunState.PENDING,
                create=created,
                created=reply,
                reused=reused,
                deadline=deadline_of(d),
            ),
        )
        late = (
            f"its creation was not confirmed within {self._request_timeout}s (the store is slow"
            " or locked, or the body blocked before its first await: its creation is written"
            " with the body's first step, so a workflow body must not block; do blocking"
            " work in a step)"
        )

        creation = Creation()

        def answer(outcomes: tuple[AppendOutcome, ...]) -> str:
            settled = settle_creation(
                outcomes,
                created,
                reader=self._reader,
                bind=bind,
                hosted=lambda r: self._directory.get(r) is not None,
                timeout=self._request_timeout,
            )
            if settled is None:
                # The creation of this id in flight here failed, writing
                # nothing (its supervisor is gone): this start is the first.
                again = self.host_new(workflow, created, reused, chosen=chosen)
                answered = self.wait(again)
                creation.created = again.created
                return answered
            creation.created = settled
            return run_id

        return Submitted(
            reply=reply,
            run_id=run_id,
            request="start",
            answer=answer,
            late=late,
            blocking=chosen,
            creation=creation,
        )

    def cancel(
        self,
        run_id: str,
        reason: str | None,
        *,
        wait: bool,
        timeout: float | None,
        grace: float | None,
        source: str,
    ) -> Submitted[ControlResult]:
        """C1, C6, C8: see :meth:`Runtime.cancel`; the caller waits (``wait``)."""
        ref = self._directory.get(check_run_id(run_id))
        # Every argument is checked before the request is written.
        reason = check_reason(reason)  # refused here, not by the Journal
        optional_seconds("timeout", timeout)
        flag("wait", wait)
        text("source", source)
        cut, reason = reason_cut(reason), cap_reason(reason)
        event = cancel_request(run_id, reason, source=source, origin=self._owner, grace=grace)
        deliver = ((ref, Cancel(reason=reason, source=source)),) if ref is not None else ()

        def answer(outcomes: tuple[AppendOutcome, ...]) -> ControlResult:
            return self._cancelled(run_id, outcomes[0], reason, grace=grace, cut=cut)

        return self._append(event, run_id=run_id, request="cancel", deliver=deliver, answer=answer)

    def _cancelled(
        self,
        run_id: str,
        outcome: AppendOutcome,
        reason: str | None,
        *,
        grace: float | None,
        cut: bool,
    ) -> ControlResult:
        if not isinstance(outcome, Appended):
            return refused_result(run_id, outcome, "cancel")
        if grace is not None:
            tell(
                self._timers,
                ScheduleTimer(
                    token=("grace", run_id),
                    due=self._clock.monotonic() + grace,
                    target=self._guardian,
                    message=GraceExpired(run_id=run_id, reason=reason),
                ),
            )
        changed = outcome.changed
        message = "cancel requested" if changed else "run is already cancelling"
        return ControlResult(
            run_id=run_id, status=outcome.status, changed=changed, message=message + cut_note(cut)
        )

    def terminate(
        self, run_id: str, reason: str | None, *, source: str
    ) -> Submitted[ControlResult]:
        """T1, T4: see :meth:`Runtime.terminate`."""
        run_id = check_run_id(run_id)
        reason = check_reason(reason)  # refused here, not by the Journal
        text("source", source)
        ref = self._directory.get(run_id)
        cut, reason = reason_cut(reason), cap_reason(reason)
        deliver = ((ref, Terminate(reason=reason)),) if ref is not None else ()
        # The whole tree in one transaction, through our one writer: durable
        # before we return, and reaching children no runtime of ours hosts.
        # (The run's supervisor also terminates its live children's actors.)
        reply: Reply[Any] = Reply()
        tell(
            self._journal,
            TerminateTree(
                run_id=run_id,
                reason=reason,
                source=source,
                origin=self._owner,
                reply=reply,
                deliver=deliver,
            ),
        )

        def answer(reply: tuple[AppendOutcome, tuple[str, ...]]) -> ControlResult:
            outcome = reply[0]
            if not isinstance(outcome, Appended):
                return refused_result(run_id, outcome, "terminate")
            return terminated_result(run_id, cut)

        return Submitted(reply=reply, run_id=run_id, request="terminate", answer=answer)

    def _append(
        self,
        *events: NewEvent,
        run_id: str,
        request: str,
        answer: Callable[[tuple[AppendOutcome, ...]], T],
        deliver: tuple[tuple[Any, Any], ...] = (),
    ) -> Submitted[T]:
        reply: Reply[tuple[AppendOutcome, ...]] = Reply()
        # Control-first: a cancel does not wait behind the Journal's backlog.
        tell(self._journal, ControlAppend(events=events, reply=reply, deliver=deliver))
        return Submitted(reply=reply, run_id=run_id, request=request, answer=answer)

    def wait(self, submitted: Submitted[T]) -> T:
        """The answer to a submitted request, blocking this thread for it.

        Raises:
            OutcomeUnknown: no answer within ``request_timeout``, or the store's
                server out of reach (a connection may drop after the commit):
                the request may yet take effect, or have taken it (A3).
            StoreError: the store refused it, or the Journal had stopped;
                nothing of it was written.
            RuntimeClosed: the runtime closes, and the actor stopped or the
                store closed before the request was written: nothing was.
        """
        with self._closing_means_closed(submitted):
            try:
                value = submitted.reply.get(timeout=self._request_timeout)
            except pykka.Timeout as exc:
                raise self._unknown(submitted) from exc
            return submitted.answer(value)

    async def wait_async(self, submitted: Submitted[T]) -> T:
        """Like :meth:`wait`, awaited: the event loop runs on meanwhile (A1)."""
        with self._closing_means_closed(submitted):
            try:
                value = await submitted.reply.wait_async(self._request_timeout)
            except pykka.Timeout as exc:
                raise self._unknown(submitted) from exc
            if submitted.blocking:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, submitted.answer, value)
            return submitted.answer(value)

    @contextlib.contextmanager
    def _closing_means_closed(self, submitted: Submitted[Any]) -> Iterator[None]:
        """A store error, or an actor's refusal, met while the runtime closes
        is its close: the request was not written (the actor stopped, or the
        store closed, first), and the caller hears ``RuntimeClosed``, as it
        would a moment later, not the error of a stopped part (A3)."""
        try:
            yield
        except StoreUnavailable as exc:  # the connection may have dropped after the commit
            raise OutcomeUnknown(submitted.run_id, submitted.request, str(exc)) from exc
        except (StoreError, ProctorError) as exc:
            if isinstance(exc, OutcomeUnknown | RunIdInUse | RunNotFound) or not self._closing():
                raise
            raise RuntimeClosed(
                f"runtime {self._owner} closed before the {submitted.request} of run"
                f" {submitted.run_id} was written ({exc}); nothing of it was"
            ) from exc

    def _unknown(self, submitted: Submitted[Any]) -> OutcomeUnknown:
        detail = submitted.late or f"the journal did not answer within {self._request_timeout}s"
        return OutcomeUnknown(submitted.run_id, submitted.request, detail)
