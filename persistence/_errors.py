"""The exception tree shared by the store, the runtime and the CLI: the one drawing.

It lives in ``persistence`` because that package is the one every other
package may import; ``actors`` re-exports it and adds the errors marked
(actors) below, in ``actors._errors``. Every public error of Proctor is in
this drawing (a test checks it against ``actors.__all__``); nothing from
pykka and no bare builtin exception leaves the public API: where a builtin
is the natural type, the error subclasses it too (``except TypeError``,
``except ValueError`` and ``except TimeoutError`` keep working). The whole
tree::

    ProctorError
    ├── RunNotFound
    ├── RunIdInUse                     a start with a caller's run id that another start took (A2)
    ├── RunNotFinished                 restart of a run that has not finished (A7)
    ├── RunNotActive                   a signal to a run that already finished (B5)
    ├── InvalidArgument(ValueError)    a bad setting or argument; nothing was done
    │   └── InvalidArgumentType(TypeError)   an argument of the wrong type
    ├── NotSerializable(TypeError)     a value that must cross the store is not JSON
    │   └── PayloadTooLarge            JSON, but over the store's payload size limit
    ├── InvalidTransition              a state change outside the transition table: a bug
    ├── NonDeterminismError            (actors) replay found other calls than the log records
    ├── RuntimeClosed                  (actors) the runtime was closed or killed, or never started
    ├── StepFailed                     (actors) cause: the last attempt's exception
    ├── RunEnded                       (actors) RunHandle.result(): the run did not complete
    │   ├── WorkflowFailed             the run ended FAILED
    │   ├── RunCancelled               the run ended CANCELLED
    │   └── RunTerminated              the run ended TERMINATED
    ├── WaitTimeout(TimeoutError)      (actors) a wait for a run's end ran out; says why
    ├── SignalTimeout(TimeoutError)    (actors) in a body: wait_for_signal(timeout=) ran out (B5)
    ├── DeadlineExceeded(TimeoutError) (actors) fail_after/fail_at: a scope's deadline passed (B3)
    └── StoreError
        ├── OutcomeUnknown         a request may have taken effect; names the run
        ├── StoreLocked            busy past the busy timeout
        ├── StoreUnavailable       the server cannot be reached, or dropped the connection
        ├── NotAProctorStore       not SQLite, or another application's database
        ├── SchemaTooNew           written by a newer Proctor
        ├── StoreCorrupt           the file is damaged (malformed, I/O error, stale WAL)
        ├── StoreReplaced          the path no longer names the file this process opened
        └── CorruptRecord          one row cannot be read (written by hand, or by an old Proctor)
    CancellationError(BaseException)   (actors) like trio.Cancelled
    Terminated(BaseException)          (actors) a terminated step unwinds with it

A control request on a run that already finished is not an error: it
changes nothing and says so (``ControlResult.changed`` is False, C6; the CLI
exits 4). A signal to such a run is (``RunNotActive``; the CLI exits 4 too):
its payload would be lost.
"""

from __future__ import annotations

from typing import Any


class ProctorError(Exception):
    """Base class of every error Proctor raises on purpose."""


class RunNotFound(ProctorError):
    """No run with this id exists in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunIdInUse(ProctorError):
    """A start named a run id that a run of another workflow, or with other
    arguments, already has (A2). Nothing of this start was created.

    ``run_id`` is the id; ``workflow`` the existing run's workflow; ``differs``
    says what differs; ``restart``: the start was a restart (A7), whose
    hint differs. Temporal's ``WorkflowExecutionAlreadyStarted`` under
    the USE_EXISTING conflict policy when the start is not the same one.
    """

    def __init__(self, run_id: str, workflow: str, differs: str, *, restart: bool = False) -> None:
        hint = (
            "choose another id, or restart the same run from the same call to get the"
            " existing restart"
            if restart
            else "choose another id, or start with the same workflow and arguments to get"
            " the existing run"
        )
        what = "restarted" if restart else "started"
        super().__init__(
            f"run id {run_id!r} is in use by a run of {workflow} with {differs}; nothing"
            f" was {what} ({hint})"
        )
        self.run_id = run_id
        self.workflow = workflow
        self.differs = differs


class RunNotFinished(ProctorError):
    """A request that needs a finished run (``restart``, A7) named one that is
    still pending, running or cancelling; nothing was done."""


class RunNotActive(ProctorError):
    """A signal (B5) sent to a run that already finished: the store refused it
    and nothing was written. Unlike a cancel (C6), a signal carries data the
    caller means to reach the body, so its refusal is an error, as in
    Temporal (signalling a closed workflow fails).

    Attributes: ``run_id``; ``status``, the run's terminal state (a ``RunState``).
    """

    def __init__(self, run_id: str, status: Any, what: str = "signal") -> None:
        super().__init__(f"run {run_id} already finished: {status}; the {what} was not sent")
        self.run_id = run_id
        self.status = status


class InvalidArgument(ProctorError, ValueError):
    """A bad setting or argument (a value out of range, say); nothing was done."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of the wrong type (not a ``@workflow()``, say); nothing was done."""


