"""Every actor message lives in ``actors._messages``, frozen, with immutable, typed fields.

pykka does not copy messages: a sender that mutates one after sending it
races the receiver. Frozen dataclasses whose containers are tuples or
read-only mappings make that hard to get wrong.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from types import MappingProxyType

import pytest

import actors
from actors import _messages
from actors._messages import ExitKind, ExitReason

MESSAGES = [
    cls
    for _, cls in inspect.getmembers(_messages, inspect.isclass)
    if cls.__module__.startswith(_messages.__name__) and dataclasses.is_dataclass(cls)
]
PACKAGE = Path(inspect.getfile(_messages)).parent
#: Fields whose type is left open, each with its reason (see the module's docstring).
OPEN_FIELDS = {("StartRun", "workflow")}
#: JSON values carried as decoded; the receiver copies before it changes them.
JSON_FIELDS = {("Raised", "error"), ("SignalArrived", "payload")}


def test_the_messages_that_lived_elsewhere_are_in_the_messages_module() -> None:
    names = {cls.__name__ for cls in MESSAGES}
    assert {"Forward", "ClaimTag", "GetWiring", "Wiring", "LeaseLost", "StoreLost"} <= names
    # ...and defined nowhere else among the actors' modules.
    for path in sorted(PACKAGE.parent.glob("_*.py")):
        text = path.read_text()
        for name in ("Forward", "_Claim", "ClaimTag", "GetWiring", "Wiring", "LeaseLost"):
            assert not re.search(rf"^class {name}\b", text, re.MULTILINE), (path.name, name)


def test_every_message_of_the_package_is_exported_from_it() -> None:
    """One place to import from: a class defined in a module of the package
    but missing from its ``__init__`` would be a message nobody finds."""
    defined = set()
    for path in PACKAGE.glob("_*.py"):
        if path.name != "__init__.py":
            defined |= set(re.findall(r"^class (\w+)", path.read_text(), re.MULTILINE))
    assert defined
    assert defined <= set(_messages.__all__), defined - set(_messages.__all__)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda c: c.__name__)
def test_a_message_is_a_frozen_dataclass_with_immutable_typed_fields(message: type) -> None:
    params = message.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen, f"{message.__name__} is not frozen"
    for field in dataclasses.fields(message):
        where = (message.__name__, field.name)
        annotation = str(field.type)
        if where not in JSON_FIELDS:
            assert not re.search(r"\b(dict|list|set)\[", annotation), (where, annotation)
        if where not in OPEN_FIELDS:
            # JSON values may be Any inside a container; a field itself, a
            # future's value or a delivered message may not.
            loose = (
                re.fullmatch(r"Any( \| None)?", annotation)
                or "Future[Any]" in annotation
                or "ActorRef[Any], Any]" in annotation
            )
            assert not loose, (where, annotation)


def test_an_exit_reason_keeps_a_read_only_copy_of_its_data() -> None:
    data = {"result": 1}
    reason = ExitReason(kind=ExitKind.NORMAL, data=data)
    data["result"] = 2  # the sender changes its own dict afterwards
    assert reason.data == {"result": 1}
    assert isinstance(reason.data, MappingProxyType)
    with pytest.raises(TypeError):
        reason.data["result"] = 3  # type: ignore[index]
    assert dict(reason.data or {}) == {"result": 1}  # how its reader copies it


def test_the_public_api_exports_no_message() -> None:
    assert not {cls.__name__ for cls in MESSAGES} & set(actors.__all__)
