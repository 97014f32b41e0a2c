"""A step that stops heartbeating is timed out and retried with its last details.

Virtual time (FakeClock): the 30 s heartbeat timeout passes instantly.
"""

import tempfile
import threading
from pathlib import Path

from actors import FakeClock, RetryPolicy, Runtime, get_context, step, workflow
from actors.testing import wait_for_event

stuck = threading.Event()


@step(heartbeat_timeout=30, retry=RetryPolicy(max_attempts=3, initial_interval=5))
def import_rows(total: int) -> str:
    ctx = get_context()
    start = (ctx.last_heartbeat_details or {}).get("done", 0)  # resume where it stopped
    for done in range(start, total):
        if ctx.attempt == 1 and done == 600:
            stuck.set()
            while True:  # wedged: checks its mailbox, but no heartbeat
                ctx.check_cancellation()
                threading.Event().wait(0.001)
        ctx.heartbeat({"done": done})
    return f"attempt {ctx.attempt} imported rows {start}..{total - 1}"


@workflow()
async def nightly_import(total: int) -> str:
    return await import_rows(total)


def main() -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db"), clock=clock) as rt:
        run = rt.start(nightly_import, 1000)
        stuck.wait(10)
        clock.advance(31)  # past the heartbeat timeout: attempt 1 is TIMED_OUT
        wait_for_event(run, "step_retry_scheduled")
        clock.advance(5)  # the back-off
        result = run.result(timeout=10)
        timed_out = wait_for_event(run, "step_timed_out")
        assert timed_out.data["last_heartbeat_details"] == {"done": 599}
        print(result)  # attempt 2 imported rows 599..999


if __name__ == "__main__":
    main()
