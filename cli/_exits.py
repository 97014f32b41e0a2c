"""Which exit codes each command can end with: its --help lists only those.

One table, beside the commands, so that a read (``runs status``) does not
promise a --wait timeout (5) or a taken run id (6) it can never give. Every
command can end with 0 (success), 1 (error) and 2 (usage).

Invariant: a command's epilog names a code only if some path of that
command exits with it (``fail(..., code)``, or an error class with that
``exit_code``).
"""

from __future__ import annotations

from typing import Final

from cli._main import (
    EXIT_ALREADY_FINISHED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_RUN_ID_IN_USE,
    EXIT_WAIT_TIMED_OUT,
    exit_codes_help,
)

#: proctor cancel: --wait may time out or be interrupted.
CANCEL: Final = exit_codes_help(
    EXIT_NOT_FOUND, EXIT_ALREADY_FINISHED, EXIT_WAIT_TIMED_OUT, EXIT_INTERRUPTED
)
#: proctor terminate, proctor signal: a run that is gone or finished.
TERMINATE: Final = exit_codes_help(EXIT_NOT_FOUND, EXIT_ALREADY_FINISHED)
SIGNAL: Final = TERMINATE
#: proctor start: --wait, and --run-id.
START: Final = exit_codes_help(
    EXIT_WAIT_TIMED_OUT,
    EXIT_RUN_ID_IN_USE,
    EXIT_INTERRUPTED,
    e1="error (bad store file, or with --wait the run did not complete)",
)
#: proctor runs restart: the old run must exist and be finished; --run-id.
RESTART: Final = exit_codes_help(
    EXIT_NOT_FOUND, EXIT_ALREADY_FINISHED, EXIT_RUN_ID_IN_USE, e4="run not finished yet"
)
#: proctor runs status, runs tree: reads of one run.
READ_ONE: Final = exit_codes_help(EXIT_NOT_FOUND)
#: proctor runs logs: --follow may be interrupted.
LOGS: Final = exit_codes_help(EXIT_NOT_FOUND, EXIT_INTERRUPTED)
#: proctor runs list, runs prune, worker, demo.
PLAIN: Final = exit_codes_help()
