"""A run records its workflow's name; a script and a worker must agree on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import DEADLINE, ROOT

pytestmark = pytest.mark.timeout(60)

SCRIPT = """
import sys
from actors import step, workflow

@step()
def add(a: int, b: int) -> int:
    return a + b

@workflow()
async def total(a: int) -> int:
    return await add(a, 1)

print(total.name)
"""


def test_a_workflow_in_a_script_is_named_after_its_module_as_a_worker_imports_it(
    tmp_path: Path,
) -> None:
    """``python shop.py`` runs the module as ``__main__``; its workflows are
    named ``shop.total``, as ``proctor worker shop`` registers them, so the
    worker serves (and resumes) the runs the script started."""
    (tmp_path / "shop.py").write_text(SCRIPT)

    def name(*command: str) -> str:
        done = subprocess.run(
            [sys.executable, *command],
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    as_script = name("shop.py")
    as_module = name("-m", "shop")
    imported = name("-c", "import shop")
    assert as_script == as_module == imported == "shop.total"
