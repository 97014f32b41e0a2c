"""one_for_all: when one step of a group restarts, its siblings restart with it."""

import tempfile
from pathlib import Path

from actors import FakeClock, RetryPolicy, Runtime, gather, get_context, step, workflow
from actors.testing import wait_for_event

runs: list[str] = []


@step(retry=RetryPolicy(max_attempts=3, initial_interval=10))
def open_session(shard: str) -> str:
    attempt = get_context().attempt
    runs.append(f"{shard}#{attempt}")
    if shard == "b" and attempt == 1:
        raise ConnectionError("shard b dropped the session")
    return f"{shard}: session {attempt}"


@workflow()
async def migrate() -> list[str]:
    # The sessions must come from the same round: a failure restarts them all.
    return await gather(open_session("a"), open_session("b"), strategy="one_for_all")


def main() -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db"), clock=clock) as rt:
        run = rt.start(migrate)
        wait_for_event(run, "step_retry_scheduled", 2)  # b failed; a restarts with it
        clock.advance(10)
        print(run.result(timeout=10))  # ['a: session 2', 'b: session 2']
        assert sorted(runs) == ["a#1", "a#2", "b#1", "b#2"]


if __name__ == "__main__":
    main()
