"""A run supervisor's lifecycle tables, tested whole (like RUN_TRANSITIONS)."""

from __future__ import annotations

import pytest

from actors._lifecycle import (
    ENDED,
    HOSTING_TRANSITIONS,
    PHASE_TRANSITIONS,
    Hosting,
    HostingEvent,
    Phase,
    PhaseEvent,
    next_hosting,
    next_phase,
)
from persistence import InvalidTransition


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