class NotSerializable(ProctorError, TypeError):
    """A value that must cross the store (argument, result, details) is not JSON."""

    def __init__(self, what: str, value: Any, detail: str) -> None:
        super().__init__(f"{what} must be JSON-serializable, got {type(value).__name__}: {detail}")
        self.what = what

    @classmethod
    def recorded(cls, message: str, what: str = "") -> NotSerializable:
        """The error with ``message`` as it is: from the log (replay), or where
        "must be JSON" would mislead (a reason that is a number is JSON, but
        not text)."""
        err = cls.__new__(cls)
        ProctorError.__init__(err, message)
        err.what = what
        return err


class PayloadTooLarge(NotSerializable):
    """A value that must cross the store is JSON, but larger than the payload limit.

    ``size`` and ``limit`` are bytes of UTF-8 JSON. A step result over the
    limit fails its step, never retried (like any NotSerializable).
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        ProctorError.__init__(
            self,
            f"{what} is {size:,} bytes as JSON, over the payload limit of {limit:,} bytes"
            " (max_payload_bytes); keep large data outside the store and pass a reference",
        )
        self.what = what
        self.size = size
        self.limit = limit


class InvalidTransition(ProctorError):
    """A state change that the transition table does not allow (a bug)."""


class StoreError(ProctorError):
    """The store cannot be opened, read or written."""


class OutcomeUnknown(StoreError):
    """A request was sent but its outcome was not confirmed in time.

    It may have taken effect (the run exists, the cancel is recorded) or not;
    ``run_id`` names the run. A start (or restart) with a chosen run id is
    retried safely with the same id (A3); any other request: look the run
    up before trying again. Like a commit
    whose acknowledgement was lost: the error says so instead of claiming
    that nothing happened.
    """

    def __init__(self, run_id: str, request: str, detail: str) -> None:
        then = (
            "a start with a chosen run id can simply be retried with the same id, which"
            " returns the run if it exists (A3); otherwise look the run up by its id"
            " before starting again"
            if request in ("start", "restart")
            else "look the run up by its id before asking again"
        )
        super().__init__(f"{request} of run {run_id} may have taken effect: {detail}; {then}")
        self.run_id = run_id
        self.request = request


class StoreLocked(StoreError):
    """Another connection held the database lock past the busy timeout."""


class StoreUnavailable(StoreError):
    """A server store's server cannot be reached, or dropped the connection
    (a restart, a failover, ``max_connections`` full, a network cut).

    Transient, like :class:`StoreLocked`: the same call may succeed once the
    server is back, and a runtime rides it out (a write's run is hosted again
    from its log, a wait for a run's end goes on until its timeout). A write
    whose connection dropped while it committed may have committed: what the
    store holds is the truth (a runtime reads its log again before going on).
    SQLite stores never raise it.
    """


class NotAProctorStore(StoreError):
    """The file is not SQLite, or it is another application's database."""


class SchemaTooNew(StoreError):
    """The store was written by a newer Proctor with a newer schema."""


class StoreCorrupt(StoreError):
    """The store file is damaged: SQLite reports it malformed, or cannot read it
    (a backup restored over a live store with its old ``-wal``/``-shm``, a
    deleted ``-wal``, a ``-shm`` this process may not write)."""


class StoreReplaced(StoreError):
    """The store's path no longer names the file this process opened: it was
    deleted, or replaced by another file (a backup, say). Writing on would
    write into a file nobody else sees."""


class CorruptRecord(StoreError):
    """One row of the store cannot be read: a value the transition tables do
    not know (a run state, an event type), written by hand or by another
    version. JSON columns never raise this; their records carry a ``defect``."""
