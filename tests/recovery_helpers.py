"""Helpers of the recovery tests (test_recovery.py, test_orphans.py): runtimes
opened on one store and closed with a leak check, and a step that checks its
mailbox until released."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import Runtime, get_context, step
from tests.conftest import GATES, NOTES, assert_nothing_left, gate, note


@pytest.fixture
def runtimes(db: Path) -> Iterator[list[Runtime]]:
    """Runtimes a test opens on ``db``; all closed, and nothing left, at the end."""
    before = set(threading.enumerate())
    opened: list[Runtime] = []
    try:
        yield opened
    finally:
        for event in GATES.values():
            event.set()
        for runtime in opened:
            runtime.close()
    assert_nothing_left(before)


def open_rt(runtimes: list[Runtime], db: Path, **options: object) -> Runtime:
    runtime = Runtime(db, **options)  # type: ignore[arg-type]
    runtimes.append(runtime)
    return runtime


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
