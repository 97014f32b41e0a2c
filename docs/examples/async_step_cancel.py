"""async_step_cancel: an `async def` step meets a cancel only where it checks.

An `await` inside a step is not a checkpoint: the step below checks
between its awaits, so a cancel through its handle (here
WAIT_CANCELLATION_COMPLETED: the body waits for the step to end) stops it
after the part in flight, not after all of them.
"""

import asyncio
import tempfile
from pathlib import Path

from actors import (
    CancellationError,
    CancellationType,
    Runtime,
    get_context,
    sleep,
    start_step,
    step,
    workflow,
)


@step()
async def download(parts: int) -> int:
    ctx = get_context()
    done = 0
    for _ in range(parts):
        ctx.check_cancellation()  # a cancel raises CancellationError here
        await asyncio.sleep(0.01)  # not a checkpoint: a cancel waits for it to end
        done += 1
    return done


@workflow()
async def fetch_all() -> str:
    handle = start_step(download(100_000))  # about 17 minutes of parts
    await sleep(0.2)
    handle.cancel("enough", mode=CancellationType.WAIT_CANCELLATION_COMPLETED)
    try:
        return f"downloaded {await handle} parts"
    except CancellationError as exc:
        return f"download cancelled: {exc.reason}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db")) as rt:
        run = rt.start(fetch_all)
        print(run.result(timeout=30))
        ends = [e.type.value for e in rt.events(run.run_id) if e.step == download.name]
        assert ends[-1] == "step_cancelled", ends


if __name__ == "__main__":
    main()
