"""Restart of a finished run by a runtime (A7): a new, linked run it hosts.

What the new run starts with is ``persistence.restart_plan``'s (the same
workflow and arguments, ``restarted_from``, the reused calls before
``from_call``), shared with ``proctor runs restart``; this module adds what
hosting it needs: the workflow's definition in this process, the new id
(the caller's, idempotent as any start with a chosen id, A2), and the
creation through the runtime's Guardian like any new run.

Invariants: the old run is only read, never written; the new run's body
never runs a reused call; nothing is created when this raises (but
:class:`OutcomeUnknown`, which names the new id).
"""

from __future__ import annotations

import uuid

from actors._definitions import lookup_workflow
from actors._requests import Requests
from persistence import InvalidArgument, Store, check_chosen_run_id, restart_plan, safe_repr


def restart(
    requests: Requests,
    reader: Store,
    *,
    owner: str,
    old_run_id: str,
    from_call: int | None,
    run_id: str | None,
) -> str:
    """Create and host a restart of ``old_run_id``; the new run's id.

    See :meth:`Runtime.restart` for the arguments and errors.
    """
    new_id = uuid.uuid4().hex if run_id is None else check_chosen_run_id(run_id)
    if not isinstance(old_run_id, str):
        raise InvalidArgument(f"restart() takes a run id (a str), got {safe_repr(old_run_id)}")
    created, *reused = restart_plan(reader, old_run_id, from_call, new_id, owner=owner)
    name = created.data["workflow"]
    workflow = lookup_workflow(name)
    if workflow is None:
        raise InvalidArgument(
            f"run {old_run_id} is a run of workflow {name}, which this process has not"
            " imported; import its module first (or use `proctor runs restart`, for a"
            " worker that imports it)"
        )
    return requests.host_new(workflow, created, tuple(reused), chosen=run_id is not None)
