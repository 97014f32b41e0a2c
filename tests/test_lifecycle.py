"""A run supervisor's lifecycle tables, tested whole (like RUN_TRANSITIONS)."""

from __future__ import annotations

from typing import Any

import pytest

from actors import ProctorError, Runtime, step, workflow
from actors._lifecycle import (
    ENDED,
    HOSTING_TRANSITIONS,
    PHASE_TRANSITIONS,
    Hosting,
    HostingEvent,
    Lifecycle,
    Phase,
    PhaseEvent,
    next_hosting,
    next_phase,
)
from persistence import EventType, InvalidTransition, Refused
from tests.conftest import wait_until


@pytest.mark.parametrize(("pair", "target"), list(PHASE_TRANSITIONS.items()))
def test_every_phase_transition_in_the_table(pair: tuple[Phase, PhaseEvent], target: Phase) -> None:
    assert next_phase(*pair) is target


def test_every_phase_pair_not_in_the_table_raises() -> None:
    refused = 0
    for phase in Phase:
        for event in PhaseEvent:
            if (phase, event) not in PHASE_TRANSITIONS:
                refused += 1
                with pytest.raises(InvalidTransition, match=f"cannot {event} while {phase}"):
                    next_phase(phase, event)
    assert refused == len(Phase) * len(PhaseEvent) - len(PHASE_TRANSITIONS)


@pytest.mark.parametrize(("pair", "target"), list(HOSTING_TRANSITIONS.items()))
def test_every_hosting_transition_in_the_table(
    pair: tuple[Hosting, HostingEvent], target: Hosting
) -> None:
    assert next_hosting(*pair) is target


def test_every_hosting_pair_not_in_the_table_raises() -> None:
    for hosting in Hosting:
        for event in HostingEvent:
            if (hosting, event) not in HOSTING_TRANSITIONS:
                with pytest.raises(InvalidTransition):
                    next_hosting(hosting, event)


def test_terminated_and_stopped_have_no_way_out() -> None:
    assert {t for (p, _), t in PHASE_TRANSITIONS.items() if p is Phase.TERMINATED} == {
        Phase.TERMINATED
    }
    assert not [pair for pair in HOSTING_TRANSITIONS if pair[0] is Hosting.STOPPED]


def test_an_ended_body_never_runs_again() -> None:
    """FINISHING and LINGERING lead only to each other or to TERMINATED (T2 still wins)."""
    for (phase, _), target in PHASE_TRANSITIONS.items():
        if phase in ENDED:
            assert target in ENDED | {Phase.TERMINATED}


def test_every_phase_is_reachable_and_every_phase_can_be_terminated_or_sealed() -> None:
    seen, frontier = {Phase.STARTING}, {Phase.STARTING}
    while frontier:
        frontier = {t for (p, _), t in PHASE_TRANSITIONS.items() if p in frontier} - seen
        seen |= frontier
    assert seen == set(Phase)
    for phase in Phase:
        # The actor may stop in any phase: sealing is always allowed.
        next_phase(phase, PhaseEvent.SEAL)
        if phase is not Phase.TERMINATED:
            assert next_phase(phase, PhaseEvent.TERMINATE) is Phase.TERMINATED


def test_a_lifecycle_moves_only_through_its_tables() -> None:
    life = Lifecycle()
    assert (life.phase, life.hosting) == (Phase.STARTING, Hosting.HOSTING)
    life.go_live()  # not replaying: nothing to leave
    assert life.phase is Phase.STARTING
    life.advance(PhaseEvent.BEGIN_REPLAY)
    assert life.replaying
    life.go_live()
    assert life.phase is Phase.LIVE
    with pytest.raises(InvalidTransition):
        life.advance(PhaseEvent.LINGER)
    assert life.phase is Phase.LIVE  # a refused change changes nothing
    life.advance(PhaseEvent.FINISH)
    assert life.ended
    assert not life.draining
    life.host(HostingEvent.SHUTDOWN)
    assert life.draining
    assert life.ended  # a run can be finishing while its runtime drains
    life.advance(PhaseEvent.SEAL)
    assert life.phase is Phase.FINISHING
    life.host(HostingEvent.STOP)
    with pytest.raises(InvalidTransition):
        life.host(HostingEvent.SHUTDOWN)
    life.advance(PhaseEvent.TERMINATE)
    assert life.terminated


# -- the creation of a new run is no phase: its group's reply says so ---------------


@step()
def first_step(value: int) -> int:
    return value


@workflow()
async def refused_at_creation() -> int:
    return await first_step(1)


def test_a_run_whose_creation_the_store_refuses_leaves_no_supervisor(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first group's reply (Created) ends the supervisor of a run that was
    never created; without it the refusal would look like any other and the
    supervisor would wait forever on a body nothing resumes."""
    store_type = type(rt._store)
    append_groups = store_type.append_groups

    def refuse_creation(self: Any, groups: Any, *args: Any, **kwargs: Any) -> Any:
        outcomes = append_groups(self, groups, *args, **kwargs)
        return [
            [Refused("injected: creation refused", None)] * len(group)
            if any(
                e.type is EventType.RUN_CREATED
                and str(e.data.get("workflow")).endswith("refused_at_creation")
                for e in group
            )
            else group_outcomes
            for group, group_outcomes in zip(groups, outcomes, strict=True)
        ]

    monkeypatch.setattr(store_type, "append_groups", refuse_creation)
    with pytest.raises(ProctorError, match="was not created") as refused:
        rt.start(refused_at_creation)
    run_id = str(refused.value).split()[1]
    wait_until(lambda: rt._directory.get(run_id) is None)
    monkeypatch.undo()
    assert rt.start(refused_at_creation).result(timeout=10) == 1  # the runtime goes on
