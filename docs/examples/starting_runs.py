"""Run ids chosen by the caller (A2), safe retries (A3), restart (A7)."""

import contextlib
import tempfile
from pathlib import Path

from actors import OutcomeUnknown, Runtime, WorkflowFailed, step, workflow

CHARGES: list[str] = []
SHIPPING: dict[str, bool] = {"down": True}  # the first ship fails; the restart ships


@step()
def charge(order_id: str, cents: int) -> str:
    CHARGES.append(order_id)
    return f"charged {cents} for {order_id}"


@step()
def ship(cart: str) -> str:
    if SHIPPING["down"]:
        raise RuntimeError("shipping is down")
    return f"shipped {cart}"


@workflow()
async def order(order_id: str, cents: int) -> str:
    return await charge(order_id, cents)


@workflow()
async def checkout(cart: str) -> str:
    await charge(cart, 500)  # call 0
    return await ship(cart)  # call 1


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        # --8<-- [start:chosen-id]
        handle = rt.start(order, "o-42", 99, run_id="order-42")
        again = rt.start(order, "o-42", 99, run_id="order-42")  # the same run
        assert again.run_id == handle.run_id == "order-42"
        # The same arguments by keyword bind to the same parameters: the same start.
        by_name = rt.start(order, order_id="o-42", cents=99, run_id="order-42")
        assert by_name.run_id == "order-42"
        # --8<-- [end:chosen-id]
        assert handle.result(timeout=10) == "charged 99 for o-42"

        # --8<-- [start:retry]
        for _ in range(5):
            try:
                handle = rt.start(order, "o-43", 99, run_id="order-43")
                break
            except OutcomeUnknown:
                continue  # the run may exist: the same start again is safe
        else:
            raise RuntimeError("order-43 was not confirmed after 5 tries")
        # --8<-- [end:retry]
        handle.result(timeout=10)

        # --8<-- [start:restart]
        old = rt.start(checkout, "cart-7")  # charge (call 0), then ship (call 1) fails
        with contextlib.suppress(WorkflowFailed):
            old.result(timeout=10)  # only a finished run restarts: wait for its end
        SHIPPING["down"] = False
        new = rt.restart(old.run_id, from_call=1)  # charge is not run again; ship is
        assert rt.restarts(old.run_id) == [new.run_id]
        assert rt.get_run(new.run_id).restarted_from == old.run_id
        # --8<-- [end:restart]
        print(f"{new.result(timeout=10)}, charged {CHARGES.count('cart-7')} time(s)")


if __name__ == "__main__":
    main()
