"""``proctor demo``: the order workflow, hosted, cancelled mid-payment, its timeline;
then a second scene: a cancel scope's deadline (``move_on_after``) cancels one
slow step while the run goes on and completes (B3).

Only ``proctor demo`` imports this module (lazily): importing it registers
the workflow ``order``, and a ``proctor worker`` must not serve it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from rich.text import Text

from actors import (
    CancellationError,
    RunCancelled,
    Runtime,
    get_context,
    move_on_after,
    shield,
    step,
    workflow,
)
from cli import _render as render
from cli._event_view import timeline
from cli._text import plain
from persistence import EventType, redact

# -- the order workflow ----------------------------------------------------------------


@step(name="reserve_inventory")
def reserve_inventory(order_id: str, items: list[str]) -> dict[str, Any]:
    return {"reservation": f"res-{order_id}", "items": items}


@step(name="charge_payment")
def charge_payment(order_id: str, amount_cents: int) -> dict[str, Any]:
    """Talks to a slow payment provider; heartbeats (and so checks for cancel) as it goes."""
    ctx = get_context()
    for chunk in range(100):
        ctx.heartbeat({"order": order_id, "progress": chunk})
        time.sleep(0.02)  # the provider's latency, simulated
    return {"charge": f"ch-{order_id}", "amount_cents": amount_cents}


@step(name="create_shipment")
def create_shipment(order_id: str) -> dict[str, Any]:
    return {"shipment": f"sh-{order_id}"}


@step(name="release_inventory")
def release_inventory(reservation: str) -> str:
    return f"released {reservation}"


@step(name="void_payment")
def void_payment(order_id: str) -> str:
    return f"voided authorization for {order_id}"


@workflow(name="order")
async def order(order_id: str, items: list[str], amount_cents: int) -> dict[str, Any]:
    reservation = await reserve_inventory(order_id, items)
    try:
        charge = await charge_payment(order_id, amount_cents)
        shipment = await create_shipment(order_id)
    except CancellationError:
        # Cleanup must finish even though the run is cancelling: shield it.
        with shield():
            await void_payment(order_id)
            await release_inventory(reservation["reservation"])
        raise
    return {"reservation": reservation, "charge": charge, "shipment": shipment}


@step(name="fetch_shipping_quote")
def fetch_shipping_quote(order_id: str) -> dict[str, Any]:
    """Asks a slow carrier for an express quote; heartbeats (and so checks for cancel)."""
    ctx = get_context()
    for chunk in range(200):
        ctx.heartbeat({"order": order_id, "waited": chunk})
        time.sleep(0.02)  # the carrier's latency, simulated
    return {"carrier": "express", "cents": 1299}


@workflow(name="order_with_quote")
async def order_with_quote(order_id: str, items: list[str], quote_seconds: float) -> dict[str, Any]:
    reservation = await reserve_inventory(order_id, items)
    quote = {"carrier": "standard", "cents": 499}  # the fallback
    # Give the carrier quote_seconds; past that, only this step is cancelled
    # and the order goes on with the fallback (a durable deadline, B3).
    with move_on_after(quote_seconds) as scope:
        quote = await fetch_shipping_quote(order_id)
    shipment = await create_shipment(order_id)
    return {
        "reservation": reservation,
        "quote": quote,
        "quote_timed_out": scope.cancelled_caught,
        "shipment": shipment,
    }


# -- proctor demo ------------------------------------------------------------------


def run_demo(db: str, *, cancel_after: float, quote_seconds: float = 0.3) -> str:
    """Both scenes on the store ``db``; returns the cancelled order's run id."""
    console = render.console()
    with Runtime(db) as rt:
        handle = rt.start(order, "o-1001", ["book", "lamp"], 4999)
        line = Text("started run ")
        line.append(handle.run_id, style="bold")
        line.append(" of workflow ")
        line.append("order", style="bold")
        line.append_text(plain(f" on {redact(db)}"))
        console.print(line)
        _wait_for_event(rt, handle.run_id, EventType.STEP_STARTED, "charge_payment")
        time.sleep(cancel_after)  # let the payment get going: the demo is about mid-step cancel
        console.print(
            Text.assemble("cancelling it while ", ("charge_payment", "bold"), " runs ...")
        )
        rt.cancel(handle.run_id, "customer changed their mind", wait=True, timeout=30)
        with contextlib.suppress(RunCancelled):
            handle.result(timeout=30)
        events = rt.events(handle.run_id)
        final = rt.get_run(handle.run_id).status
    console.print(timeline(events))
    console.print(Text.assemble("final state: ", render.status_text(final)))
    _scope_scene(db, quote_seconds=quote_seconds)
    return handle.run_id


def _scope_scene(db: str, *, quote_seconds: float) -> None:
    """Scene 2: a scope's deadline cancels one step; the run goes on and completes."""
    console = render.console()
    console.print()
    with Runtime(db) as rt:
        handle = rt.start(order_with_quote, "o-1002", ["desk"], quote_seconds)
        line = Text("scene 2: started run ")
        line.append(handle.run_id, style="bold")
        line.append(" of workflow ")
        line.append("order_with_quote", style="bold")
        line.append_text(
            plain(
                f"; the shipping quote gets {quote_seconds}s (move_on_after), then the run goes on"
            )
        )
        console.print(line)
        result = handle.result(timeout=30)
        events = rt.events(handle.run_id)
        final = rt.get_run(handle.run_id).status
    console.print(timeline(events, title="scene 2: run timeline"))
    console.print(
        Text.assemble(
            "final state: ",
            render.status_text(final),
            f"  (quote: {result['quote']['carrier']}, timed out: {result['quote_timed_out']})",
        )
    )


def _wait_for_event(rt: Runtime, run_id: str, type_: EventType, step_name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e.type is type_ and e.step == step_name for e in rt.events(run_id)):
            return
        time.sleep(0.005)
    raise TimeoutError(f"{step_name} did not start within 30s")
