"""A FastAPI service over Proctor: the runtime lives in the app's lifespan, and
every endpoint awaits the async API, so no request holds the event loop.

Serve it with ``uvicorn fastapi_orders:app``; run this file to drive it once
in-process through httpx's ASGI transport.
"""

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from actors import RunIdInUse, RunNotFound, Runtime, get_context, step, workflow

#: Demo stand-in for the outside world: the warehouse ships once it opens.
WAREHOUSE_OPEN = threading.Event()


@step()
def charge(order_id: str, amount: int) -> str:
    return f"receipt-{order_id}-{amount}"


@step()
def ship(order_id: str) -> str:
    ctx = get_context()
    while not WAREHOUSE_OPEN.wait(0.01):
        ctx.check_cancellation()  # a cancel of the order lands here (C2)
    return f"shipped {order_id}"


@workflow()
async def order(order_id: str, amount: int) -> str:
    receipt = await charge(order_id, amount)
    return f"{await ship(order_id)} ({receipt})"


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One runtime per process: opened before the first request, closed
    # (off the loop, close_async) after the last one.
    async with Runtime(os.environ.get("ORDERS_DB", "orders.db")) as rt:
        app.state.runtime = rt
        yield


app = FastAPI(lifespan=lifespan)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@app.exception_handler(RunNotFound)
async def not_found(request: Request, exc: RunNotFound) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


@app.exception_handler(RunIdInUse)
async def conflict(request: Request, exc: RunIdInUse) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


class NewOrder(BaseModel):
    order_id: str
    amount: int


class Reason(BaseModel):
    reason: str | None = None


@app.post("/orders", status_code=201)
async def place(new: NewOrder, request: Request) -> dict[str, str]:
    # Returns once the run is durable; the workflow goes on in the runtime.
    # The order id is the run id (A2): a client that retries this POST gets
    # the same run back, and another order under the same id a 409.
    run = await runtime(request).start_async(
        order, new.order_id, new.amount, run_id=f"order-{new.order_id}"
    )
    return {"run_id": run.run_id}


@app.get("/orders/{run_id}")
async def read(run_id: str, request: Request) -> dict[str, object]:
    record = await runtime(request).get_run_async(run_id)  # 404 if unknown
    return {"run_id": run_id, "status": record.status.value, "result": record.result}


@app.post("/orders/{run_id}/cancel")
async def cancel(run_id: str, body: Reason, request: Request) -> dict[str, object]:
    # wait=True: answer once the order is over (or 10 s passed), loop free meanwhile.
    done = await runtime(request).cancel_async(run_id, body.reason, wait=True, timeout=10)
    return {"run_id": run_id, "status": done.status.value, "changed": done.changed}


@app.post("/orders/{run_id}/terminate")
async def terminate(run_id: str, body: Reason, request: Request) -> dict[str, object]:
    done = await runtime(request).terminate_async(run_id, body.reason)
    return {"run_id": run_id, "status": done.status.value, "changed": done.changed}


@app.get("/orders/{run_id}/result")
async def result(run_id: str, request: Request, timeout: float = 10) -> dict[str, object]:
    handle = await runtime(request).handle_async(run_id)
    return {"run_id": run_id, "result": await handle.result_async(timeout=timeout)}


async def demo() -> list[str]:
    """Drive the app in-process: httpx's ASGI transport does not run the
    lifespan, so the demo enters it itself."""
    import httpx  # noqa: PLC0415 - the demo's client only

    seen = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            first = (await client.post("/orders", json={"order_id": "o-1", "amount": 5})).json()
            retried = (await client.post("/orders", json={"order_id": "o-1", "amount": 5})).json()
            seen.append("same run" if retried == first else "two runs")  # a retry is safe
            other = await client.post("/orders", json={"order_id": "o-1", "amount": 6})
            seen.append(str(other.status_code))  # 409: o-1 is another order
            second = (await client.post("/orders", json={"order_id": "o-2", "amount": 7})).json()
            cancelled = await client.post(
                f"/orders/{first['run_id']}/cancel", json={"reason": "customer"}
            )
            seen.append(cancelled.json()["status"])  # cancelled
            WAREHOUSE_OPEN.set()
            done = await client.get(f"/orders/{second['run_id']}/result")
            seen.append(done.json()["result"])
            missing = await client.get("/orders/nope")
            seen.append(str(missing.status_code))  # 404
    return seen


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ORDERS_DB"] = str(Path(tmp, "orders.db"))
        print(asyncio.run(demo()))  # ['same run', '409', 'cancelled', 'shipped o-2 ...', '404']


if __name__ == "__main__":
    main()
