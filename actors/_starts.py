"""What the answer to a new run's creation means for the caller (A2, A3).

A new run's creation is written by its supervisor with the body's first
records; the store refuses it when the run id exists (``Refused.duplicate``),
and the Guardian refuses it, without starting a supervisor, when a run of
that id is hosted here already. Either way nothing of this start runs. The
caller then gets the existing run if it is the same start
(``persistence.existing_start``: same workflow, same arguments), or
:class:`RunIdInUse`.

Invariants: a start that returns names a run that exists in the store with
exactly this start's workflow and arguments; a start that raises created
nothing, or (:class:`OutcomeUnknown`) names the run id and says it may
exist; this module never writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from persistence import (
    AppendOutcome,
    Binder,
    NewEvent,
    OutcomeUnknown,
    ProctorError,
    Refused,
    Store,
    existing_start,
)

#: How often a start that met a creation in flight here looks for its outcome.
POLL: Final = 0.002


def settle_creation(
    outcomes: Sequence[AppendOutcome],
    created: NewEvent,
    *,
    reader: Store,
    bind: Binder | None = None,
    hosted: Callable[[str], bool],
    timeout: float,
) -> bool | None:
    """Whether ``created`` was written: True if it was; False if the run it
    names existed and is the same start (nothing new runs); None if a
    creation of the id in flight here failed meanwhile, having written
    nothing: this start may be submitted again, as the first.

    ``bind``: the workflow's signature binder, to compare arguments as bound
    (``persistence.start_difference``). ``hosted(run_id)``: whether a
    supervisor of this runtime hosts the run (its creation may still be in
    flight: wait up to ``timeout`` for it).

    Raises:
        RunIdInUse: the id is taken by another start.
        OutcomeUnknown: a creation of this id is in flight here and did not
            commit within ``timeout``; the run may exist.
        ProctorError: the store refused the creation for another reason;
            nothing of this start was written.
    """
    refused = next((o for o in outcomes if isinstance(o, Refused)), None)
    if refused is None:
        return True
    run_id = created.run_id
    if not refused.duplicate:
        raise ProctorError(f"run {run_id} was not created: {refused.reason}")
    deadline = time.monotonic() + timeout
    while existing_start(reader, created, bind=bind) is None:
        # Refused by the Guardian: the first start of this id is being created here.
        if not hosted(run_id):
            return False if existing_start(reader, created) is not None else None
        if time.monotonic() >= deadline:
            raise OutcomeUnknown(
                run_id, "start", f"another start of this id was not confirmed within {timeout}s"
            )
        time.sleep(POLL)
    return False
