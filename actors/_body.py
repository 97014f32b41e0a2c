"""Body: the workflow body's coroutine, stepped by hand (a trampoline).

The body is an ``async def``; its supervisor never awaits it. ``run`` sends
it a value (or throws an exception) and takes back what it awaits next: a
step, a child run, a gather. What the await needs is the supervisor's
business (``BodyHost.on_await``); it answers at once (replay, or a cancel
met) or later, when the call ends and ``run`` is called again.

Checkpoints (C2, C3, S2): each await, and ``ctx.check_cancellation()``, is
a checkpoint. Live, a cancel is delivered there while the run is
cancelling and no shield is active, at every checkpoint (level-triggered),
and recorded once per unshielded stretch (``cancel_delivered``, naming the
checkpoint). In replay the log decides: the cancel is delivered again
exactly at the checkpoint it names, and the body's own records (shields,
deliveries) are matched one by one, not written twice (D2).

Invariants: the body runs only inside ``run`` (or ``close``), with its
context set; once it ends or is closed it never runs again, and a closed
body's ``finally:`` blocks run sealed (they can neither start a step nor
write to the log); a body whose replay diverged from its log is failed
before anything it asked for runs.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from actors._asyncio_misuse import translated
from actors._attempts import Waiting
from actors._base import logger
from actors._context import WorkflowContext, reset_current, set_current
from actors._definitions import Call, WorkflowDef
from actors._errors import CancellationError, NonDeterminismError, Terminated
from actors._log_records import run_extra
from actors._replay import History, RecordedCall
from actors._sleep import TimerCall
from persistence import EventType, safe_repr

_E = EventType

#: What an await gives the body: (value, error); error is raised instead.
AwaitResult = tuple[Any, BaseException | None]


class BodyHost(Protocol):
    """What the body needs of its run supervisor."""

    @property
    def replaying(self) -> bool:
        """The body is still re-running its log."""

    @property
    def terminated(self) -> bool:
        """T2: the body gets no further say."""

    def go_live(self) -> None:
        """The body made a call its log does not have (or consumed it all)."""

    def cancel_due(self) -> bool:
        """Live: the run is cancelling and no shield is active."""

    def cancelling(self) -> bool:
        """Live: the run is cancelling."""

    def cancel_reason(self) -> str | None: ...

    def record(self, type_: EventType, **data: Any) -> None:
        """Record one of the run's own events (its effect waits for nothing)."""

    def on_await(self, command: Any) -> AwaitResult | None:
        """Start what the body awaits; or, if it can resume at once, how."""

    def resume_later(self, reason: str | None) -> None:
        """Resume the body with a CancellationError through the mailbox."""

    def finish_completed(self, value: Any) -> None: ...

    def finish_cancelled(self, reason: str | None) -> None: ...

    def finish_failed(self, exc: BaseException) -> None: ...


class ScopeHook(Protocol):
    """B3: the body's cancel scopes (``_scopes.Scopes``), as checkpoints see them."""

    def at_checkpoint(self, checkpoint: int, *, replaying: bool) -> CancellationError | None:
        """The cancel of the scope met at this checkpoint, or None."""

    def started(self, call_id: int) -> None:
        """Call ``call_id`` starts inside the open scopes."""


