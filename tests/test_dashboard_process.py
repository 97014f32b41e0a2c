"""O1: ``proctor ui`` and ``proctor demo --ui`` as real processes.

One ``serving`` line once it listens (``--port 0``: the OS's free port),
pages served over real HTTP, the token enforced, and a clean stop on SIGINT
and SIGTERM (exit 0, nothing on stderr: no access log, no traceback).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Target, run_cli
from tests.dashboard_helpers import csrf_of, seed
from tests.processes import DEADLINE, ROOT

pytestmark = pytest.mark.timeout(120)

PREFIX = "proctor ui: serving "


class Served:
    """A ``proctor`` process whose stdout lines a thread collects (select and
    text buffering do not mix: a line read ahead would be missed)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="stdout-reader")
        self._reader.start()
        self.rest: list[str] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout: float = DEADLINE) -> str:
        """The next line of stdout, or fail after ``timeout`` seconds."""
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from the process within {timeout}s")
        if got is None:
            pytest.fail(f"the process ended (exit {self.process.wait()}) without the line")
        return got

    def stop(self, sig: signal.Signals) -> tuple[int, str, str]:
        """Send ``sig``; its exit code, the rest of its stdout, and its stderr."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        rest = []
        while (got := self.lines.get_nowait()) is not None:
            rest.append(got)
        err = self.process.stderr.read() if self.process.stderr else ""
        return code, "\n".join(rest), err


@contextmanager
def proctor_process(db: Target, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "--db", os.fspath(db), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        served._reader.join(timeout=DEADLINE)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our own loopback URL
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_O1_proctor_ui_says_where_it_serves_and_stops_cleanly_on_a_signal(
    db: Target, sig: signal.Signals
) -> None:
    seed(db, "served")
    with proctor_process(db, "ui", "--port", "0") as process:
        line = process.line()
        assert line.startswith(PREFIX), line
        url = line.removeprefix(PREFIX)
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/")
        assert not url.endswith(":0/")
        status, page = _get(url)
        assert status == 200
        assert 'data-run-id="served"' in page
        status, run_page = _get(f"{url}runs/served")
        assert status == 200
        assert 'id="run-status"' in run_page
        code, out, err = process.stop(sig)
    assert code == 0, err
    assert out == ""  # exactly one line in all
    assert err == ""  # no access log, no traceback


def test_O1_proctor_ui_with_a_token_from_the_env_serves_other_hosts_and_needs_it(
    db: Target,
) -> None:
    seed(db, "served")
    with proctor_process(
        db,
        "ui",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "0",
        env={"PROCTOR_UI_TOKEN": "tok-1"},
    ) as process:
        line = process.line()
        port = line.rsplit(":", 1)[1].rstrip("/")
        url = f"http://127.0.0.1:{port}/"
        assert _get(url)[0] == 401
        assert _get(url, {"Authorization": "Bearer tok-2"})[0] == 401
        status, page = _get(url, {"Authorization": "Bearer tok-1"})
        assert status == 200
        assert "served" in page
        code, _out, err = process.stop(signal.SIGTERM)
    assert code == 0, err


def test_O1_proctor_ui_on_a_port_in_use_is_one_clear_error(db: Target) -> None:
    seed(db, "served")
    with proctor_process(db, "ui", "--port", "0") as first:
        port = first.line().rsplit(":", 1)[1].rstrip("/")
        second = subprocess.run(
            [sys.executable, "-m", "cli", "--db", os.fspath(db), "ui", "--port", port],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        first.stop(signal.SIGINT)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr


def test_O1_demo_ui_serves_the_cancelled_orders_page(db: Target) -> None:
    with proctor_process(db, "demo", "--ui", "--port", "0", "--cancel-after", "0.05") as process:
        line = ""
        while not line.startswith("the cancelled order's timeline: "):
            line = process.line(timeout=DEADLINE * 2)
        url = line.removeprefix("the cancelled order's timeline: ")
        status, page = _get(url)
        assert status == 200
        assert 'id="run-status" class="status status-cancelled" data-status="CANCELLED"' in page
        assert '<section id="timeline-section">' in page
        code, _out, err = process.stop(signal.SIGINT)
    assert code == 0, err


# -- what a new user found ---------------------------------------------------------


def test_O1_proctor_ui_on_a_port_in_use_hints_at_port_0(db: Target) -> None:
    seed(db, "served")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cli", "--db", os.fspath(db), "ui", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0 picks a free port" in result.stderr
    assert result.stdout == ""


def test_O1_demo_ui_on_a_port_in_use_fails_before_the_demo(db: Target) -> None:
    """The port is bound first: a busy one fails at once, the store untouched
    (no demo runs added, nothing printed but the error and its hint)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                *(sys.executable, "-m", "cli", "--db", os.fspath(db), "demo", "--ui"),
                *("--port", str(port), "--cancel-after", "0.05", "--quote-deadline", "0.05"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0 picks a free port" in result.stderr
    assert result.stdout == ""  # the demo, which prints its timeline, never ran
    listed = run_cli(db, "runs", "list", "--json")
    assert listed.exit_code != 0 or json.loads(listed.output) == [], listed.output


def _lines_until(process: Served, prefix: str) -> list[str]:
    lines = [process.line()]
    while not lines[-1].startswith(prefix):
        lines.append(process.line())
    return lines


def test_O1_proctor_ui_on_every_interface_says_how_to_reach_it_and_open_it(
    db: Target,
) -> None:
    """``serving http://0.0.0.0:PORT/`` cannot be opened on another host: the
    URLs of this host's name and addresses follow it, then how to pass the token."""
    seed(db, "served")
    with proctor_process(
        db,
        "ui",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "0",
        "--token",
        "s3cret",
    ) as process:
        lines = _lines_until(process, "proctor ui: open it once")
        code, _out, err = process.stop(signal.SIGTERM)
    assert code == 0, err
    serving = lines[0]
    assert re.fullmatch(r"proctor ui: serving http://0\.0\.0\.0:\d+/", serving), serving
    port = serving.rsplit(":", 1)[1].rstrip("/")
    reachable = [line.removeprefix("proctor ui: reachable at ") for line in lines[1:-1]]
    assert all(re.fullmatch(rf"http://\S+:{port}/", url) for url in reachable), lines
    try:
        socket.getaddrinfo(socket.gethostname(), None, family=socket.AF_INET)
    except OSError:
        pass  # best effort: a host whose name does not resolve lists nothing
    else:
        assert reachable[0] == f"http://{socket.gethostname()}:{port}/"
    assert lines[-1] == "proctor ui: open it once with ?token=s3cret (it is then kept in a cookie)"


def test_O1_proctor_ui_never_prints_a_token_that_came_from_the_environment(
    db: Target,
) -> None:
    seed(db, "served")
    with proctor_process(
        db, "ui", "--port", "0", env={"PROCTOR_UI_TOKEN": "env-secret-1"}
    ) as process:
        lines = _lines_until(process, "proctor ui: open it once")
        code, out, err = process.stop(signal.SIGTERM)
    assert code == 0, err
    assert lines[-1] == (
        "proctor ui: open it once with ?token=$PROCTOR_UI_TOKEN (it is then kept in a cookie)"
    )
    assert "env-secret-1" not in "\n".join([*lines, out, err])


def test_O1_proctor_ui_logs_each_accepted_action_and_no_page_view(db: Target) -> None:
    """One INFO line per action on stderr (who asked, what the CLI would say);
    page views stay silent."""
    seed(db, "served")
    with proctor_process(db, "ui", "--port", "0") as process:
        url = process.line().removeprefix(PREFIX)
        status, page = _get(f"{url}runs/served")
        assert status == 200
        assert _get(url)[0] == 200
        form = urllib.parse.urlencode({"csrf": csrf_of(page), "reason": "out of stock"})
        request = urllib.request.Request(  # noqa: S310 - our own loopback URL
            f"{url}runs/served/cancel",
            data=form.encode(),
            headers={"Origin": url.rstrip("/")},
        )
        with urllib.request.urlopen(request, timeout=DEADLINE) as answer:  # noqa: S310
            assert answer.status == 200  # the run page, after the 303
        code, _out, err = process.stop(signal.SIGINT)
    assert code == 0, err
    assert err.splitlines() == [
        "proctor ui: cancel of run served requested from 127.0.0.1:"
        " cancel requested: run served is now cancelling"
    ]


def test_O1_the_demo_hint_names_proctor_as_invoked_when_it_is_not_on_path(
    tmp_path: Path,
) -> None:
    """Installed into a virtualenv that is not activated, ``proctor`` is not a
    command: the hint names the script that ran instead."""
    script = Path(sys.executable).parent / "proctor"
    if not script.exists():
        pytest.skip("proctor is not installed as a script beside this Python")
    path = "/usr/bin:/bin"
    assert shutil.which("proctor", path=path) is None
    store = tmp_path / "demo.db"
    result = subprocess.run(
        [
            str(script),
            "--db",
            str(store),
            "demo",
            "--cancel-after",
            "0.05",
            "--quote-deadline",
            "0.05",
        ],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    hint = result.stdout.strip().splitlines()[-1]
    assert hint == f"see it in the dashboard: {script} --db {store} ui"


@pytest.mark.parametrize("host", ["[::1]", "::1"])
def test_O1_proctor_ui_binds_ipv6_loopback_written_either_way(db: Target, host: str) -> None:
    """Found by a tester: ``--host '[::1]'`` passed the loopback rule, then
    failed with "cannot resolve host": the bind now takes the URL's form too."""
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    seed(db, "six")
    with proctor_process(db, "ui", "--host", host, "--port", "0") as process:
        line = process.line()
        assert line.startswith(f"{PREFIX}http://[::1]:"), line
        code, _out, err = process.stop(signal.SIGTERM)
    assert code == 0, err
