"""Durable sleep: a reminder that waits a day (on a virtual clock), and one
cancelled in the middle of its day, which ends at once."""

import tempfile
from pathlib import Path

from actors import CancellationError, FakeClock, Runtime, sleep, step, workflow

DAY = 24 * 3600.0


@step()
def send_reminder(invoice: str) -> str:
    return f"reminder sent for {invoice}"


@workflow()
async def dunning(invoice: str) -> str:
    try:
        await sleep(DAY)  # a durable timer: it survives a restart of the runtime
    except CancellationError:
        print(f"{invoice}: paid, no reminder")  # the cancel met the sleep at once
        raise
    return await send_reminder(invoice)


def main() -> None:
    clock = FakeClock()  # virtual time: advance() instead of waiting a day
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "p.db"), clock=clock) as rt:
        reminded = rt.start(dunning, "inv-1")
        paid = rt.start(dunning, "inv-2")

        # inv-2 is paid an hour in: the cancel ends its sleep now, not in 23 hours.
        clock.advance(3600)
        cancelled = rt.cancel(paid.run_id, "invoice paid", wait=True, timeout=10)
        assert cancelled.status.value == "cancelled"

        clock.advance(DAY)  # the rest of inv-1's day
        assert reminded.result(timeout=10) == "reminder sent for inv-1"

        timers = [e.type.value for e in rt.events(paid.run_id) if e.call == 0]
        assert timers == ["timer_started", "timer_cancelled"], timers
        print(f"{reminded.result()}; inv-2 {cancelled.status}")


if __name__ == "__main__":
    main()
