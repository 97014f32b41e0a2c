"""Store size: bytes a run leaves in the store, and how many copies of a payload.

Runs ``--runs`` ordinary 3-step runs (each step takes and returns a short
string), then one run whose argument is a ``--mb`` MB string that its step
takes and returns and the workflow returns, each in a fresh store; prints
the store's size after a full WAL checkpoint (the WAL's pages are copies on
their way into the database, not a second home of the data) and after
VACUUM, and the MB per MB of payload.

    python benchmarks/store_size.py [--runs 1000] [--mb 5]
"""

from __future__ import annotations

import argparse
import inspect
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Runtime, step, workflow


@step(name="size.work")
def work(text: str) -> str:
    return text.upper()


@workflow(name="size.three_steps")
async def three_steps(order: str) -> str:
    a = await work(order)
    b = await work(a + "-paid")
    return await work(b + "-shipped")


@step(name="size.echo")
def echo(blob: str) -> str:
    return blob


@workflow(name="size.big")
async def big(blob: str) -> str:
    return await echo(blob)


def _sizes(db: Path) -> tuple[int, int]:
    """(bytes after a full checkpoint, bytes after VACUUM)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpointed = db.stat().st_size
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return checkpointed, db.stat().st_size
    finally:
        conn.close()


def _runtime(db: Path, limit: int) -> Runtime:
    # The payload limit is a keyword of the Runtime only from the release that
    # added it: the same script measures the code before it.
    if "max_payload_bytes" in inspect.signature(Runtime).parameters:
        return Runtime(db, max_payload_bytes=limit)
    return Runtime(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--mb", type=float, default=5.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp, "small.db")
        with Runtime(db) as rt:
            empty, _ = _sizes(db)
            handles: list[Any] = [rt.start(three_steps, f"order-{i:06d}") for i in range(opts.runs)]
            for h in handles:
                h.result(timeout=60)
        full, vacuumed = _sizes(db)
        print(
            f"{opts.runs} three-step runs: {(full - empty) / opts.runs:,.0f} bytes per run"
            f" ({(vacuumed - empty) / opts.runs:,.0f} after VACUUM)"
        )
        db = Path(tmp, "big.db")
        size = int(opts.mb * 1_000_000)
        with _runtime(db, 2 * size + 1_000_000) as rt:
            empty, _ = _sizes(db)
            rt.start(big, "x" * size).result(timeout=120)
        full, vacuumed = _sizes(db)
        print(
            f"one run, a {opts.mb:g} MB argument its step returns and the workflow returns:"
            f" {(full - empty) / 1e6:,.1f} MB ({(vacuumed - empty) / 1e6:,.1f} MB after VACUUM),"
            f" {(vacuumed - empty) / size:.1f} copies"
        )


if __name__ == "__main__":
    main()
