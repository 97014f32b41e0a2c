"""Signals: a refund waits for a person's approval, sent by another party."""

import tempfile
from pathlib import Path

from actors import (
    CancellationError,
    Client,
    Runtime,
    SignalTimeout,
    step,
    wait_for_signal,
    workflow,
)


@step()
def refund(order_id: str, amount: int) -> str:
    return f"refunded {amount} for {order_id}"


@workflow()
async def refund_with_approval(order_id: str, amount: int) -> str:
    try:
        # Durable: the log records which signal this wait took, so a run
        # resumed after a crash gets the same approval again.
        decision = await wait_for_signal("approved")
    except CancellationError:
        return f"{order_id}: nobody approved, the refund was cancelled"
    if not decision["ok"]:
        return f"{order_id}: refused by {decision['by']}"
    return await refund(order_id, amount) + f" (approved by {decision['by']})"


@workflow()
async def refund_or_escalate(order_id: str, seconds: float) -> str:
    try:
        # A durable timeout: its due instant is recorded, so a runtime that
        # resumes the run after a crash times out at the same instant.
        decision = await wait_for_signal("approved", timeout=seconds)
    except SignalTimeout:
        return f"{order_id}: nobody approved within {seconds} s, escalated"
    return f"{order_id}: approved by {decision['by']}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        # A signal sent before the body waits is kept until it does.
        early = rt.start(refund_with_approval, "o-1", 1250)
        early.signal("approved", {"ok": True, "by": "ann"})
        outcome = early.result(timeout=10)
        assert outcome == "refunded 1250 for o-1 (approved by ann)"
        print(outcome)

        # Nobody answers in time: the wait raises SignalTimeout (a TimeoutError).
        unanswered = rt.start(refund_or_escalate, "o-3", 0.2)
        outcome = unanswered.result(timeout=10)
        assert outcome == "o-3: nobody approved within 0.2 s, escalated"
        print(outcome)

        # Another party (here a Client, as a web handler would hold; or the
        # CLI: proctor signal RUN_ID approved '{"ok": false, "by": "bob"}').
        late = rt.start(refund_with_approval, "o-2", 80)
        with Client(Path(tmp, "proctor.db")) as client:
            client.signal(late.run_id, "approved", {"ok": False, "by": "bob"})
        outcome = late.result(timeout=10)
        assert outcome == "o-2: refused by bob"
        print(outcome)


if __name__ == "__main__":
    main()
