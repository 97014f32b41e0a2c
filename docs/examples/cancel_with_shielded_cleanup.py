"""Cancel a run mid-step; its cleanup runs in a shield; the run ends CANCELLED."""

import tempfile
import threading
from pathlib import Path

from actors import CancellationError, Runtime, get_context, shield, step, workflow

charging = threading.Event()


@step()
def charge(order_id: str) -> str:
    ctx = get_context()
    charging.set()
    for chunk in range(100_000):
        ctx.heartbeat({"chunk": chunk})  # a mailbox check: the cancel arrives here
        threading.Event().wait(0.001)  # one slice of real work
    return "charged"


@step()
def refund(order_id: str) -> str:
    return f"refunded {order_id}"


@workflow()
async def order(order_id: str) -> str:
    try:
        return await charge(order_id)
    except CancellationError:
        with shield():  # cleanup that must finish, cancel or not
            await refund(order_id)
        raise  # the run ends CANCELLED


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        run = rt.start(order, "o-1")
        charging.wait(10)
        result = rt.cancel(run.run_id, "customer changed their mind", wait=True, timeout=30)
        types = [e.type.value for e in run.events()]
        assert "shield_entered" in types
        assert types[-1] == "run_cancelled"
        print(f"run {run.run_id} is {result.status}")  # cancelled


if __name__ == "__main__":
    main()
