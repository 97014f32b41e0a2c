"""The Journal: the single writer of the store in a process (D1).

It group-commits: when it wakes for one Append it also takes every Append
already waiting behind it (up to ``max_batch``) and writes them all in one
transaction, so N concurrent runs pay for about one commit, not N.

It also keeps the runtime's registration alive (the Runtime writes it when
it is built): it renews the lease that vouches for the runs this runtime
owns, and releases it when the runtime stops (D2). Every write names
this runtime as the writer, so the store fences it off a run it no longer
owns. What those writes teach about ownership is kept by its Tenure
(``_tenure``), which tells the LeaseGuard and the Guardian.

What stays here though it is not only writing, and why: terminate-tree is
one transaction (T1 and T4 together), so it is a write; launching prepared
step actors and delivering control messages after a commit is how a
commit is acknowledged (the effect follows the durable record, D1), and
moving it to another actor would add a hop and a window in which the
record is durable but its effect not yet under way.

Invariant: a message taken from the mailbox is answered (committed,
refused, or its requester told of the failure); an Append of a run whose
earlier group failed never commits after it (no hole in the log).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from actors._base import ProctorActor, logger, tell
from actors._census import Census
from actors._fencing import LeaseGuard
from actors._halt import check_halted
from actors._messages import (
    Append,
    ControlAppend,
    Heartbeat,
    Journaled,
    RenewLease,
    StoreLost,
    TerminateTree,
)
from actors._tenure import Tenure
from actors._tracing import TraceSink
from actors._undeliverable import refuse
from persistence import (
    TERMINAL_EVENTS,
    Appended,
    AppendOutcome,
    EventType,
    FileIdentity,
    HeartbeatRecord,
    NewEvent,
    Refused,
    RunState,
    Store,
    StoreCorrupt,
    StoreError,
    StoreReplaced,
    Synchronous,
    open_same_store,
)

#: Most Appends one transaction takes (group commit); ``Runtime(max_batch=)``.
MAX_BATCH: Final = 512

#: The first event of a new supervisor's first group: it takes the run from
#: the log as the store has it (created, claimed from nobody, resumed).
_TAKES: Final = frozenset({EventType.RUN_CREATED, EventType.RUN_CLAIMED, EventType.RUN_RESUMED})
#: WAL pages (4 KiB) after which a commit checkpoints itself: only if the
#: ControlInbox's checkpoints fall behind.
JOURNAL_AUTOCHECKPOINT: Final = 10_000

#: Called with the events of each commit, after it is durable and before anyone
#: hears of it: fault injection for crash tests ("die right after step X is
#: recorded"). Empty in production.
AFTER_COMMIT: list[Callable[[list[NewEvent]], None]] = []


def _batchable(message: Any) -> bool:
    return isinstance(message, Append | Heartbeat)


class Journal(ProctorActor):
    def __init__(
        self,
        *,
        census: Census,
        parent: Any,
        path: str | os.PathLike[str],
        synchronous: Synchronous,
        busy_timeout: float,
        on_terminal: Callable[[str, RunState], None],
        owner: str,
        lease_ttl: float,
        halted: threading.Event,
        max_batch: int = MAX_BATCH,
        opened: FileIdentity | None = None,
        guard: LeaseGuard | None = None,
        hosted: Callable[[], list[str]] = list,
        tracing: TraceSink | None = None,
    ) -> None:
        super().__init__(parent=parent, name="Journal", census=census)
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._max_batch = max_batch
        #: The file the runtime opened: the Journal never opens another one.
        self._opened = opened
        #: What this runtime owns, as learnt from these writes (and renewals).
        self._tenure = Tenure(owner=owner, guard=guard, hosted=hosted, guardian=parent)
        self._owner = owner
        self._lease_ttl = lease_ttl
        #: Set by Runtime.kill(): from then on nothing reaches the store, as
        #: if the process had died.
        self._halted = halted
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._on_terminal = on_terminal
        self._store: Store | None = None
        #: Runs one of whose supervisor's groups failed to commit: no later
        #: group of that supervisor may commit, or the log would have a hole
        #: (it sends its next group before it hears of the failure). The
        #: supervisor stops on the Journaled error and the run waits for a
        #: runtime that can write it (D2). Requests from outside (cancel,
        #: terminate) are not held back.
        self._broken: dict[str, StoreError] = {}
        #: O2: the runtime's spans, fed with what each commit made durable.
        self._tracing = tracing

    def started(self) -> None:
        # The connection is made in the journal's own thread: it is its only user.
        # Checkpoints (copying the WAL back, with an fsync) are the
        # ControlInbox's job, off the path of every commit; this is a backstop.
        self._store = open_same_store(
            self._path,
            self._opened,
            synchronous=self._synchronous,
            busy_timeout=self._busy_timeout,
            autocheckpoint=JOURNAL_AUTOCHECKPOINT,
        )

    def stopping(self) -> None:
        if self._store is None:
            return
        try:
            if not self._halted.is_set():
                # Stopped on purpose: our unfinished runs may be resumed at once.
                self._store.release_runtime(self._owner)
                if self._tracing is not None:
                    self._tracing.suspend(time.time())
        except StoreError as exc:
            logger.warning("journal: could not release runtime %s: %s", self._owner, exc)
        finally:
            self._store.close()

    def handle(self, message: Any) -> None:
        if isinstance(message, RenewLease):
            self._renew()
            return
        if isinstance(message, TerminateTree):
            self._terminate_tree(message)
            return
        if not isinstance(message, Append | Heartbeat):
            raise TypeError(f"Journal cannot handle {message!r}")
        batch: list[Append] = []
        beats: dict[tuple[str, int, int], Heartbeat] = {}
        # Invariant: a message taken from the inbox is in ``batch`` or
        # ``beats``; the batch is full before the next one is taken, never after.
        while True:
            if isinstance(message, Append):
                batch.append(message)
            else:  # only the newest heartbeat of an attempt matters
                beats[(message.run_id, message.call, message.attempt)] = message
            if len(batch) >= self._max_batch:
                break
            message = self.inbox.take_nowait_if(_batchable)
            if message is None:
                break
        try:
            self._commit(batch, list(beats.values()))
        except BaseException as exc:
            # A bug, not a store error (those are answered in _commit): the
            # Journal fails, but nobody in this batch waits for an answer.
            error = StoreError(f"the journal failed while writing: {exc!r}")
            for append in batch:
                refuse(append, error)
            raise

    @classmethod
    def refusal(cls, name: str) -> BaseException:
        return StoreError(f"the {name} has stopped: nothing more is written")

    def _terminate_tree(self, msg: TerminateTree) -> None:
        """A run and its unfinished descendants, TERMINATED in one transaction."""
        assert self._store is not None
        try:
            self._check_alive()
            outcome, terminated = self._store.terminate_tree(
                msg.run_id, msg.reason, source=msg.source, origin=msg.origin
            )
        except StoreError as exc:
            self._store_failed(exc)
            msg.reply.set_exception((type(exc), exc, exc.__traceback__))
            return
        if outcome.accepted and _changed(outcome):
            for target, control in msg.deliver:
                tell(target, control)
            for run_id in (msg.run_id, *terminated):
                self._on_terminal(run_id, RunState.TERMINATED)
            if self._tracing is not None and isinstance(outcome, Appended) and outcome.ts:
                self._tracing.terminated((msg.run_id, *terminated), msg.reason, outcome.ts)
        msg.reply.set((outcome, tuple(terminated)))

    def _check_alive(self) -> None:
        check_halted(self._halted, self._owner)

    def _store_failed(self, exc: StoreError) -> None:
        """A write failed: if the file itself is gone or damaged, the runtime must stop.

        A check that cannot be made (a server store's server unreachable, say)
        proves nothing lost: the run's supervisor stops and is hosted again.
        """
        assert self._store is not None
        lost: StoreError | None = exc if isinstance(exc, StoreReplaced | StoreCorrupt) else None
        if lost is None and not self._halted.is_set():
            try:
                self._store.check_same_store()
            except (StoreReplaced, StoreCorrupt) as gone:
                lost = gone
            except StoreError as unknown:
                logger.warning("journal: cannot check the store after a failed write: %s", unknown)
        if lost is not None and self._parent is not None and not self._halted.is_set():
            tell(self._parent, StoreLost(error=lost))

    def _renew(self) -> None:
        assert self._store is not None
        if self._halted.is_set():
            return
        # Measured from before the write is sent: an observer's count of our
        # silence starts no earlier than its commit (fencing, P3).
        sent = self._tenure.now()
        try:
            renewed = self._store.renew_lease(self._owner, ttl=self._lease_ttl)
            if renewed:
                self._tenure.renewed(sent, self._store)
        except StoreError as exc:  # locked, say; the lease has slack for a retry
            logger.warning("journal: could not renew the lease of %s: %s", self._owner, exc)
            return
        if not renewed:
            self._tenure.revoked(self._store)

    def _commit(self, batch: list[Append], beats: list[Heartbeat]) -> None:
        assert self._store is not None
        if self._broken:
            batch = self._refuse_broken(batch)
        if self._tracing is not None:
            batch = [self._stamped(append, self._tracing) for append in batch]
        heartbeats = [
            HeartbeatRecord(b.run_id, b.call, b.attempt, b.at, b.details_json) for b in beats
        ]
        foreign: set[str] = set()
        try:
            self._check_alive()
            results = self._store.append_groups(
                [a.events for a in batch], heartbeats, writer=self._owner, foreign=foreign
            )
        except StoreError as exc:
            self._store_failed(exc)
            for append in batch:
                if append.notify is not None:
                    self._broken.update((event.run_id, exc) for event in append.events)
                self._answer(append, (), exc)
            return
        if AFTER_COMMIT:
            committed = [
                event
                for append, outcomes in zip(batch, results, strict=True)
                for event, outcome in zip(append.events, outcomes, strict=True)
                if outcome.accepted
            ]
            for hook in AFTER_COMMIT:
                hook(committed)
            if self._halted.is_set():
                # A hook "crashed" the process right after this commit: as
                # after a real crash, nothing of it takes effect here (no
                # step launched, no actor told); a new runtime resumes from
                # it. A caller outside the actors hears the truth: durable.
                killed = StoreError(f"runtime {self._owner} was killed after this commit")
                for append, outcomes in zip(batch, results, strict=True):
                    if append.reply is not None:
                        append.reply.set(tuple(outcomes))
                    refuse(dataclasses.replace(append, reply=None), killed)
                return
        for run_id in foreign:
            self._tenure.lost(run_id, f"a heartbeat found run {run_id} owned by another runtime")
        for append, outcomes in zip(batch, results, strict=True):
            first = append.events[0] if append.events else None
            if first and first.type in _TAKES and outcomes[0].accepted:
                self._broken.pop(first.run_id, None)  # hosted again, from its log
            for event, outcome in zip(append.events, outcomes, strict=True):
                if isinstance(outcome, Refused) and outcome.fenced:
                    self._tenure.lost(event.run_id, outcome.reason)
                elif outcome.accepted:
                    self._tenure.note(event)
            self._answer(append, tuple(outcomes), None)
            for event, outcome in zip(append.events, outcomes, strict=True):
                if isinstance(outcome, Appended) and event.type in TERMINAL_EVENTS:
                    self._on_terminal(event.run_id, outcome.status)
        if self._tracing is not None:  # after every answer: it never delays one
            for append, outcomes in zip(batch, results, strict=True):
                self._tracing.committed(append.events, outcomes)

    @staticmethod
    def _stamped(append: Append, tracing: TraceSink) -> Append:
        events = tracing.stamp(append.events)
        return append if events is None else dataclasses.replace(append, events=events)

    def _refuse_broken(self, batch: list[Append]) -> list[Append]:
        """Refuse, with the original error, a supervisor's append for a broken run."""
        kept = []
        for append in batch:
            broken = next(
                (self._broken[e.run_id] for e in append.events if e.run_id in self._broken), None
            )
            # A group that takes the run (creates, claims or resumes it) is
            # a new supervisor starting over from the log as it is (the
            # store refuses it if the log is not what it read): the hole a
            # failed group would leave is not there. A creation that failed
            # wrote nothing, so a retried start of that id is such a group.
            fresh = append.events[0].type in _TAKES
            if broken is None or append.notify is None or fresh:
                kept.append(append)
            else:
                self._answer(
                    append, (), StoreError(f"an earlier record of this run failed: {broken}")
                )
        return kept

    def _answer(
        self, append: Append, outcomes: tuple[AppendOutcome, ...], error: StoreError | None
    ) -> None:
        # Deliver first: when the requester's future resolves, the control
        # message is already in the supervisor's mailbox.
        accepted = error is None and all(o.accepted for o in outcomes)
        if accepted and _delivers(append, outcomes):
            for target, msg in append.deliver:
                tell(target, msg)
            for actor in append.launch:
                actor.launch()
        else:
            for actor in append.launch:
                actor.discard()
        if append.reply is not None:
            if error is None:
                append.reply.set(outcomes)
            else:
                append.reply.set_exception((type(error), error, error.__traceback__))
        if append.notify is not None and not (accepted and append.launch):
            events = append.events if error is not None else ()
            tell(
                append.notify,
                Journaled(tag=append.tag, outcomes=outcomes, error=error, events=events),
            )


def _changed(outcome: AppendOutcome) -> bool:
    return isinstance(outcome, Appended) and outcome.changed


def _delivers(append: Append, outcomes: tuple[AppendOutcome, ...]) -> bool:
    """Whether an accepted group's control messages are delivered.

    A control request of the facade is delivered only if it changed the
    run's state, that is, if it is the first recorded (C6): a request that
    found the run already CANCELLING (or TERMINATED) was preceded by another,
    perhaps from another process and still on its way through the
    ControlInbox, and the supervisor must act on that first one, whose reason
    the run's record keeps.
    """
    # Judged by the group, not by each event: a terminate's group
    # (terminate_requested, run_terminated) changes the state at its last.
    return not isinstance(append, ControlAppend) or any(_changed(o) for o in outcomes)
