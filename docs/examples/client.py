"""A Client starts, lists and waits for runs that a worker runs elsewhere."""

import asyncio
import tempfile
from pathlib import Path

from actors import Client, Runtime, step, workflow


@step()
def charge(order: str, cents: int) -> str:
    return f"charged {cents} for {order}"


@workflow()
async def order(order_id: str, cents: int) -> str:
    return await charge(order_id, cents)


async def service(db: Path) -> str:
    # A process that hosts no runs: no actors, no threads, no lease.
    with Client(db) as client:
        handle = await client.start_async(order, "o-1", 1250, run_id="order-o-1")
        page = await client.list_runs_page_async(workflow="order", since="1h", limit=10)
        assert [r.run_id for r in page.runs] == ["order-o-1"]
        return await handle.result_async(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp, "proctor.db")
        # The worker: in production `proctor worker myapp.workflows`, in its own process.
        with Runtime(db, claim_runs=True):
            print(asyncio.run(service(db)))  # charged 1250 for o-1


if __name__ == "__main__":
    main()
