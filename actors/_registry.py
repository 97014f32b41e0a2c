"""Names: the name a run records for its workflow, and one definition per name.

A run records only its workflow's name; any runtime resumes it with
whatever its process registered under that name. Invariant: a name belongs
to one definition per process (its source file and qualified name); the
same definition registered again replaces the entry, a different one is
refused, so two workflows never share one's runs.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from persistence import InvalidArgument


class Named(Protocol):
    """What the registry keeps: a definition's name and its function."""

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> Callable[..., Any]: ...


D = TypeVar("D", bound=Named)


class Registry(Generic[D]):
    """Definitions by name, thread-safe (modules may be imported from any thread)."""

    def __init__(self) -> None:
        self._by_name: dict[str, D] = {}
        self._lock = threading.Lock()

    def register(self, item: D) -> None:
        """Add ``item`` by name; refuse a different definition under a taken name.

        Identity is the definition's place: the source file (resolved) and the
        function's qualified name, not the function object. So the same
        definition registered again (its module reloaded, or run as ``__main__``
        and imported by name) replaces the entry, and the newest code serves the
        name; two functions of the same name in different files, or under
        different names in one file, conflict.

        Raises:
            InvalidArgument: ``item.name`` is taken by a definition elsewhere.
        """
        with self._lock:
            known = self._by_name.get(item.name)
            if known is not None and _definition(known.fn) != _definition(item.fn):
                raise InvalidArgument(
                    f"two workflows are named {item.name!r}: {_where(known.fn)} and"
                    f" {_where(item.fn)}; a run records only its workflow's name, so give"
                    " one another name (@workflow(name=...))"
                )
            self._by_name[item.name] = item

    def get(self, name: str) -> D | None:
        with self._lock:
            return self._by_name.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._by_name)


def name_of(fn: Callable[..., Any], name: str | None) -> str:
    """The name a run records: ``name``, or ``module.qualname``.

    A function defined in a script run as ``python shop.py`` (module
    ``__main__``) is named after the module it would be imported as
    (``shop``), so that ``proctor worker shop`` serves, and resumes, the runs
    that the script started. Under ``python -m shop.flows`` that is its
    spec's name.
    """
    return name or f"{_module_name(fn)}.{fn.__qualname__}"


def _module_name(fn: Callable[..., Any]) -> str:
    module = fn.__module__
    if module != "__main__":
        return module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)
    path = getattr(main, "__file__", None)
    return os.path.splitext(os.path.basename(path))[0] if path else module


def _definition(fn: Callable[..., Any]) -> tuple[str, str]:
    """Where ``fn`` is defined: (its resolved source file, its qualified name)."""
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    path = os.path.realpath(code.co_filename) if code is not None else fn.__module__
    return path, fn.__qualname__


def _where(fn: Callable[..., Any]) -> str:
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    place = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else fn.__module__
    return f"{fn.__qualname__} ({place})"
