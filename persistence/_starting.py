"""Caller-chosen run ids (A2): one run per id, whoever starts it.

The store makes a run id unique in the very transaction that creates the
run: a ``run_created`` for an id that exists is refused, marked
``Refused.duplicate`` (``_append``). What such a refusal means is decided
here, once, for every writer (the runtime's facade, ``proctor start``, any
tool that creates a run without hosting it):

- the same start again (the same workflow, the same arguments as JSON, and
  for a restart the same run restarted from the same call, as its
  ``run_created`` records them: ``restarted_from``, ``from_call``) gets the
  existing run, whatever its state, even finished: Temporal's USE_EXISTING
  conflict policy, DBOS's workflow ids;
- any other start with that id raises :class:`RunIdInUse`, naming the id,
  the existing run's workflow and what differs.

Invariants: nothing here writes to an existing run; a start that raises
created nothing; arguments are compared as canonical JSON (key order aside),
so ``1`` and ``1.0`` or ``True`` and ``1`` differ, as they do in the log;
where the caller knows the workflow's signature (a ``Binder``), as bound to
it, without defaults, so ``f(7)`` and ``f(x=7)`` are one start; where it
does not (``proctor start``, a client by name), as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from persistence._deadlines import run_deadline, timeout_difference
from persistence._errors import (
    InvalidArgument,
    InvalidArgumentType,
    ProctorError,
    RunIdInUse,
    StoreError,
)
from persistence._interface import Store
from persistence._records import NewEvent, Refused, RunRecord
from persistence._states import EventType
from persistence._text import calls_phrase, safe_repr

#: The longest run id a caller may choose, in characters.
MAX_RUN_ID_CHARS: Final = 200

#: Child runs are named ``<parent>.<call>``: a chosen id may not look like one.
_CHILD_LIKE: Final = re.compile(r"\.[0-9]+\Z")


def check_chosen_run_id(value: object) -> str:
    """``value`` as a run id a caller may choose for a new run (A2).

    Text, not blank, without whitespace at either end (``"order-7 "`` would
    be a run apart from ``"order-7"`` that no one can tell from it in a
    table), at most ``MAX_RUN_ID_CHARS`` characters, printable (no control
    characters or line breaks: an id is shown in logs and terminals), and
    not ending in ``.<digits>``, which names child runs (``order-7.0`` is
    call 0 of run ``order-7``).

    Any other printable character is kept, ``/`` and inner spaces included:
    Temporal's workflow ids and DBOS's workflow ids accept any string, and
    callers choose ids from their own keys (``customer/42``, ``order 7``),
    which a rule of ours should not have to rename. An id does go into
    URLs (a service's ``/orders/{run_id}``) and shell commands (``proctor
    runs status ID``): quoting it there (``urllib.parse.quote(run_id,
    safe="")``, ``shlex.quote``) is the caller's part.

    Raises:
        InvalidArgumentType: not a str.
        InvalidArgument: empty or blank, with whitespace at an end, too
            long, not printable, or child-like.
    """
    if not isinstance(value, str):
        raise InvalidArgumentType(f"a run id is a str, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise InvalidArgument(f"a run id is a non-blank str, got {safe_repr(value)}")
    if value != value.strip():
        raise InvalidArgument(
            f"a run id may not begin or end with whitespace, got {safe_repr(value)}"
        )
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


#: Binds a start's (args, kwargs) to the workflow's signature, giving each
#: parameter's value by name (``inspect.BoundArguments.arguments``, defaults
#: not applied); raises ``TypeError`` where they do not bind.
Binder = Callable[[Sequence[Any], Mapping[str, Any]], Mapping[str, Any]]


def _arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    return f"args {_canonical(list(args))} and kwargs {_canonical(dict(kwargs))}"


def _same_arguments(
    existing: RunRecord, args: Sequence[Any], kwargs: Mapping[str, Any], bind: Binder | None
) -> bool:
    if bind is not None:
        try:
            return _canonical(dict(bind(existing.args, existing.kwargs))) == _canonical(
                dict(bind(args, kwargs))
            )
        except TypeError:
            pass  # one side no longer binds (the signature changed): compare as written
    return _canonical(list(existing.args)) == _canonical(list(args)) and _canonical(
        dict(existing.kwargs)
    ) == _canonical(dict(kwargs))


def _reused_words(from_call: int) -> str:
    return f"reuses {calls_phrase(from_call)}"


def start_difference(
    existing: RunRecord,
    workflow: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    restarted_from: str | None = None,
    from_call: int | None = None,
    existing_from_call: int | None = None,
    bind: Binder | None = None,
) -> str | None:
    """What differs between ``existing`` and a start of ``workflow`` with these
    (JSON round-tripped) arguments, as words; None if it is the same start.

    Arguments are the same when they are equal as JSON, as written
    (``[7]`` and ``{"x": 7}`` differ), or, given ``bind`` (the workflow's
    signature, known where its definition is imported), when they bind to
    the same parameters: ``f(7)`` and ``f(x=7)`` are the same start then.
    Defaults are not applied: a default may change between deploys, and a
    start that left it out is a start that left it out.

    ``restarted_from``: the run this start restarts (A7), or None;
    ``from_call``: the restart's ``from_call`` (None and 0 both reuse no
    call: the same restart); ``existing_from_call``: the existing run's, as
    its ``run_created`` recorded it.
    """
    if existing.workflow != workflow:
        return f"another workflow (this start is of {workflow})"
    if not _same_arguments(existing, args, kwargs, bind):
        return (
            f"other arguments (it has {_arguments(existing.args, existing.kwargs)};"
            f" this start has {_arguments(args, kwargs)})"
        )
    if existing.restarted_from != restarted_from:
        was = f"a restart of {existing.restarted_from}" if existing.restarted_from else "no restart"
        now = f"a restart of {restarted_from}" if restarted_from else "a plain start"
        return f"another origin (it is {was}; this is {now})"
    if restarted_from is not None and (existing_from_call or 0) != (from_call or 0):
        return (
            f"another from_call (it {_reused_words(existing_from_call or 0)} of run"
            f" {restarted_from}; this restart {_reused_words(from_call or 0)})"
        )
    return None


def same_start(
    existing: RunRecord,
    workflow: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    restarted_from: str | None = None,
    from_call: int | None = None,
    existing_from_call: int | None = None,
    bind: Binder | None = None,
) -> bool:
    """Whether a start of ``workflow`` with these arguments is the start that
    created ``existing`` (A2): pure. See :func:`start_difference`."""
    diff = start_difference(
        existing,
        workflow,
        args,
        kwargs,
        restarted_from=restarted_from,
        from_call=from_call,
        existing_from_call=existing_from_call,
        bind=bind,
    )
    return diff is None


def _created_from_call(store: Store, record: RunRecord) -> int | None:
    """The ``from_call`` a restart's ``run_created`` recorded (None: none)."""
    if record.restarted_from is None:
        return None
    for ev in store.events(record.run_id):
        if ev.type is EventType.RUN_CREATED:
            value = ev.data.get("from_call")
            return value if isinstance(value, int) else None
    return None


