"""A runtime on PostgreSQL: the same workflow code, a URL instead of a path.

Run with PROCTOR_DB naming the store, e.g.
PROCTOR_DB=postgresql://app@localhost/shop python postgresql_store.py
(without it, a SQLite file here: the code is the same).
"""

import os

from actors import Runtime, step, workflow


# --8<-- [start:store]
@step()
def reserve(order_id: str) -> str:
    return f"reserved {order_id}"


@workflow()
async def order(order_id: str) -> str:
    return await reserve(order_id)


store = os.environ.get("PROCTOR_DB", "sqlite:///orders.db")  # postgresql://app@db.internal/shop
with Runtime(store) as rt:
    run = rt.start(order, "o-1")
    print(run.result(timeout=30))
# --8<-- [end:store]
