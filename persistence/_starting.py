"""Caller-chosen run ids (A2): one run per id, whoever starts it.

The store makes a run id unique in the very transaction that creates the
run: a ``run_created`` for an id that exists is refused, marked
``Refused.duplicate`` (``_append``). What such a refusal means is decided
here, once, for every writer (the runtime's facade, ``proctor start``, any
tool that creates a run without hosting it):

- the same start again (the same workflow, the same arguments as JSON, and
  for a restart the same run restarted) gets the existing run, whatever its
  state, even finished: Temporal's USE_EXISTING conflict policy, DBOS's
  workflow ids;
- any other start with that id raises :class:`RunIdInUse`, naming the id,
  the existing run's workflow and what differs.

Invariants: nothing here writes to an existing run; a start that raises
created nothing; arguments are compared as canonical JSON (key order aside),
so ``1`` and ``1.0`` or ``True`` and ``1`` differ, as they do in the log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from persistence._errors import (
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    RunIdInUse,
    StoreError,
)
from persistence._interface import Store
from persistence._records import NewEvent, Refused, RunRecord
from persistence._text import safe_repr

#: The longest run id a caller may choose, in characters.
MAX_RUN_ID_CHARS: Final = 200

#: Child runs are named ``<parent>.<call>``: a chosen id may not look like one.
_CHILD_LIKE: Final = re.compile(r"\.[0-9]+\Z")


def check_chosen_run_id(value: object) -> str:
    """``value`` as a run id a caller may choose for a new run (A2).

    Text, non-empty, at most ``MAX_RUN_ID_CHARS`` characters, printable (no
    control characters or line breaks: an id is shown in logs and terminals),
    and not ending in ``.<digits>``, which names child runs (``order-7.0`` is
    call 0 of run ``order-7``).

    Raises:
        InvalidArgumentType: not a str.
        InvalidArgument: empty, too long, not printable, or child-like.
    """
    if not isinstance(value, str):
        raise InvalidArgumentType(f"a run id is a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidArgument("a run id is a non-empty str, got ''")
    if len(value) > MAX_RUN_ID_CHARS:
        raise InvalidArgument(
            f"a run id is at most {MAX_RUN_ID_CHARS} characters, got {len(value)}:"
            f" {safe_repr(value[:40])}..."
        )
    if not value.isprintable():
        raise InvalidArgument(
            f"a run id must be printable (no control characters), got {safe_repr(value)}"
        )
    if _CHILD_LIKE.search(value):
        raise InvalidArgument(
            f"a run id may not end in '.<digits>', which names child runs, got {safe_repr(value)}"
        )
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def start_difference(
    existing: RunRecord,
    workflow: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    restarted_from: str | None = None,
) -> str | None:
    """What differs between ``existing`` and a start of ``workflow`` with these
    (JSON round-tripped) arguments, as words; None if it is the same start.

    ``restarted_from``: the run this start restarts (A7), or None.
    """
    if existing.workflow != workflow:
        return f"another workflow (this start is of {workflow})"
    if _canonical(list(existing.args)) != _canonical(list(args)):
        return f"other arguments ({_canonical(list(existing.args))}, not {_canonical(list(args))})"
    if _canonical(dict(existing.kwargs)) != _canonical(dict(kwargs)):
        return (
            f"other keyword arguments ({_canonical(dict(existing.kwargs))},"
            f" not {_canonical(dict(kwargs))})"
        )
    if existing.restarted_from != restarted_from:
        was = f"a restart of {existing.restarted_from}" if existing.restarted_from else "no restart"
        now = f"a restart of {restarted_from}" if restarted_from else "a plain start"
        return f"another origin (it is {was}; this is {now})"
    return None


def same_start(
    existing: RunRecord,
    workflow: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    restarted_from: str | None = None,
) -> bool:
    """Whether a start of ``workflow`` with these arguments is the start that
    created ``existing`` (A2): pure."""
    diff = start_difference(existing, workflow, args, kwargs, restarted_from=restarted_from)
    return diff is None


def existing_start(store: Store, created: NewEvent) -> RunRecord | None:
    """The run a refused ``run_created`` met, if it is the same start; None if
    no run has that id (any more).

    Raises:
        RunIdInUse: a run has the id and is not the same start.
    """
    record = store.find_run(created.run_id)
    if record is None:
        return None
    d = created.data
    diff = start_difference(
        record,
        d["workflow"],
        d.get("args") or [],
        d.get("kwargs") or {},
        restarted_from=d.get("restarted_from"),
    )
    if diff is not None:
        raise RunIdInUse(created.run_id, record.workflow, diff)
    return record


def create_run(store: Store, events: Sequence[NewEvent]) -> tuple[RunRecord, bool]:
    """Create a run nobody hosts yet (``events``: its ``run_created`` first, then
    any records of its own, such as a restart's reused calls), for a writer
    that does not host runs (``proctor start``, a client).

    Returns:
        (the run, True) if this call created it; (the existing run, False)
        if its id was taken by the same start (A2).

    Raises:
        RunIdInUse: the id is taken by another start; nothing was written.
        ProctorError: the store refused the group for another reason
            (the message says which); nothing was written.
    """
    created = events[0]
    outcome = store.append(events)[0]
    if not isinstance(outcome, Refused):
        return store.get_run(created.run_id), True
    if outcome.duplicate:
        existing = existing_start(store, created)
        if existing is not None:
            return existing, False
        raise StoreError(  # taken, then pruned at once: say so rather than guess
            f"run {created.run_id} existed when it was created again, and is gone now; retry"
        )
    raise ProctorError(f"run {created.run_id} was not created: {outcome.reason}")
