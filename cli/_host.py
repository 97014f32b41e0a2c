"""What ``worker`` runs: a runtime hosted in this process, serving the user's modules.

Only ``worker`` imports this module (lazily), so the commands that merely
read or control runs never load ``actors``.

Invariant: a worker serves exactly the workflows its modules register when
imported (with the modules they import): a runtime claims and resumes the
runs of every workflow registered in its process, so nothing else may
register one here. That is why the demo's workflow lives in ``cli._demo``,
which only ``proctor demo`` imports.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from collections.abc import Sequence
from types import ModuleType

import click

from actors import Runtime, WorkflowDef, registered_workflows
from cli._imports import import_user_module
from cli._log_format import configure_logging
from cli._main import fail
from cli._text import clean
from persistence import redact

# -- proctor worker ----------------------------------------------------------------

#: How often a worker looks whether its runtime stopped itself, in seconds.
WORKER_CHECK_INTERVAL = 0.2


def run_worker(
    db: str,
    modules: Sequence[str],
    *,
    max_concurrent_steps: int | None = None,
    busy_timeout: float | None = None,
    drain: float = 0.0,
    log_format: str = "text",
    log_level: str = "info",
) -> None:
    """Host a runtime that claims and runs the store's unowned runs until a signal.

    The first SIGINT or SIGTERM drains the runtime for ``drain`` seconds
    (A4: running steps may finish; nothing new starts); a second one ends
    the drain at once: the running steps are asked to stop, and any still
    running after the runtime's ``shutdown_timeout`` are abandoned (re-run
    on resume). A signal after that (the third; the second with no drain)
    kills the worker at once (the default action of the signal), writing
    nothing more: a crash,
    whose runs another worker resumes once their leases expire (uvicorn and
    the Docker CLI force the exit on a repeated signal; Kubernetes sends
    SIGTERM, then SIGKILL after its grace period; Temporal's worker has
    ``graceful_shutdown_timeout``).

    ``log_format`` (``text`` or ``json``) and ``log_level``: how and from
    which level the runtime's log records are printed on stderr.

    Raises:
        click.BadParameter: a module cannot be imported (its error's type, file
            and line), or one of them has no workflow.
    """
    empty = []
    for name in modules:
        before = set(registered_workflows())
        module = import_user_module(name, param_hint="MODULE")
        if not (set(registered_workflows()) - before) and not _workflows_in(module):
            empty.append(name)
    if empty:
        raise click.BadParameter(
            f"no @workflow() found in {clean(', '.join(empty))}: a worker serves the workflows"
            " its modules define",
            param_hint="MODULE",
        )
    known = registered_workflows()
    # A fatal signal (SIGBUS when SQLite's mapped -shm is truncated under it,
    # SIGSEGV) kills the process before any Python code can react: it says
    # so on stderr, with every thread's stack, instead of dying silently.
    faulthandler.enable()
    configure_logging(log_format, log_level)  # O3: text or JSON Lines, on stderr
    signals = _Signals(drains=drain > 0)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signals.on_signal)
    try:
        runtime = Runtime(
            db,
            claim_runs=True,
            max_concurrent_steps=max_concurrent_steps,
            busy_timeout=busy_timeout,
            drain=drain,
        )
    except ValueError as exc:  # --busy-timeout too long for the lease, say
        raise click.UsageError(clean(str(exc))) from exc
    with runtime as rt:
        serving = clean(", ".join(known))
        click.echo(f"worker {rt.id} (pid {os.getpid()}) on {clean(redact(db))}, serving: {serving}")
        # Until a signal, or until the runtime stops itself (its store file
        # deleted, replaced or damaged): then the worker exits 1 and says why.
        while not signals.first.wait(WORKER_CHECK_INTERVAL) and rt.failure is None:
            pass
        failure = rt.failure
        if failure is None and drain > 0:
            _drain(rt, drain, signals)
        again = " (SIGTERM or Ctrl-C again exits at once)" if signals.first.is_set() else ""
        click.echo(
            f"worker {rt.id} stopping; its unfinished runs stay in the store for the"
            f" next runtime to resume{again}"
        )
    if failure is not None:
        fail(f"worker {rt.id} stopped: {clean(str(failure))}")


class _Signals:
    """SIGINT and SIGTERM as they come: the first starts the shutdown; the
    second ends a drain under way; one more kills the process at once.

    Invariant: once nothing is left for a signal to end (no drain under way,
    or it was ended), SIGINT and SIGTERM have their default action again, so
    the next one kills the process in the kernel, at once, whatever its
    threads are doing (a Python handler runs only when the main thread gets
    to it, which a blocking wait of the close can hold up for seconds).
    """

    def __init__(self, *, drains: bool) -> None:
        self.first = threading.Event()
        self.second = threading.Event()
        #: Whether the first signal starts a drain a second one can end.
        self._drains = drains

    def on_signal(self, _signum: int, _frame: object) -> None:
        # Only Event.set() and signal.signal() here: a handler runs between
        # two bytecodes of the main thread, which may hold any other lock
        # (logging's, stdout's, the store's).
        if not self.first.is_set():
            self.first.set()
            if not self._drains:
                _die_on_next_signal()
        else:
            self.second.set()
            _die_on_next_signal()


def _die_on_next_signal() -> None:
    """Give SIGINT and SIGTERM their default action: the next one kills the
    process as a crash (no close, no store write, no flush). Its runs'
    leases expire and another worker resumes them; a step whose body
    returned but was not recorded runs again (``step_reexecuted``)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _drain(rt: Runtime, drain: float, signals: _Signals) -> None:
    """Close ``rt`` with a drain on another thread, so that a second signal,
    handled on this one, can end it (a close() that waits for the first)."""
    click.echo(
        f"worker {rt.id} draining: running steps get up to {drain:g}s to finish, nothing new"
        " starts; SIGTERM or Ctrl-C again ends the drain (steps are asked to stop), a third"
        " exits at once"
    )
    closer = threading.Thread(target=rt.close, name="proctor-drain")
    closer.start()
    while closer.is_alive():
        if signals.second.wait(WORKER_CHECK_INTERVAL):
            click.echo(
                f"worker {rt.id}: second signal, ending the drain now; steps still running"
                f" after {rt.shutdown_timeout:g}s are abandoned (another signal exits at once)"
            )
            rt.close()  # ends the drain; returns once the runtime is closed
            break
    closer.join()


def _workflows_in(module: ModuleType) -> list[str]:
    """The workflows ``module`` holds as attributes (defined or imported there)."""
    return [v.name for v in vars(module).values() if isinstance(v, WorkflowDef)]
