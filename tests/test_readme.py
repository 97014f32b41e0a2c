"""The README's "Use it" example does what its comments say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import DEADLINE, ROOT

pytestmark = pytest.mark.timeout(60)


def test_the_readme_example_ends_cancelled_after_its_shielded_cleanup(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## Use it", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "example.py").write_text(code)
    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    status, _, log = done.stdout.partition(" ")
    assert status == "cancelled", done.stdout + done.stderr
    for event in ("cancel_delivered", "shield_entered", "run_cancelled"):
        assert f"'{event}'" in log
