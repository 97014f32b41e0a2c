"""The two kinds of message, and what every message is.

Every message is a frozen, slotted, keyword-only dataclass (``FROZEN``); a
:class:`ControlMessage` is delivered before every ordinary one by the
control-first mailbox (``actors._mailbox``), so a cancel or terminate is
never stuck behind a backlog.
"""

from __future__ import annotations

FROZEN = {"frozen": True, "slots": True, "kw_only": True}


class ControlMessage:
    """Marker: delivered before every ordinary message (control-first mailbox)."""

    __slots__ = ()
