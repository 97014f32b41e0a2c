"""Workflows for the operator's-view tests: deep trees and hostile user text."""

from __future__ import annotations

from actors import step, workflow


@step()
def leaf(depth: int) -> int:
    return depth


@workflow()
async def nest(depth: int) -> int:
    """A chain of ``depth`` child runs, each with one step: a tree ``depth`` deep."""
    if depth == 0:
        return await leaf(0)
    return await nest(depth - 1) + await leaf(depth)


@step()
def explode(message: str) -> None:
    raise RuntimeError(message)


@workflow()
async def fails_with(message: str) -> None:
    """Fails with ``message`` as its error: user text in the error column."""
    await explode(message)
