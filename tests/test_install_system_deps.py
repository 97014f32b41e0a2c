"""``scripts/install-system-deps``: what a fresh machine runs first (the
README's commands and CI). It installs only what is missing, from the
distribution's packages, says what it does, and costs nothing when all is
there. apt-get, sudo and id are stand-ins here that record their arguments:
the test installs nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import ROOT

SCRIPT = ROOT / "scripts" / "install-system-deps"
#: The script's interpreter, by full path: some tests run it with a PATH of stand-ins only.
BASH = shutil.which("bash") or "/bin/bash"


def run(script: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(script)],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def needing(tmp_path: Path, *lines: str) -> Path:
    """A copy of the script whose package list is ``lines`` (one per package)."""
    text = SCRIPT.read_text()
    text, n = re.subn(
        r"# One line per package\.\n(?:.*\n)*?\n",
        "# One line per package.\n" + "\n".join(lines) + "\n\n",
        text,
    )
    assert n == 1
    copy = tmp_path / "install-system-deps"
    copy.write_text(text)
    return copy


def stand_ins(tmp_path: Path, uid: int, *tools: str) -> Path:
    """A bin folder: ``id`` says ``uid``; each of ``tools`` logs its argv."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for tool in tools:
        (bin_ / tool).write_text(
            f'#!/bin/sh\necho "{tool} $*" >> {tmp_path}/calls\n'
            + ('exec "$@"\n' if tool == "sudo" else "")
        )
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_P1_with_everything_present_it_says_nothing_and_takes_under_a_second() -> None:
    if shutil.which("initdb") is None and not list(
        Path("/usr/lib/postgresql").glob("*/bin/initdb")
    ):
        pytest.skip("PostgreSQL is not installed here: the script would install it")
    started = time.monotonic()
    done = run(SCRIPT, os.environ["PATH"])
    assert time.monotonic() - started < 1.0
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_P1_a_missing_package_is_installed_with_sudo_when_not_root(tmp_path: Path) -> None:
    script = needing(
        tmp_path,
        f'require postgresql "no-such-initdb {tmp_path}/none/*/bin/initdb" "the store tests"',
        'require bash "bash" "present: never installed"',
    )
    bin_ = stand_ins(tmp_path, 1000, "apt-get", "sudo")
    done = run(script, f"{bin_}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert "missing system packages:\n  postgresql: the store tests" in done.stdout
    assert "apt-get install -y --no-install-recommends postgresql" in done.stdout
    assert calls(tmp_path) == [
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "apt-get update -qq",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
        " --no-install-recommends postgresql",
        "apt-get install -y -qq --no-install-recommends postgresql",
    ]


def test_P1_as_root_it_installs_without_sudo(tmp_path: Path) -> None:
    script = needing(tmp_path, 'require postgresql "no-such-initdb" "the store tests"')
    bin_ = stand_ins(tmp_path, 0, "apt-get")
    done = run(script, f"{bin_}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith("sudo") for c in calls(tmp_path))
    assert calls(tmp_path)[-1] == "apt-get install -y -qq --no-install-recommends postgresql"


def test_P1_a_present_package_is_found_by_a_glob_and_not_installed(tmp_path: Path) -> None:
    (tmp_path / "pg" / "15" / "bin").mkdir(parents=True)
    initdb = tmp_path / "pg" / "15" / "bin" / "initdb"
    initdb.write_text("#!/bin/sh\n")
    initdb.chmod(0o755)
    script = needing(tmp_path, f'require postgresql "no-such {tmp_path}/pg/*/bin/initdb" "x"')
    bin_ = stand_ins(tmp_path, 0, "apt-get")
    done = run(script, f"{bin_}:/usr/bin:/bin")
    assert (done.returncode, done.stdout, calls(tmp_path)) == (0, "", [])


@pytest.mark.parametrize(("ci", "code"), [("", 0), ("1", 1)])
def test_P1_without_apt_get_it_says_what_to_install_and_fails_only_in_ci(
    tmp_path: Path, ci: str, code: int
) -> None:
    script = needing(tmp_path, 'require postgresql "no-such-initdb" "the store tests"')
    bin_ = stand_ins(tmp_path, 1000)
    env = {"CI": ci} if ci else {}
    done = run(script, str(bin_), **env)
    assert done.returncode == code
    assert "install with your package manager: postgresql" in done.stderr


def test_P1_not_root_and_no_sudo_is_a_clear_error(tmp_path: Path) -> None:
    script = needing(tmp_path, 'require postgresql "no-such-initdb" "the store tests"')
    bin_ = stand_ins(tmp_path, 1000, "apt-get")
    done = run(script, str(bin_))
    assert done.returncode == 1
    assert "not root and no sudo: as root, run apt-get install -y postgresql" in done.stderr
    assert calls(tmp_path) == []
