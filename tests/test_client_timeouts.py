"""B4: a Client start by name records the decorator's timeout when the
workflow is registered in the Client's process, as a start by the
``@workflow()`` itself and ``proctor start module:name`` do; a name this
process does not know records only an explicit ``timeout=``.

Temporal's client takes the execution timeout from the start options only;
here the decorator's default is the workflow's, so every way of starting it
that can see the decorator gives the same deadline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import Client, RunIdInUse, workflow
from persistence import deadline_of

pytestmark = pytest.mark.timeout(30)


@workflow(name="tests.client_timeouts.report", timeout=60, cancel_grace=5)
async def report(day: int) -> int:
    return day


def _recorded(client: Client, run_id: str) -> tuple[float | None, float | None]:
    deadline = deadline_of(client.handle(run_id).events()[0].data)
    return (None, None) if deadline is None else (deadline.timeout, deadline.cancel_grace)


def test_B4_client_start_by_registered_name_records_the_decorators_timeout(db: Path) -> None:
    with Client(db, create=True) as client:
        by_name = client.start("tests.client_timeouts.report", 1).run_id
        by_def = client.start(report, 2).run_id
        assert _recorded(client, by_name) == _recorded(client, by_def) == (60, 5)


def test_B4_client_start_by_name_an_explicit_timeout_wins(db: Path) -> None:
    with Client(db, create=True) as client:
        run_id = client.start("tests.client_timeouts.report", 1, timeout=7).run_id
        assert _recorded(client, run_id) == (7, 5)


def test_B4_client_start_by_an_unknown_name_records_only_an_explicit_timeout(db: Path) -> None:
    with Client(db, create=True) as client:
        plain = client.start("elsewhere.report", 1).run_id
        timed = client.start("elsewhere.report", 2, timeout=9).run_id
        assert _recorded(client, plain) == (None, None)
        assert _recorded(client, timed) == (9, None)


def test_B4_A2_the_same_start_by_name_and_by_definition_is_one_run(db: Path) -> None:
    """Same deadline, so the repeated start is the same start (A2), not RunIdInUse."""
    with Client(db, create=True) as client:
        first = client.start(report, 1, run_id="report-1")
        again = client.start("tests.client_timeouts.report", 1, run_id="report-1")
        assert again.run_id == first.run_id
        with pytest.raises(RunIdInUse):
            client.start("tests.client_timeouts.report", 1, run_id="report-1", timeout=8)
