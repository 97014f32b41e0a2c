"""cancel_scopes: give one slow step a deadline, and cancel a block of the body.

``move_on_after`` gives the carrier's quote 0.2 s; past that only that step
is cancelled (it meets the cancel at its next heartbeat) and the body goes
on with a fallback, the run still RUNNING. ``CancelScope.cancel()`` cancels
a block from inside it: its next checkpoint raises and the block is left
quietly. ``fail_after`` raises ``DeadlineExceeded`` (a ``TimeoutError``)
instead of leaving quietly. Deadlines are durable timers: a run resumed
after a crash leaves the block at the same point.
"""

import tempfile
import time
from pathlib import Path

from actors import (
    CancelScope,
    DeadlineExceeded,
    Runtime,
    fail_after,
    get_context,
    move_on_after,
    step,
    workflow,
)


@step()
def express_quote(order: str) -> int:
    ctx = get_context()
    for _ in range(500):  # a slow carrier: heartbeats (and so checks) while it waits
        ctx.heartbeat({"order": order})
        time.sleep(0.01)
    return 1299


@step()
def ship(order: str, cents: int) -> str:
    return f"shipped {order} for {cents}"


@workflow()
async def order_flow(order: str) -> list[str]:
    cents = 499  # the fallback
    with move_on_after(0.2) as quote:
        cents = await express_quote(order)
    outcome = [f"quote timed out: {quote.cancelled_caught}"]

    with CancelScope() as optional:
        optional.cancel("not needed today")
        await ship(order, 0)  # a checkpoint inside a cancelled scope: never starts
    outcome.append(f"optional block skipped: {optional.cancelled_caught}")

    try:
        with fail_after(0.2):
            await express_quote(order)
    except DeadlineExceeded as exc:
        outcome.append(f"{type(exc).__name__}, a TimeoutError: {isinstance(exc, TimeoutError)}")

    outcome.append(await ship(order, cents))
    return outcome


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db")) as rt:
        run = rt.start(order_flow, "o-9")
        print(run.result(timeout=20))
        log = rt.events(run.run_id)
        causes = [e.data["cause"] for e in log if e.type.value == "scope_cancelled"]
        assert causes == ["deadline", "cancel", "deadline"]
        ran = [e.step.rsplit(".", 1)[-1] for e in log if e.type.value == "step_completed"]
        assert ran == ["ship"], ran  # neither quote completed; the skipped ship never ran


if __name__ == "__main__":
    main()
