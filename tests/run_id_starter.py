"""A process that starts one run with a chosen id, for the A2 process race.

``python -m tests.run_id_starter DB FOLDER RUN_ID``: opens a runtime on DB,
says it is ready (``FOLDER/ready-<pid>``), waits for ``FOLDER/go``, then
starts ``cli_workflows.counted(FOLDER, "race")`` as RUN_ID, waits for its end
and prints the id it got.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from actors import Runtime
from tests.cli_workflows import counted


def main() -> None:
    db, folder, run_id = sys.argv[1:4]
    with Runtime(db) as rt:
        Path(folder, f"ready-{os.getpid()}").touch()
        deadline = time.monotonic() + 30
        while not Path(folder, "go").exists():
            if time.monotonic() > deadline:
                raise SystemExit("no go")
            time.sleep(0.001)
        handle = rt.start(counted, folder, "race", run_id=run_id)
        handle.result(timeout=30)
        print(handle.run_id)


if __name__ == "__main__":
    main()