def existing_start(store: Store, created: NewEvent, bind: Binder | None = None) -> RunRecord | None:
    """The run a refused ``run_created`` met, if it is the same start; None if
    no run has that id (any more). ``bind``: see :func:`start_difference`.

    Raises:
        RunIdInUse: a run has the id and is not the same start.
    """
    record = store.find_run(created.run_id)
    if record is None:
        return None
    d = created.data
    restarted_from = d.get("restarted_from")
    diff = start_difference(
        record,
        d["workflow"],
        d.get("args") or [],
        d.get("kwargs") or {},
        restarted_from=restarted_from,
        from_call=d.get("from_call"),
        existing_from_call=_created_from_call(store, record) if restarted_from else None,
        bind=bind,
    )
    if diff is None:
        diff = timeout_difference(d.get("timeout"), run_deadline(store, record.run_id))
    if diff is not None:
        raise RunIdInUse(created.run_id, record.workflow, diff, restart=restarted_from is not None)
    return record


def create_run(
    store: Store, events: Sequence[NewEvent], *, bind: Binder | None = None
) -> tuple[RunRecord, bool]:
    """Create a run nobody hosts yet (``events``: its ``run_created`` first, then
    any records of its own, such as a restart's reused calls), for a writer
    that does not host runs (``proctor start``, a client). ``bind``: see
    :func:`start_difference`.

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
        existing = existing_start(store, created, bind=bind)
        if existing is not None:
            return existing, False
        raise StoreError(  # taken, then pruned at once: say so rather than guess
            f"run {created.run_id} existed when it was created again, and is gone now; retry"
        )
    raise ProctorError(f"run {created.run_id} was not created: {outcome.reason}")
