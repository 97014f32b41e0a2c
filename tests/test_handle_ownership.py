"""B2: a handle belongs to the run whose body made it.

A ``StepHandle`` or ``ChildRun`` names its call by number, and call numbers
repeat across runs: a handle kept in a global by run A and used in run B's
body would act on B's call of the same number (cancel B's step, give B's
result). Each handle carries its run's id and refuses any other place (another
run's body, a step, no body at all) with a ``ProctorError`` naming its run,
as a Temporal handle belongs to its workflow and a Trio cancel scope to its
task.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors import ProctorError, start_child, start_step, step, workflow
from actors.testing import ProctorTestKit

pytestmark = pytest.mark.timeout(60)

STASH: dict[str, Any] = {}


@step()
def value_of(x: str) -> str:
    return x


@workflow()
async def little(x: str) -> str:
    return x


@workflow()
async def keeps_its_handles(key: str) -> list[str]:
    step_handle = start_step(value_of("a's step"))
    child = await start_child(little, "a's child")
    STASH[key] = (step_handle, child)
    return [await step_handle, await child]


@workflow()
async def uses_foreign_handles(key: str) -> list[str]:
    mine = start_step(value_of("b's step"))  # call #1, as the foreign step handle's
    my_child = await start_child(little, "b's child")  # call #2, as the foreign child's
    said = []
    for handle in STASH[key]:
        for use in ("cancel", "await"):
            try:
                if use == "cancel":
                    handle.cancel("not yours")
                else:
                    await handle
                said.append(f"{use}: accepted")
            except ProctorError as exc:
                said.append(f"{use}: {exc}")
    return [*said, await mine, await my_child]


def test_B2_a_handle_used_in_another_runs_body_is_refused_and_names_its_run(
    proctor: ProctorTestKit,
) -> None:
    a = proctor.runtime.start(keeps_its_handles, "k")
    assert a.result(timeout=10) == ["a's step", "a's child"]
    b = proctor.runtime.start(uses_foreign_handles, "k")
    said = b.result(timeout=10)
    assert said[-2:] == ["b's step", "b's child"]  # B's own calls untouched
    for line, what in zip(
        said[:4],
        ["StepHandle.cancel()", "await StepHandle", "ChildRun.cancel()", "await ChildRun"],
        strict=True,
    ):
        assert line.split(": ", 1)[1].startswith(f"{what}: the handle of call #"), line
        assert f"belongs to run {a.run_id!r}" in line, line
        assert f"it was used in the body of run {b.run_id!r}" in line, line
    types = [e.type.value for e in proctor.runtime.events(b.run_id)]
    assert "call_cancel_requested" not in types


def test_B2_a_handle_used_outside_any_body_is_refused_and_names_its_run(
    proctor: ProctorTestKit,
) -> None:
    a = proctor.runtime.start(keeps_its_handles, "outside")
    a.result(timeout=10)
    step_handle, child = STASH["outside"]
    assert step_handle.run_id == child.parent_run_id == a.run_id
    for handle in (step_handle, child):
        with pytest.raises(ProctorError, match=f"belongs to run {a.run_id!r}.*outside any"):
            handle.cancel()
        with pytest.raises(ProctorError, match=f"belongs to run {a.run_id!r}.*outside any"):
            handle.__await__().send(None)
