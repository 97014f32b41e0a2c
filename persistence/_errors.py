"""The exception tree shared by the store, the runtime and the CLI.

It lives in ``persistence`` because that package is the one every other
package may import; ``actors`` re-exports it and adds the control-flow
exceptions. The whole tree::

    ProctorError
    ├── RunNotFound
    ├── RunAlreadyFinished
    ├── NotSerializable
    ├── InvalidTransition          a state change outside the transition table: a bug
    ├── StepFailed                 (actors) cause: the last attempt's exception
    ├── WorkflowFailed             (actors) the run ended FAILED
    ├── RunCancelled               (actors) the run ended CANCELLED
    ├── RunTerminated              (actors) the run ended TERMINATED
    └── StoreError
        ├── StoreLocked            busy past the busy timeout
        ├── NotAProctorStore       not SQLite, or another application's database
        ├── SchemaTooNew           written by a newer Proctor
        ├── StoreCorrupt           the file is damaged (malformed, I/O error, stale WAL)
        ├── StoreReplaced          the path no longer names the file this process opened
        └── CorruptRecord          one row cannot be read (written by hand, or by an old Proctor)
    CancellationError(BaseException)   (actors) like trio.Cancelled
    Terminated(BaseException)          (actors) a terminated step unwinds with it
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


class RunAlreadyFinished(ProctorError):
    """A control request reached a run that is already in a terminal state."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} already finished: {status}")
        self.run_id = run_id
        self.status = status


class NotSerializable(ProctorError, TypeError):
    """A value that must cross the store (argument, result, details) is not JSON."""

    def __init__(self, what: str, value: Any, detail: str) -> None:
        super().__init__(f"{what} must be JSON-serializable, got {type(value).__name__}: {detail}")
        self.what = what

    @classmethod
    def recorded(cls, message: str) -> NotSerializable:
        """The error again, from its message in the log (replay)."""
        err = cls.__new__(cls)
        ProctorError.__init__(err, message)
        err.what = ""
        return err


class InvalidTransition(ProctorError):
    """A state change that the transition table does not allow (a bug)."""


class StoreError(ProctorError):
    """The store cannot be opened, read or written."""


class StoreLocked(StoreError):
    """Another connection held the database lock past the busy timeout."""


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
