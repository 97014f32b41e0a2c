"""Helpers of the recovery tests (test_recovery.py, test_orphans.py): runtimes
opened on one store and closed with a leak check, and a step that checks its
mailbox until released."""

from __future__ import annotations

from actors import get_context, step
from tests.conftest import NOTES, gate, note


@step()
def checking(key: str) -> str:
    """Checks its mailbox every millisecond until its gate opens; notes each run."""
    ctx = get_context()
    note(f"{key}:runs", ctx.attempt)
    gate(f"{key}:started:{len(NOTES[f'{key}:runs'])}").set()
    try:
        while not gate(key).wait(0.001):
            ctx.check_cancellation()
    except BaseException as exc:
        note(key, type(exc).__name__)
        raise
    return key


def started(key: str, nth: int = 1) -> None:
    assert gate(f"{key}:started:{nth}").wait(10)
