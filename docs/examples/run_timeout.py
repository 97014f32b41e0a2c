"""Run timeouts: at its deadline a run is cancelled (source ``timeout``) and may clean up."""

import tempfile
import threading
from pathlib import Path

from actors import CancellationError, Runtime, get_context, shield, step, workflow

released = threading.Event()


@step()
def crunch(n: int) -> int:
    ctx = get_context()
    while True:
        ctx.check_cancellation()  # the timeout's cancel is raised here
        threading.Event().wait(0.01)


@step()
def release_lock(n: int) -> None:
    released.set()


@workflow(timeout=600, cancel_grace=5)
async def nightly_report(n: int) -> int:
    try:
        return await crunch(n)
    except CancellationError:
        with shield():  # cleanup that must finish, even when timed out
            await release_lock(n)
        raise


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        # start(timeout=...) overrides the decorator's 600 s for this run.
        run = rt.start(nightly_report, 7, timeout=0.5)
        record = run.wait_finished(timeout=30)
        assert released.is_set()
        assert record.cancel_source == "timeout"
        print(f"run is {record.status}: {record.cancel_reason}")  # cancelled: run timed out...


if __name__ == "__main__":
    main()
