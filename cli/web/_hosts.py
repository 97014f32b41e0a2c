"""Which host names are loopback: the rule for binding without a token and for ``Host`` headers.

Pure functions, no web stack imported, so ``proctor ui`` checks ``--host``
with the very rule the dashboard applies to each request's ``Host`` header.
Loopback: ``localhost``, ``127.0.0.0/8`` and ``::1`` (IPv6 with or without
brackets); nothing else, not even a name that resolves to 127.0.0.1 (that
is the DNS rebinding the check exists for).
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) is loopback."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header: ``[::1]:8765`` -> ``[::1]``, ``a:80`` -> ``a``."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
