"""The facade's requests to the actor tree: create a run, cancel it, terminate it.

Each request is handed to the Journal (or, for a new run, to the Guardian,
whose new supervisor writes the creation with the body's first records) and
answered once it is durable (D1).

Invariants:

* a request returns only once its record is durable, or raises
  :class:`OutcomeUnknown` naming the run when no answer came within
  ``request_timeout`` (it may still take effect, A3), or a
  :class:`StoreError` when nothing of it was written;
* a control message reaches a hosted run's supervisor only after its record
  commits (the Journal delivers it), never before;
* a request on a terminal run changes nothing and says so in its
  :class:`ControlResult` (C6): it does not raise.
"""

from __future__ import annotations

import uuid
from typing import Any

import pykka

from actors._arguments import fits, flag, optional_seconds, text
from actors._arguments import run_id as check_run_id
from actors._base import tell
from actors._clock import Clock
from actors._definitions import WorkflowDef
from actors._directory import Directory
from actors._handle import ControlResult
from actors._messages import (
    Cancel,
    ControlAppend,
    GraceExpired,
    ScheduleTimer,
    StartRun,
    Terminate,
    TerminateTree,
)
from actors._starts import settle_creation
from actors._waiting import RunWaiter
from persistence import (
    MAX_REASON_BYTES,
    Appended,
    AppendOutcome,
    EventType,
    InvalidArgumentType,
    NewEvent,
    OutcomeUnknown,
    RunNotFound,
    RunState,
    Store,
    cancel_request,
    cap_reason,
    check_chosen_run_id,
    check_reason,
    existing_start,
    reason_cut,
    roundtrip_arguments,
    safe_repr,
)


def _cut_note(cut: bool) -> str:
    return f" (its reason was cut to {MAX_REASON_BYTES} bytes)" if cut else ""


