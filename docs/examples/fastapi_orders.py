"""A FastAPI service over Proctor: the runtime lives in the app's lifespan, and
every endpoint awaits the async API, so no request holds the event loop.

Every endpoint takes the ORDER id; the run id is derived from it in one place
(``run_id_of``). Serve it with ``uvicorn fastapi_orders:app``; run this file to
drive it once in-process through httpx's ASGI transport.
"""

import asyncio
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from fastapi import Path as InPath
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from actors import (
    InvalidArgument,
    OutcomeUnknown,
    RunCancelled,
    RunEnded,
    RunIdInUse,
    RunNotFound,
    RunTerminated,
    Runtime,
    RuntimeClosed,
    WaitTimeout,
    get_context,
    step,
    workflow,
)

#: An order id: letters, digits, "_" and "-", 1 to 64 of them. It has to fit
#: in a URL path segment (no "/") and make a valid run id (no ".<digits>" end).
ORDER_ID = r"^[A-Za-z0-9_-]{1,64}$"
OrderId = Annotated[str, InPath(pattern=ORDER_ID)]

#: Demo stand-in for the outside world: the warehouse ships at once when set,
#: else after ORDERS_SHIP_DELAY seconds (default 3; read at each call).
WAREHOUSE_OPEN = threading.Event()


def run_id_of(order_id: str) -> str:
    """The run of an order: the one place the service maps ids (rule A2)."""
    return f"order-{order_id}"


@step()
def charge(order_id: str, amount: int) -> str:
    return f"receipt-{order_id}-{amount}"


@step()
def ship(order_id: str) -> str:
    ctx = get_context()
    deadline = time.monotonic() + float(os.environ.get("ORDERS_SHIP_DELAY", "3"))
    while not WAREHOUSE_OPEN.wait(0.01) and time.monotonic() < deadline:
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


def answer(status: int, detail: Exception, **fields: object) -> JSONResponse:
    return JSONResponse({**fields, "detail": str(detail)}, status_code=status)


@app.exception_handler(RunNotFound)
async def not_found(request: Request, exc: RunNotFound) -> JSONResponse:
    return answer(404, exc)


@app.exception_handler(RunIdInUse)
async def id_in_use(request: Request, exc: RunIdInUse) -> JSONResponse:
    return answer(409, exc)  # the order id holds another order


@app.exception_handler(InvalidArgument)
async def invalid(request: Request, exc: InvalidArgument) -> JSONResponse:
    return answer(422, exc)  # as FastAPI answers a request its models refuse


@app.exception_handler(OutcomeUnknown)
async def unknown(request: Request, exc: OutcomeUnknown) -> JSONResponse:
    # No durable answer in time: the run may exist. Retrying the same
    # request is safe (A3); the body names the run to look up.
    response = answer(503, exc, run_id=exc.run_id)
    response.headers["Retry-After"] = "1"
    return response


@app.exception_handler(RuntimeClosed)
async def closing(request: Request, exc: RuntimeClosed) -> JSONResponse:
    return answer(503, exc)  # shutting down: another instance may answer


class NewOrder(BaseModel):
    order_id: str = Field(pattern=ORDER_ID)
    amount: int


class Reason(BaseModel):
    reason: str | None = None


@app.post("/orders", status_code=201)
async def place(new: NewOrder, request: Request, response: Response) -> dict[str, str]:
    # Returns once the run is durable; the workflow goes on in the runtime.
    # A retried POST of the same order gets the same run back (200, where
    # the first answer was 201 Created); another order under its id a 409.
    run = await runtime(request).start_async(
        order, new.order_id, new.amount, run_id=run_id_of(new.order_id)
    )
    if not run.created:
        response.status_code = 200
    return {"order_id": new.order_id, "run_id": run.run_id}


@app.get("/orders/{order_id}")
async def read(order_id: OrderId, request: Request) -> dict[str, object]:
    record = await runtime(request).get_run_async(run_id_of(order_id))  # 404 if unknown
    return {"order_id": order_id, "status": record.status.value, "result": record.result}


@app.post("/orders/{order_id}/cancel")
async def cancel(
    order_id: OrderId, request: Request, body: Reason | None = None
) -> dict[str, object]:
    # wait=True: answer once the order is over (or 10 s passed), loop free meanwhile.
    reason = body.reason if body else None
    done = await runtime(request).cancel_async(run_id_of(order_id), reason, wait=True, timeout=10)
    return {"order_id": order_id, "status": done.status.value, "changed": done.changed}


@app.post("/orders/{order_id}/terminate")
async def terminate(
    order_id: OrderId, request: Request, body: Reason | None = None
) -> dict[str, object]:
    reason = body.reason if body else None
    done = await runtime(request).terminate_async(run_id_of(order_id), reason)
    return {"order_id": order_id, "status": done.status.value, "changed": done.changed}


#: How each end that is not a result is told (409: the order did not complete).
ENDS = {RunCancelled: "cancelled", RunTerminated: "terminated"}


@app.get("/orders/{order_id}/result")
async def result(
    order_id: OrderId,
    request: Request,
    response: Response,
    timeout: Annotated[float, Query(ge=0, le=60, allow_inf_nan=False)] = 10,
) -> dict[str, object]:
    handle = await runtime(request).handle_async(run_id_of(order_id))  # 404 if unknown
    try:
        outcome = await handle.result_async(timeout=timeout)
    except WaitTimeout as exc:
        # Not finished yet: 202 Accepted, its status in the body; ask again.
        response.status_code = 202
        response.headers["Retry-After"] = "1"
        return {"order_id": order_id, "status": exc.status, "detail": str(exc)}
    except RunEnded as exc:  # cancelled, terminated or failed: no result to give
        response.status_code = 409
        status = ENDS.get(type(exc), "failed")
        return {"order_id": order_id, "status": status, "detail": str(exc)}
    return {"order_id": order_id, "status": "completed", "result": outcome}


async def demo() -> list[str]:
    """Drive the app in-process: httpx's ASGI transport does not run the
    lifespan, so the demo enters it itself."""
    import httpx  # noqa: PLC0415 - the demo's client only

    seen = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            first = await client.post("/orders", json={"order_id": "o-1", "amount": 5})
            retried = await client.post("/orders", json={"order_id": "o-1", "amount": 5})
            same = retried.json() == first.json()  # a retry is safe: the same run
            seen.append(f"{first.status_code} then {retried.status_code}, same run: {same}")
            other = await client.post("/orders", json={"order_id": "o-1", "amount": 6})
            seen.append(str(other.status_code))  # 409: o-1 is another order
            await client.post("/orders", json={"order_id": "o-2", "amount": 7})
            cancelled = await client.post("/orders/o-1/cancel")  # the body is optional
            seen.append(cancelled.json()["status"])  # cancelled
            WAREHOUSE_OPEN.set()
            done = await client.get("/orders/o-2/result")
            seen.append(done.json()["result"])
            missing = await client.get("/orders/nope")
            seen.append(str(missing.status_code))  # 404
    return seen


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ORDERS_DB"] = str(Path(tmp, "orders.db"))
        os.environ["ORDERS_SHIP_DELAY"] = "inf"  # the demo opens the warehouse itself
        print(asyncio.run(demo()))
        # ['201 then 200, same run: True', '409', 'cancelled', 'shipped o-2 ...', '404']


if __name__ == "__main__":
    main()
