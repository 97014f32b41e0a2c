"""Which of some runs a runtime no longer owns (fencing).

One question, asked by the store in two places: by a heartbeat write (a
runtime's heartbeat of a run it lost is not written, and the runtime is
told) and by a renewal (the runs a runtime hosts are checked against the
store). Invariant: ``runs.owner`` is the only truth; a run owned by nobody
(``NULL``) is not the asker's either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from persistence._sql import Conn

#: Ids per ``IN (...)`` list: well under SQLite's limit on bound parameters.
IN_CHUNK: Final = 500


def owners_other_than(conn: Conn, run_ids: Sequence[str], me: str) -> dict[str, str | None]:
    """Of ``run_ids``, those whose owner is not ``me``: run id -> owner."""
    found: dict[str, str | None] = {}
    for i in range(0, len(run_ids), IN_CHUNK):
        chunk = run_ids[i : i + IN_CHUNK]
        rows = conn.execute(
            f"SELECT run_id, owner FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})"
            " AND (owner IS NULL OR owner != ?)",
            (*chunk, me),
        )
        found.update((run_id, owner) for run_id, owner in rows)
    return found
