"""pykka's private names Proctor relies on (``actors._pykka``) are still there.

If a pykka release renames or changes one, these fail and say which, instead
of Proctor failing in some actor's thread. Each check is of the shape Proctor
uses: a signature, an attribute, and the call pykka makes of the hook.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pathlib
import threading
from typing import Any

import pykka
import pykka._envelope
import pytest

from actors import _pykka
from actors._pykka import PYKKA_CHECKED, Envelope, PykkaHooks


def test_pykka_is_the_version_the_private_names_were_checked_against() -> None:
    installed = importlib.metadata.version("pykka")
    assert installed.split(".")[0] == PYKKA_CHECKED.split(".")[0], (
        f"pykka {installed} is installed; actors/_pykka.py was checked against"
        f" {PYKKA_CHECKED}: check each private name again, then update PYKKA_CHECKED"
    )


def test_envelope_has_message_and_reply_to() -> None:
    assert Envelope is pykka._envelope.Envelope
    params = list(inspect.signature(Envelope).parameters)
    assert params == ["message", "reply_to"], params
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    envelope = Envelope("hello", reply_to=future)
    assert (envelope.message, envelope.reply_to) == ("hello", future)
    assert Envelope("hello").reply_to is None


@pytest.mark.parametrize(
    ("owner", "name", "params"),
    [
        (pykka.Actor, "_create_actor_inbox", []),
        (pykka.ThreadingActor, "_create_actor_inbox", []),
        (pykka.ThreadingActor, "_start_actor_loop", ["self"]),
        (pykka.Actor, "_actor_loop", ["self"]),
    ],
)
def test_the_private_hooks_exist_with_the_signature_proctor_overrides(
    owner: type, name: str, params: list[str]
) -> None:
    hook = inspect.getattr_static(owner, name, None)
    assert hook is not None, f"pykka.{owner.__name__}.{name} is gone"
    function = hook.__func__ if isinstance(hook, staticmethod) else hook
    assert list(inspect.signature(function).parameters) == params


def test_pykka_calls_the_hooks_when_an_actor_is_built_and_started() -> None:
    """Actor.__init__ makes the inbox through the hook; Actor.start starts the
    loop through the other; the loop takes envelopes from that inbox."""
    calls: list[str] = []
    answered = threading.Event()

    class Probe(PykkaHooks):
        def new_inbox(self) -> Any:
            calls.append("new_inbox")
            return super().new_inbox()

        def start_loop(self) -> None:
            calls.append("start_loop")
            super().start_loop()

        def on_receive(self, message: Any) -> Any:
            answered.set()
            return message

    ref = Probe.start()
    try:
        assert ref.ask("ping", timeout=10) == "ping"
        assert answered.is_set()
        assert calls == ["new_inbox", "start_loop"]
    finally:
        ref.stop(timeout=10)


def test_run_loop_runs_the_loop_on_the_calling_thread() -> None:
    class Probe(PykkaHooks):
        def start_loop(self) -> None:
            threading.Thread(target=self.run_loop, name="probe-loop", daemon=True).start()

        def on_receive(self, message: Any) -> Any:
            return threading.current_thread().name

    ref = Probe.start()
    try:
        assert ref.ask("where", timeout=10) == "probe-loop"
    finally:
        ref.stop(timeout=10)


def test_no_other_module_names_a_pykka_private() -> None:
    root = pathlib.Path(_pykka.__file__).parent
    private = ("pykka._", "_create_actor_inbox", "_start_actor_loop", "_actor_loop")
    offenders = [
        f"{path.name}: {name}"
        for path in sorted(root.glob("*.py"))
        if path.name != "_pykka.py"
        for name in private
        if name in path.read_text()
    ]
    assert offenders == []
