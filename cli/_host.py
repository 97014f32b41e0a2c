"""What ``demo`` and ``worker`` run: a runtime hosted in this process.

Only those two commands import this module (lazily), so the commands that
merely read or control runs never load ``actors``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console

from actors import (
    CancellationError,
    RunCancelled,
    Runtime,
    get_context,
    registered_workflows,
    shield,
    step,
    workflow,
)
from cli._main import fail
from cli._render import timeline
from persistence import EventType, RunState

# -- the order workflow of the demo ----------------------------------------------


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


# -- proctor demo ------------------------------------------------------------------


def run_demo(db: str, *, cancel_after: float) -> None:
    console = Console()
    with Runtime(db) as rt:
        handle = rt.start(order, "o-1001", ["book", "lamp"], 4999)
        console.print(f"started run [bold]{handle.run_id}[/] of workflow [bold]order[/] on {db}")
        _wait_for_event(rt, handle.run_id, EventType.STEP_STARTED, "charge_payment")
        time.sleep(cancel_after)  # let the payment get going: the demo is about mid-step cancel
        console.print("cancelling it while [bold]charge_payment[/] runs ...")
        rt.cancel(handle.run_id, "customer changed their mind", wait=True, timeout=30)
        with contextlib.suppress(RunCancelled):
            handle.result(timeout=30)
        events = rt.events(handle.run_id)
        final = rt.get_run(handle.run_id).status
    console.print(timeline(events))
    style = "green" if final is RunState.CANCELLED else "red"
    console.print(f"final state: [bold {style}]{final.value.upper()}[/]")


def _wait_for_event(rt: Runtime, run_id: str, type_: EventType, step_name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e.type is type_ and e.step == step_name for e in rt.events(run_id)):
            return
        time.sleep(0.005)
    raise TimeoutError(f"{step_name} did not start within 30s")


# -- proctor worker ----------------------------------------------------------------

#: How often a worker looks whether its runtime stopped itself, in seconds.
WORKER_CHECK_INTERVAL = 0.2


def run_worker(db: str, modules: Sequence[str], *, max_concurrent_steps: int | None = None) -> None:
    """Host a runtime that claims and runs the store's unowned runs until a signal."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the project's own modules
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise click.BadParameter(f"cannot import {name}: {exc}", param_hint="MODULE") from exc
    known = registered_workflows()
    if not known:
        raise click.UsageError(f"no @workflow() found in {', '.join(modules)}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Runtime(db, claim_runs=True, max_concurrent_steps=max_concurrent_steps) as rt:
        click.echo(f"worker {rt.id} (pid {os.getpid()}) on {db}, serving: {', '.join(known)}")
        # Until a signal, or until the runtime stops itself (its store file
        # deleted, replaced or damaged): then the worker exits 1 and says why.
        while not stop.wait(WORKER_CHECK_INTERVAL) and rt.failure is None:
            pass
        failure = rt.failure
        click.echo(
            f"worker {rt.id} stopping; its unfinished runs stay in the store for the"
            " next runtime to resume"
        )
    if failure is not None:
        fail(f"worker {rt.id} stopped: {failure}")
