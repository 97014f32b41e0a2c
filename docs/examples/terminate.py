"""Terminate: the run is TERMINATED at once; its code gets no say."""

import tempfile
import threading
from pathlib import Path

from actors import CancellationError, Runtime, get_context, step, workflow

working = threading.Event()
cleaned_up = threading.Event()


@step()
def crunch(n: int) -> int:
    ctx = get_context()
    working.set()
    while True:
        ctx.check_cancellation()  # Terminated unwinds the thread here
        threading.Event().wait(0.001)


@workflow()
async def job(n: int) -> int:
    try:
        return await crunch(n)
    except CancellationError:
        cleaned_up.set()  # never runs: terminate is not a cancel
        raise


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        run = rt.start(job, 7)
        working.wait(10)
        result = rt.terminate(run.run_id, "runaway job")
        assert run.status().value == "terminated"  # durable when terminate() returned
        assert not cleaned_up.is_set()
        print(f"run {run.run_id} is {result.status}")  # terminated


if __name__ == "__main__":
    main()
