"""Sending signals to runs (B5): the Runtime's and the Client's half of the API.

``signal(run_id, name, payload=None)`` and its awaitable twin
``signal_async`` (A1), on the :class:`Runtime` (:class:`RuntimeSignals`,
through its Journal) and on the :class:`Client` (:class:`ClientSignals`,
straight into the store, as ``proctor signal`` writes it). Both write one
``signal_sent`` record (``persistence.signal_request``) and return once it
is durable; the body of the run takes it with ``wait_for_signal(name)``.

Invariants:

* every argument is checked before anything is written: the run id, the
  name (``check_signal_name``), the payload (JSON within the payload
  limit, D4);
* a run that already finished refuses the signal, in the store's
  transaction (fencing): :class:`RunNotActive`, and nothing is written;
* the runtime hosting the run hears of every signal through its
  ControlInbox (the path of a cancel from another process), this runtime's
  own too: one path, in the log's order, keeps signals of one name FIFO
  across senders;
* a twin raises what its blocking call raises and never blocks the loop.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import pykka

from actors._arguments import run_id as check_run_id
from actors._base import tell
from actors._handle import ControlResult
from actors._messages import Append
from actors._replies import Reply, Submitted
from actors._requests import Requests
from persistence import (
    AppendOutcome,
    NewEvent,
    Store,
    accepted_signal,
    signal_request,
)

T = TypeVar("T")


def sent_result(run_id: str, event: NewEvent, outcome: AppendOutcome) -> ControlResult:
    """The answer to a signal the store took; or the error of its refusal.

    Raises:
        RunNotFound: no such run.
        RunNotActive: the run already finished; nothing was written.
    """
    appended = accepted_signal(run_id, outcome)
    name, signal_id = event.data["name"], event.data["signal_id"]
    return ControlResult(
        run_id=run_id,
        status=appended.status,
        changed=True,
        message=f"signal {name!r} sent (id {signal_id}, log seq {appended.seq})",
    )


class RuntimeSignals(abc.ABC):
    """``signal`` / ``signal_async`` of the Runtime facade (see the module docstring).

    Subclasses set ``id``, ``max_payload_bytes``, ``_journal`` and
    ``_requests`` and define :meth:`_check_open`.
    """

    id: str
    max_payload_bytes: int
    _journal: pykka.ActorRef[Any]
    _requests: Requests

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` once closed."""

    def _submit_signal(self, run_id: str, name: str, payload: Any) -> Submitted[ControlResult]:
        self._check_open()
        run_id = check_run_id(run_id)
        event = signal_request(run_id, name, payload, origin=self.id, limit=self.max_payload_bytes)
        reply: Reply[tuple[AppendOutcome, ...]] = Reply()
        # Ordered behind this process's earlier appends. The run hears of it
        # through the ControlInbox, as of a signal from another process: one
        # path, in the log's order, so that signals of one name are taken in
        # the order they were recorded whoever sent them (FIFO).
        tell(self._journal, Append(events=(event,), reply=reply))
        return Submitted(
            reply=reply,
            run_id=run_id,
            request="signal",
            answer=lambda outcomes: sent_result(run_id, event, outcomes[0]),
        )

    def signal(self, run_id: str, name: str, payload: Any = None) -> ControlResult:
        """Send the signal ``name`` with ``payload`` to a run (B5).

        Durable when this returns (``signal_sent`` in the run's log); the
        run's body takes it with ``await wait_for_signal(name)``, now or
        later, in the order signals of that name were recorded (FIFO). The
        runtime that hosts the run, this one or another, gets it through its
        ControlInbox, as a cancel from another process. Peers: Temporal's ``signal``
        (``WorkflowHandle.signal``), DBOS ``send``.

        Returns a :class:`ControlResult` (``changed`` True; ``message``
        names the signal's id and its place in the log).

        Raises:
            RunNotFound: no such run; nothing was written.
            RunNotActive: the run already finished (completed, failed,
                cancelled or terminated); nothing was written.
            InvalidArgument, InvalidArgumentType: a bad run id or name.
            NotSerializable: ``payload`` is not JSON (D4); PayloadTooLarge:
                its JSON is over ``max_payload_bytes``; nothing was written.
            OutcomeUnknown: no answer within ``request_timeout``; it may
                still be recorded.
            RuntimeClosed: the runtime was closed or killed.
        """
        return self._requests.wait(self._submit_signal(run_id, name, payload))

    async def signal_async(self, run_id: str, name: str, payload: Any = None) -> ControlResult:
        """Like :meth:`signal`, awaited: the commit does not block the loop (A1)."""
        return await self._requests.wait_async(self._submit_signal(run_id, name, payload))


class ClientSignals(abc.ABC):
    """``signal`` / ``signal_async`` of the Client (see the module docstring).

    Subclasses set ``id``, ``max_payload_bytes`` and ``_store`` and define
    :meth:`_check_open`, :meth:`_using` and :meth:`_off_loop`.
    """

    id: str
    max_payload_bytes: int
    _store: Store

    @abc.abstractmethod
    def _check_open(self) -> None:
        """Raise ``RuntimeClosed`` once closed."""

    @abc.abstractmethod
    def _using(self) -> contextlib.AbstractContextManager[None]:
        """Around one store operation: refused once closed, waited for by close."""

    @abc.abstractmethod
    async def _off_loop(self, read: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """``read(*args, **kwargs)`` in the loop's default executor, awaited."""

    def _send(self, run_id: str, name: str, payload: Any) -> ControlResult:
        event = signal_request(
            check_run_id(run_id), name, payload, origin=self.id, limit=self.max_payload_bytes
        )
        with self._using():
            outcome = self._store.append([event])[0]
        return sent_result(run_id, event, outcome)

    def signal(self, run_id: str, name: str, payload: Any = None) -> ControlResult:
        """Send the signal ``name`` with ``payload`` to a run (B5), as
        :meth:`Runtime.signal` does, written straight into the store; the
        runtime that owns the run delivers it (a run nobody owns yet gets it
        when a worker claims it).

        Raises:
            RunNotFound, RunNotActive, InvalidArgument, NotSerializable,
            PayloadTooLarge: as :meth:`Runtime.signal`; nothing was written.
            StoreError: the store refused it; nothing was written.
            RuntimeClosed: the client was closed.
        """
        self._check_open()
        return self._send(run_id, name, payload)

    async def signal_async(self, run_id: str, name: str, payload: Any = None) -> ControlResult:
        """Like :meth:`signal`, without blocking the event loop (A1)."""
        self._check_open()
        check_run_id(run_id)
        return await self._off_loop(self._send, run_id, name, payload)
