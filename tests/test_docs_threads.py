"""The docs never claim that a waiting run holds no thread.

Every hosted run keeps its supervisor's pooled thread (idle, blocked on its
mailbox) for as long as it is hosted: a sleep, a signal wait or a timeout
adds no thread (its timer is on the one Timers actor) but does not give the
run's thread back. A sentence saying otherwise misleads capacity planning.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Claims that a waiting run costs no thread at all.
FALSE_CLAIMS = re.compile(
    r"cost no thread|without holding a thread|holds? no thread|no thread per (run|step)",
    re.IGNORECASE,
)


def test_no_doc_says_a_waiting_run_holds_no_thread() -> None:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = " ".join(page.read_text(encoding="utf-8").split())
        found += [f"{page.name}: {m.group(0)}" for m in FALSE_CLAIMS.finditer(text)]
    assert found == []


def test_the_sleep_guide_says_what_a_sleeping_run_costs() -> None:
    text = " ".join((DOCS / "guides" / "durable-sleep.md").read_text(encoding="utf-8").split())
    assert "supervisor keeps its one pooled thread" in text