class Body:
    """One run's workflow body: its coroutine, context and replay cursor."""

    def __init__(
        self,
        host: BodyHost,
        *,
        run_id: str,
        workflow: WorkflowDef[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        max_payload_bytes: int,
    ) -> None:
        self._host = host
        self._run_id = run_id
        self._workflow = workflow
        self._args = args
        self._kwargs = kwargs
        self.coro: Coroutine[Any, Any, Any] | None = None
        #: Replay (D2): the log being re-run.
        self.history: History | None = None
        #: The data of a recorded cancel_delivered this checkpoint replays.
        self.replayed_cancel: dict[str, Any] | None = None
        #: Replay met a cancel of the log: what ctx.is_cancelling() says then.
        self._cancel_replayed = False
        #: The reason ("" for none) of the cancel the body met since the last
        #: outermost shield ended, live or replayed; None if it has not.
        self._cancel_met: str | None = None
        self._diverged: NonDeterminismError | None = None
        #: Checkpoints the body has passed; a cancel_delivered names its own.
        self._checkpoints = 0
        self._checkpoint = 0
        #: B3: the cancel scopes (set by the crew), the scope cancel met at
        #: this checkpoint, and the one a resumption through the mailbox raises.
        self.scopes: ScopeHook | None = None
        self._scope_due: CancellationError | None = None
        self._resume_error: CancellationError | None = None
        self.ctx = WorkflowContext(
            run_id,
            is_cancelling=self._is_cancelling,
            cancel_reason=host.cancel_reason,
            checkpoint=self._check,
            record=self._record_body,
            max_payload_bytes=max_payload_bytes,
        )

    @property
    def shielded(self) -> bool:
        return self.ctx.shield_depth > 0

    def next_call_id(self) -> int:
        """Call ids count the body's calls, so replay finds call ``n`` again."""
        call_id = self.ctx.call_counter
        self.ctx.call_counter += 1
        if self.scopes is not None:
            self.scopes.started(call_id)
        return call_id

    @property
    def next_checkpoint(self) -> int:
        """The number the body's next checkpoint will have."""
        return self._checkpoints

    def resume_error(self, reason: str | None) -> CancellationError:
        """The cancel a resumption through the mailbox raises (a scope's, B3, kept)."""
        error, self._resume_error = self._resume_error, None
        if error is not None and error.reason == reason:
            return error
        return CancellationError(reason)

    def raise_later(self, error: CancellationError) -> None:
        """Resume the body with ``error`` through the mailbox (B3: a scope's,
        kept, so that only that scope's exit catches it)."""
        self._resume_error = error
        self._host.resume_later(error.reason)

    # -- running ----------------------------------------------------------------

    def begin(self) -> bool:
        """Call the workflow function; False if that failed (the run fails)."""
        token = set_current(self.ctx)
        try:
            coro = self._workflow.fn(*self._args, **self._kwargs)
        except BaseException as exc:  # e.g. TypeError: the arguments do not fit
            self._host.finish_failed(exc)
            return False
        finally:
            reset_current(token)
        self.coro = coro  # type: ignore[assignment]
        return True

    def run(self, value: Any, error: BaseException | None) -> None:
        """Run the body until it waits for a call, or ends.

        A loop rather than recursion: replay resumes await after await from
        the log without waiting, however long the run's history is.
        """
        host = self._host
        while self.coro is not None:
            token = set_current(self.ctx)
            try:
                command = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as stop:
                if self._end_matches_log():
                    host.finish_completed(stop.value)
                return
            except CancellationError as exc:
                if self._end_matches_log(exc):
                    host.finish_cancelled(exc.reason)
                return
            except BaseException as exc:
                exc = translated(exc)  # asyncio's "no event loop": named with its fix
                if self._end_matches_log(exc):
                    host.finish_failed(exc)
                return
            finally:
                reset_current(token)
            if self._diverged is not None:
                self.fail_replay(self._diverged)
                return
            resumed = host.on_await(command)
            if resumed is None:
                return  # suspended until a call ends
            value, error = resumed
            if isinstance(error, CancellationError) and not host.replaying:
                # Met a cancel at this await (C3): resume through the mailbox,
                # so a Terminate or Shutdown is read first (T2) even if the
                # body catches every cancel in a loop.
                self._resume_error = error
                host.resume_later(error.reason)
                return

    def _end_matches_log(self, raised: BaseException | None = None) -> bool:
        """A body that ends while replaying must have consumed its whole log.

        One that ``raised`` instead fails naming that exception as the cause.
        """
        history = self.history
        if self._diverged is not None:
            self.fail_replay(self._diverged)
            return False
        if self._host.replaying and history and not history.exhausted(self.ctx.call_counter):
            self.fail_replay(history.ended_at(self.ctx.call_counter, raised))
            return False
        return True

    def diverge(self, error: NonDeterminismError) -> None:
        """Replay diverged inside the body (a sync call): fail the run at its next yield."""
        self._diverged = self._diverged or error

    def record_or_replay(self, type_: EventType, **data: Any) -> tuple[dict[str, Any], bool]:
        """A body record whose data decides what the body does next (B2):
        live, recorded and returned; on replay, the log's own data, matched
        and not written again (D2: never re-decided from live state).
        Returns the data and whether it came from the log."""
        history = self.history
        replaying = self._in_history() and history is not None and history.started
        replayed = bool(
            replaying and history is not None and history.body and history.body[0].type is type_
        )
        logged = dict(history.body[0].data) if replayed and history is not None else data
        self._record_body(type_, **data)
        return logged, replayed

    def fail_replay(self, error: NonDeterminismError) -> None:
        """The body no longer matches its log: fail the run, run none of it."""
        logger.error("%s", error, extra=run_extra(self._run_id))
        self.close()
        self._host.finish_failed(error)

    def close(self) -> None:
        """Close the coroutine; its ``finally:`` blocks run sealed."""
        self.ctx.sealed = True
        coro, self.coro = self.coro, None
        if coro is None:
            return
        token = set_current(self.ctx)
        try:
            coro.close()
        except BaseException as exc:
            why = f"run {self._run_id}: body misbehaved while being closed: {safe_repr(exc)}"
            logger.warning("%s", why, extra=run_extra(self._run_id))
        finally:
            reset_current(token)

    # -- replay -------------------------------------------------------------------

    def recorded(
        self, call_id: int, call: Call | TimerCall
    ) -> RecordedCall | NonDeterminismError | None:
        """What the log has for this call (replay), or the divergence; None if live."""
        if not self._host.replaying:
            return None
        assert self.history is not None
        try:
            return self.history.check_call(call_id, call)
        except NonDeterminismError as exc:
            return exc

    def _in_history(self) -> bool:
        """Whether the body is still replaying its log (and leave replay once not)."""
        if not self._host.replaying:
            return False
        assert self.history is not None
        if self.history.exhausted(self.ctx.call_counter):
            self._host.go_live()
            return False
        return True

    # -- checkpoints (C2, C3, S2) ----------------------------------------------------

    def checkpoint_due(self) -> bool:
        """The body is at a checkpoint: is a cancel delivered here?

        Live, that is the state (cancelling, no shield). In replay it is the
        log: a cancel is delivered again exactly where it was first recorded,
        and, being level-triggered (C3), at every unshielded checkpoint after
        that until a shield ends; only the first of those is recorded.
        """
        self._checkpoint = self._checkpoints
        self._checkpoints += 1
        in_history = self._in_history()
        scope = (
            self.scopes.at_checkpoint(self._checkpoint, replaying=in_history)
            if self.scopes is not None
            else None
        )
        self._scope_due = None
        if in_history:
            assert self.history is not None
            replayed = self.history.cancel_at(self._checkpoint)
            if replayed is not None:
                self.replayed_cancel = replayed.data
                return True
            run_due = self._cancel_met is not None and self.ctx.shield_depth == 0
        else:
            run_due = self._host.cancel_due()
        # The run's cancel acts as the outermost scope (B3): it wins when due.
        self._scope_due = None if run_due else scope
        return run_due or scope is not None

    def deliver_cancel(self) -> CancellationError:
        """The cancel meets the body at this checkpoint; recorded unless replayed."""
        scope, self._scope_due = self._scope_due, None
        if scope is not None:
            return scope  # a scope's cancel (B3): decided by its records, none written here
        replayed, self.replayed_cancel = self.replayed_cancel, None
        if replayed is not None:
            self._cancel_replayed = True
            self._cancel_met = replayed.get("reason")
            return CancellationError(self._cancel_met)
        if self._cancel_met is not None:
            # Met again since the last record (level-triggered): the log
            # says so once per unshielded stretch, not once per checkpoint.
            return CancellationError(self._cancel_met or None)
        reason = self._host.cancel_reason()
        self._host.record(_E.CANCEL_DELIVERED, reason=reason, checkpoint=self._checkpoint)
        self._cancel_met = reason or ""
        return CancellationError(reason)

    def settle(self, waiting: Waiting) -> AwaitResult:
        """Every call of an await ended: what the await gives the body."""
        # C4: the results are recorded and kept; the cancel is raised at the await.
        if self.checkpoint_due():
            return None, self.deliver_cancel()
        errors = [waiting.errors[c] for c in waiting.call_ids]
        # A cancelled step outranks a failed one: the run is being cancelled.
        for error in errors:
            if isinstance(error, CancellationError):
                return None, error
        for error in errors:
            if error is not None:
                return None, error
        values = [waiting.values[c] for c in waiting.call_ids]
        return (values if waiting.gathered else values[0]), None

    def _is_cancelling(self) -> bool:
        if self._host.replaying:
            return self._cancel_replayed
        return self._host.cancelling()

    def record_body(self, type_: EventType, **data: Any) -> None:
        """A record of the body itself (B3: a scope's), matched once on replay."""
        self._record_body(type_, **data)

    def _record_body(self, type_: EventType, **data: Any) -> None:
        """A record of the body itself (a shield); replay matches it, once."""
        if type_ is _E.SHIELD_EXITED and self.ctx.shield_depth == 0:
            self._cancel_met = None  # the next delivery is recorded again (S2)
        # A restart's reused calls (A7) come without the body's records: those
        # are written live, as the body makes them.
        if self._in_history() and self.history is not None and self.history.started:
            try:
                self.history.match_body_event(type_)
            except NonDeterminismError as exc:
                self._diverged = self._diverged or exc
            return
        self._host.record(type_, **data)

    def _check(self) -> None:
        """``ctx.check_cancellation()`` called in the body (runs inside ``run``)."""
        if self._host.terminated:
            raise Terminated("run terminated")
        if self.checkpoint_due():
            raise self.deliver_cancel()
