"""Children: the child runs of one run, and what flows down to them.

A child run (``await other_workflow(x)`` or ``start_child(...)``) is a
RunSupervisor of its own under its parent's, with its own log. Its id is
derived from the parent's and the call's (``parent.3``), so replaying the
parent finds the same child again. Its creation and the parent's
``child_started`` are one atomic group; its end is recorded in the parent's
log (``child_ended``) before the parent's await resumes.

What flows down (each request is written, durably, in the child's log
before the child hears of it, so whatever the child writes next is ordered
after it):

- C7: a cancel, once per child, unless the child started inside a shield;
- T4: a terminate, to every child, whatever its shields;
- parent close policy: when the parent ends with children it started with
  ``start_child()`` and did not await: ``terminate`` (the default),
  ``request_cancel`` or ``abandon`` (Temporal's policies).

Invariants: a child is in ``running`` from its spawn until its exit report
(or until it is terminated with its parent); a start_child() call's outcome
that nobody awaited yet is kept in ``finished``; the store is read only to
resume a child in flight (its owner, for the takeover), never on control.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from actors._attempts import step_event
from actors._base import tell
from actors._definitions import ChildCall
from actors._errors import WorkflowFailed, describe
from actors._messages import Append, CallEnded, Cancel, ExitReason, Shutdown, Terminate
from actors._outcomes import EXIT_STATUS, child_outcome
from persistence import EventType, NewEvent, RunState, Store, cancel_request, terminate_request

_E = EventType


@dataclass(slots=True)
class Child:
    """A child run whose RunSupervisor is running under this one."""

    ref: pykka.ActorRef[Any]
    run_id: str
    name: str
    shielded: bool
    cancel_sent: bool = False
    #: Started with start_child(): what to do with it if the parent ends first.
    policy: str | None = None


def child_run_id(run_id: str, call_id: int) -> str:
    """Derived, not random: replaying the parent finds the same child again."""
    return f"{run_id}.{call_id}"


def start_records(
    run_id: str,
    owner: str,
    call: ChildCall[Any],
    call_id: int,
    shielded: bool,
    *,
    started: Mapping[str, Any] | None = None,
) -> list[NewEvent]:
    """The parent's record and the child's creation, in one atomic group.

    ``started``: more data for the parent's ``child_started`` (a
    start_child()'s policy), built into it, never added later.
    """
    name, child_id = call.workflow.name, child_run_id(run_id, call_id)
    return [
        step_event(
            run_id,
            _E.CHILD_STARTED,
            name,
            call_id,
            None,
            child_run_id=child_id,
            shielded=shielded,
            **(started or {}),
        ),
        NewEvent(
            run_id=child_id,
            type=_E.RUN_CREATED,
            data={
                "workflow": name,
                "args": list(call.args),
                "kwargs": dict(call.kwargs),
                "parent_run_id": run_id,
                "owner": owner,
            },
        ),
    ]


def end_records(
    run_id: str, call_id: int, child: Child, reason: ExitReason
) -> tuple[list[NewEvent], NewEvent, CallEnded]:
    """How the child run ended, from its exit report: records of the child's
    own to write (its end, if its supervisor crashed before recording it),
    the parent's ``child_ended``, and what the parent's await gets."""
    data = dict(reason.data or {})
    status = EXIT_STATUS[reason.kind]
    _, error = child_outcome(child.run_id, status, data)
    own = []
    if reason.data is None and status is RunState.FAILED:
        # The child's supervisor crashed before recording its end (a
        # Proctor bug, or the store failed): record it if the store takes it.
        err = reason.error or RuntimeError("child run supervisor crashed")
        data = {"error": describe(err)}
        error = WorkflowFailed(child.run_id, data["error"])
        own.append(NewEvent(run_id=child.run_id, type=_E.RUN_FAILED, data=data))
    ended = step_event(
        run_id,
        _E.CHILD_ENDED,
        child.name,
        call_id,
        None,
        child_run_id=child.run_id,
        status=status.value,
        **data,
    )
    return own, ended, CallEnded(call_id=call_id, value=data.get("result"), error=error)


#: Starts a child run's supervisor under this one, from the keyword arguments
#: run_id, workflow, args, kwargs, resume, resume_from and resume_why.
StartChildRun = Callable[..., pykka.ActorRef[Any]]


class Children:
    """The child runs of one run (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        journal: pykka.ActorRef[Any],
        owner: str,
        reader: Store,
        start: StartChildRun,
    ) -> None:
        self._run_id = run_id
        self._journal = journal
        self._owner = owner
        self._reader = reader
        self._start = start
        #: Running children, by the parent's call id.
        self.running: dict[int, Child] = {}
        #: Call ids of children started with start_child().
        self.started: set[int] = set()
        #: Outcomes of start_child() children that ended before anyone awaited them.
        self.finished: dict[int, tuple[Any, BaseException | None]] = {}

    def __bool__(self) -> bool:
        return bool(self.running)

    def spawn(
        self,
        call_id: int,
        call: ChildCall[Any],
        shielded: bool,
        *,
        resume: bool = False,
        policy: str | None = None,
    ) -> None:
        """Start the child run of call ``call_id``; ``resume``: it exists (replay),
        and its own supervisor takes it over from the owner its record names."""
        child_id = child_run_id(self._run_id, call_id)
        previous = created_at = None
        if resume:
            found = self._reader.find_run(child_id)
            if found is not None:
                previous, created_at = found.owner, found.created_at
        ref = self._start(
            run_id=child_id,
            workflow=call.workflow,
            args=call.args,
            kwargs=call.kwargs,
            resume=resume,
            resume_from=previous,
            resume_why=f"its parent {self._run_id} was resumed",
            created_at=created_at,
        )
        self.running[call_id] = Child(
            ref=ref, run_id=child_id, name=call.workflow.name, shielded=shielded, policy=policy
        )

    def pop(self, urn: str) -> tuple[int, Child] | None:
        """The running child with this actor urn, no longer running; or None."""
        for call_id, child in self.running.items():
            if child.ref.actor_urn == urn:
                del self.running[call_id]
                return call_id, child
        return None

    def forward_cancel(self, reason: str | None) -> None:
        """C7: the run's cancel reaches each unshielded child, once."""
        for child in self.running.values():
            if not child.shielded and not child.cancel_sent:
                child.cancel_sent = True
                # Durable for the child too: its log says who asked, and why.
                self._cancel(child, reason, "parent")

    def cancel_one(self, call_id: int, reason: str | None) -> None:
        """B2: cancel this one child (source ``parent``), once; it flows down its tree (C7)."""
        child = self.running.get(call_id)
        if child is not None and not child.cancel_sent:
            child.cancel_sent = True
            self._cancel(child, reason, "parent")

    def terminate_all(self, reason: str | None, source: str = "parent") -> None:
        """T4: every child run is terminated with us, whatever its shields.

        A child the caller already terminated in the store refuses the repeat.
        """
        for child in self.running.values():
            self._terminate(child, reason, source)
        self.running.clear()

    def close(self) -> None:
        """The parent run ended: each child meets its parent close policy."""
        why = "parent run ended"
        for child in self.running.values():
            if child.policy == "request_cancel":
                self._cancel(child, why, "parent_close")
            elif child.policy != "abandon":
                self._terminate(child, why, "parent_close")

    def shutdown(self, *, abandon: bool, let_finish: bool = False) -> None:
        """The runtime stops hosting: each child leaves its run for resume
        (``let_finish``: its running steps are let finish, A4)."""
        for child in self.running.values():
            tell(child.ref, Shutdown(abandon=abandon, let_finish=let_finish))

    def _cancel(self, child: Child, reason: str | None, source: str) -> None:
        request = cancel_request(child.run_id, reason, source=source, origin=self._owner)
        cancel = Cancel(reason=reason, source=source)
        tell(self._journal, Append(events=(request,), deliver=((child.ref, cancel),)))

    def _terminate(self, child: Child, reason: str | None, source: str) -> None:
        group = terminate_request(child.run_id, reason, source=source, origin=self._owner)
        tell(self._journal, Append(events=tuple(group)))
        tell(child.ref, Terminate(reason=reason))
