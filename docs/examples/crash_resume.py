"""A crash mid-run, and a new runtime resumes it by replay.

``Runtime.kill()`` stops a runtime as abruptly as ``kill -9``: nothing more is
written. The next runtime on the same store replays the run's log: the
completed step is not run again; the one in flight is, and the log says so.
"""

import tempfile
import threading
from pathlib import Path

from actors import Runtime, get_context, step, workflow

executions: list[str] = []
in_flight = threading.Event()
release = threading.Event()


@step()
def reserve(order_id: str) -> str:
    executions.append("reserve")
    return f"reservation for {order_id}"


@step()
def ship(order_id: str) -> str:
    ctx = get_context()
    executions.append(f"ship attempt {ctx.attempt}")
    in_flight.set()
    while not release.wait(0.001):
        ctx.check_cancellation()
    return f"shipped {order_id}"


@workflow()
async def fulfil(order_id: str) -> list[str]:
    return [await reserve(order_id), await ship(order_id)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp, "proctor.db")
        first = Runtime(db)
        run_id = first.start(fulfil, "o-7").run_id
        in_flight.wait(10)
        first.kill()  # as if the process died here

        in_flight.clear()
        with Runtime(db) as second:  # resumes unfinished runs of known workflows
            in_flight.wait(10)
            release.set()
            print(second.handle(run_id).result(timeout=10))
            log = [e.type.value for e in second.events(run_id)]
        assert executions == ["reserve", "ship attempt 1", "ship attempt 2"]
        assert "run_resumed" in log
        assert "step_reexecuted" in log


if __name__ == "__main__":
    main()
