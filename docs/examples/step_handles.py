"""step_handles: start steps without waiting, then cancel the one no longer needed.

Two quotes are asked for at once; the body awaits the fast carrier's handle
(which answers while the slow one still waits) and then cancels the slow one
alone (TRY_CANCEL): the run goes on, and the slow step meets the cancel at
its next heartbeat. The body chooses which handle to await; there is no
"first of several" await yet (each handle is awaited on its own). A third
step, abandoned, is never told: it keeps running, and a result it gives
while the run lives is recorded in the log and never returned; here the run
ends first, so it is abandoned with the run (``step_abandoned``), as
Temporal leaves an activity whose workflow completed.
"""

import tempfile
import threading
from pathlib import Path

from actors import (
    CancellationError,
    CancellationType,
    Runtime,
    get_context,
    start_step,
    step,
    workflow,
)

fast_answered = threading.Event()
audit_may_end = threading.Event()


@step()
def quote(carrier: str) -> str:
    ctx = get_context()
    if carrier == "fast":
        fast_answered.set()
        return "fast: 12.50"
    while True:  # the slow carrier: heartbeats while it waits for its answer
        ctx.heartbeat({"carrier": carrier})
        fast_answered.wait(0.01)


@step()
def audit(order: str) -> str:
    audit_may_end.wait(10)  # never checks: abandoning it is the only choice
    return f"audited {order}"


@workflow()
async def best_quote(order: str) -> list[str]:
    slow = start_step(quote("slow"))
    fast = start_step(quote("fast"))
    check = start_step(audit(order))
    price = await fast
    slow.cancel("the fast carrier answered first")  # TRY_CANCEL: the default
    check.cancel("not worth waiting for", mode=CancellationType.ABANDON)
    outcomes = [price]
    for handle in (slow, check):
        try:
            outcomes.append(await handle)
        except CancellationError as exc:
            outcomes.append(f"cancelled: {exc.reason}")
    return outcomes


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db")) as rt:
        run = rt.start(best_quote, "o-7")
        print(run.result(timeout=10))
        log = rt.events(run.run_id)
        cancels = [e.data["mode"] for e in log if e.type.value == "call_cancel_requested"]
        assert cancels == ["try_cancel", "abandon"]
        assert rt.get_run(run.run_id).status.value == "completed"  # not cancelled
        audit_may_end.set()


if __name__ == "__main__":
    main()