class Requests:
    """Writes of one runtime's facade, through its Guardian and Journal.

    Args:
        owner: the runtime's id (the owner of the runs it creates, the
            origin of its requests).
        guardian, journal, timers: the runtime's actors.
        directory: the runs hosted here, to deliver control to.
        clock: the Timers' clock (a cancel's grace counts on it).
        waiter: waits for a run's end (``cancel(wait=True)``).
        request_timeout: seconds to wait for a durable answer.
        reader: the runtime's store, to read a run whose id a start met (A2).
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
        waiter: RunWaiter,
        request_timeout: float,
        reader: Store,
    ) -> None:
        self._owner = owner
        self._guardian = guardian
        self._journal = journal
        self._timers = timers
        self._directory = directory
        self._clock = clock
        self._waiter = waiter
        self._request_timeout = request_timeout
        self._reader = reader

    def create(
        self,
        workflow: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        limit: int,
        run_id: str | None = None,
    ) -> str:
        """Start a new run of ``workflow``; its id. See :meth:`Runtime.start`.

        ``limit``: the most bytes of JSON the arguments may take; ``run_id``:
        the caller's id for the run (A2), None for a new random one.
        """
        if not isinstance(workflow, WorkflowDef):
            raise InvalidArgumentType(f"start() takes a @workflow(), got {safe_repr(workflow)}")
        chosen = run_id is not None
        run_id = check_chosen_run_id(run_id) if chosen else uuid.uuid4().hex
        # D4: the body gets the arguments' JSON round trip, as it will after a resume.
        args, kwargs = roundtrip_arguments(
            args, kwargs, what=f"arguments of workflow {workflow.name!r}", limit=limit
        )
        # ...and they must fit its signature, or the run would only fail (as
        # ``proctor start`` checks too).
        fits(f"workflow {workflow.name}", workflow.signature, args, kwargs)
        created = NewEvent(
            run_id=run_id,
            type=EventType.RUN_CREATED,
            data={
                "workflow": workflow.name,
                "args": list(args),
                "kwargs": kwargs,
                "owner": self._owner,
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
    ) -> str:
        """Create the run ``created`` describes and host it here; its id.

        ``reused``: a restart's reused calls (A7), written with the creation.
        ``chosen``: the caller chose the id (A2): the same start of an
        existing run id gets that run, started again by nothing (``_starts``).
        """
        run_id = created.run_id
        if chosen and existing_start(self._reader, created) is not None:
            return run_id  # the same start again (A2): nothing new runs
        # The run's supervisor writes the record with the body's first ones
        # (usually the first step's start), in one group; we return once it
        # is durable.
        reply: pykka.Future[tuple[AppendOutcome, ...]] = pykka.ThreadingFuture()
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
            ),
        )
        late = (
            f"its creation was not confirmed within {self._request_timeout}s (the store is slow"
            " or locked, or the body blocked before its first await: its creation is written"
            " with the body's first step, so a workflow body must not block; do blocking"
            " work in a step)"
        )
        outcomes = self._answer(reply, run_id, "start", late)
        settle_creation(
            outcomes,
            created,
            reader=self._reader,
            hosted=lambda r: self._directory.get(r) is not None,
            timeout=self._request_timeout,
        )
        return run_id

    def cancel(
        self,
        run_id: str,
        reason: str | None,
        *,
        wait: bool,
        timeout: float | None,
        grace: float | None,
        source: str,
    ) -> ControlResult:
        """C1, C6, C8: see :meth:`Runtime.cancel`."""
        ref = self._directory.get(check_run_id(run_id))
        # Every argument is checked before the request is written.
        reason = check_reason(reason)  # refused here, not by the Journal
        timeout = optional_seconds("timeout", timeout)
        flag("wait", wait)
        text("source", source)
        cut, reason = reason_cut(reason), cap_reason(reason)
        event = cancel_request(run_id, reason, source=source, origin=self._owner, grace=grace)
        deliver = ((ref, Cancel(reason=reason, source=source)),) if ref is not None else ()
        outcome = self._append(event, run_id=run_id, request="cancel", deliver=deliver)[0]
        if not isinstance(outcome, Appended):
            return self._refused(run_id, outcome, "cancel")
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
        status = outcome.status
        if wait:
            status = self._waiter.wait_finished(run_id, timeout).status
        message = "cancel requested" if changed else "run is already cancelling"
        return ControlResult(
            run_id=run_id, status=status, changed=changed, message=message + _cut_note(cut)
        )

    def terminate(self, run_id: str, reason: str | None, *, source: str) -> ControlResult:
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
        reply: pykka.Future[Any] = pykka.ThreadingFuture()
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
        outcome, _ = self._answer(reply, run_id, "terminate")
        if not isinstance(outcome, Appended):
            return self._refused(run_id, outcome, "terminate")
        return ControlResult(
            run_id=run_id,
            status=RunState.TERMINATED,
            changed=True,
            message="terminated" + _cut_note(cut),
        )

    def _append(
        self,
        *events: NewEvent,
        run_id: str,
        request: str,
        deliver: tuple[tuple[Any, Any], ...] = (),
    ) -> tuple[AppendOutcome, ...]:
        reply: pykka.Future[tuple[AppendOutcome, ...]] = pykka.ThreadingFuture()
        # Control-first: a cancel does not wait behind the Journal's backlog.
        tell(self._journal, ControlAppend(events=events, reply=reply, deliver=deliver))
        return self._answer(reply, run_id, request)  # type: ignore[no-any-return]

    def _answer(
        self, reply: pykka.Future[Any], run_id: str, request: str, late: str | None = None
    ) -> Any:
        """The Journal's answer to ``request`` of ``run_id``.

        Raises:
            OutcomeUnknown: no answer within ``request_timeout``: the request was
                handed to the Journal and may yet take effect (A3).
            StoreError: the store refused it, or the Journal had stopped;
                nothing of it was written.
        """
        try:
            return reply.get(timeout=self._request_timeout)
        except pykka.Timeout as exc:
            detail = late or f"the journal did not answer within {self._request_timeout}s"
            raise OutcomeUnknown(run_id, request, detail) from exc

    @staticmethod
    def _refused(run_id: str, outcome: AppendOutcome, verb: str) -> ControlResult:
        status = outcome.status
        if status is None:
            raise RunNotFound(run_id)
        return ControlResult(
            run_id=run_id,
            status=status,
            changed=False,
            message=f"run already finished: {status}; {verb} changed nothing",
        )
