"""Who runs a run: its owning runtime, and whether that runtime is alive.

One look, no watching: judged by what the runtime's row and its pid say
(P3: no comparison of two hosts' wall clocks beyond the store's own
``why_dead`` rule). Shared by ``runs list``/``runs status`` and ``cancel``.
"""

from __future__ import annotations

from typing import Any

from persistence import RunRecord, RuntimeRecord, why_dead


def owner_state(run: RunRecord, runtimes: list[RuntimeRecord]) -> dict[str, Any]:
    """Who runs it, and whether that runtime is alive (its lease, its pid).

    Shape: ``{"owner": str | None, "alive": bool | None, "why_dead": str |
    None, "pid": int | None, "hostname": str | None}``; ``alive`` is None for
    a finished or unowned run (and ``pid``/``hostname`` are then absent).
    """
    if run.owner is None or run.status.is_terminal:
        return {"owner": run.owner, "alive": None, "why_dead": None}
    found = next((r for r in runtimes if r.owner == run.owner), None)
    # One look, no watching: judged by what its row and its pid say (P3).
    why = why_dead(run.owner, found)
    return {
        "owner": run.owner,
        "alive": why is None,
        "why_dead": why,
        "pid": found.pid if found else None,
        "hostname": found.hostname if found else None,
    }


def owner_json(owner: dict[str, Any]) -> dict[str, Any]:
    """For ``runs list --json``: is the run's runtime alive (None: finished or unowned)."""
    return {"owner_alive": owner["alive"], "why_dead": owner["why_dead"]}


def owner_line(run: RunRecord, owner: dict[str, Any]) -> str:
    """For ``runs status``: the owner, and whether it is alive, in one line."""
    if run.owner is None:
        return "- (waiting for a worker that knows this workflow)"
    if owner["alive"] is None:
        return run.owner
    if owner["alive"]:
        return f"{run.owner} (alive, pid {owner['pid']} on {owner['hostname']})"
    return f"{run.owner} (dead: {owner['why_dead']}; the next runtime that knows it resumes it)"
