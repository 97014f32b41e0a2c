"""Three "hosts" as network namespaces around a database host: the multi-host harness.

One :class:`Network` per test module (issue 18, P2/P3)::

    proctor-db-TAG (the database host)         proctor-hN-TAG (N = 1..3)
    br0   10.231.0.1/24 ── hN (veth) ─────────── eth0  10.231.0.1N/24

The bridge and the database host live in a namespace of their own, so
nothing in the root namespace changes: no address, route or interface name
can collide with the machine's or with another session's, and every
interface name is fixed (``br0``, ``hN``, ``eth0``) because each namespace
has names of its own. A process enters a namespace through ``ip netns
exec``, which execs (the child's pid is the command's own), and a host's
processes also get a hostname of their own (``unshare --uts``): to Proctor
they are on another machine, so it can never judge a runtime of another
host dead by its pid (``persistence._leases``), only by its lease.

Invariants:

- Every namespace carries ``TAG`` = ``<pid>-<random>`` of the process that
  made it: :meth:`Network.create` removes the leftovers of dead sessions
  (killing what still runs in them) and never touches a live session's.
- :meth:`Network.close` kills every process still inside the namespaces,
  then deletes them (their interfaces and the bridge go with them); it runs
  whatever happened before, and twice is harmless.
- A cut link (:meth:`Network.cut`) carries no packet between one host and
  the others, either way, until :meth:`Network.restore`. Cut on the bridge's
  side (the default) the host still sees its own link up, so its open
  connections hang (TCP retransmits) and new ones time out, as across a
  real partition; cut on the host's side its sends fail at once (no route).
- Only the ``ip`` commands above change anything; the root namespace's
  interfaces, addresses and routes are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

#: The database host's address on the bridge, and the subnet of the hosts.
DB_ADDRESS: Final = "10.231.0.1"
SUBNET: Final = "10.231.0.0/24"
_PREFIX: Final = "proctor-"
_NAME: Final = re.compile(r"^proctor-(?:db|h\d+)-(\d+)-[0-9a-f]+$")
#: Seconds any one ``ip`` command may take.
_IP_TIMEOUT: Final = 10.0


class NamespacesUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no ``ip``, no kernel support)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        raise NamespacesUnavailable("the `ip` command (iproute2) is not installed") from exc
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["ip", *args], done.stdout, done.stderr
        )
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces() -> list[str]:
    """The names of every network namespace on the machine."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    """The processes inside namespace ``name`` (none once it is gone)."""
    out = _ip("netns", "pids", name, check=False).stdout
    return [int(word) for word in out.split() if word.isdigit()]


def _kill_all_in(name: str) -> None:
    """SIGKILL every process in namespace ``name`` until none is left."""
    deadline = time.monotonic() + _IP_TIMEOUT
    while pids := namespace_pids(name):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in namespace {name} survive SIGKILL")
        time.sleep(0.01)  # they die asynchronously; `ip netns pids` lists them until then


def remove_leftovers() -> list[str]:
    """Delete this harness's namespaces whose creating process is gone; their names."""
    removed = []
    for name in namespaces():
        match = _NAME.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        _kill_all_in(name)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


def check_available() -> None:
    """Raise :class:`NamespacesUnavailable`, saying why, unless namespaces can be made."""
    if os.geteuid() != 0:
        raise NamespacesUnavailable("making network namespaces (ip netns add) needs root")
    probe = f"{_PREFIX}probe-{os.getpid()}-{secrets.token_hex(2)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        raise NamespacesUnavailable(f"`ip netns add` failed: {made.stderr.strip()}")
    _ip("netns", "del", probe, check=False)


@dataclass
class Network:
    """The database host and its hosts, on one bridge; see the module docstring.

    Hosts are named ``"h1"``, ``"h2"``, ...; the database host is ``"db"``.
    """

    tag: str
    hosts: tuple[str, ...]
    _made: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, hosts: int = 3) -> Network:
        """Make the namespaces, the bridge and one veth pair per host.

        Raises:
            NamespacesUnavailable: not root, or the kernel refuses namespaces.
            subprocess.CalledProcessError: an ``ip`` command failed midway
                (what was made is removed first).
        """
        check_available()
        remove_leftovers()
        net = cls(f"{os.getpid()}-{secrets.token_hex(3)}", tuple(f"h{n + 1}" for n in range(hosts)))
        try:
            net._build()
        except BaseException:
            net.close()
            raise
        return net

    def namespace(self, host: str) -> str:
        """The namespace of ``host`` (``"db"`` or ``"hN"``)."""
        if host != "db" and host not in self.hosts:
            raise ValueError(f"no host {host!r} (hosts: db, {', '.join(self.hosts)})")
        return f"{_PREFIX}{host}-{self.tag}"

    def address(self, host: str) -> str:
        """``host``'s IPv4 address on the bridge."""
        self.namespace(host)
        return DB_ADDRESS if host == "db" else f"10.231.0.1{host[1:]}"

    def hostname(self, host: str) -> str:
        """The hostname the processes of ``host`` see."""
        return f"{host}-{self.tag}"

    def _build(self) -> None:
        db = self.namespace("db")
        _ip("netns", "add", db)
        self._made.append(db)
        _ip("-n", db, "link", "set", "lo", "up")
        _ip("-n", db, "link", "add", "br0", "type", "bridge")
        _ip("-n", db, "addr", "add", f"{DB_ADDRESS}/24", "dev", "br0")
        _ip("-n", db, "link", "set", "br0", "up")
        for host in self.hosts:
            ns = self.namespace(host)
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Both ends are made inside the db namespace, then one moves out.
            _ip("-n", db, "link", "add", host, "type", "veth", "peer", "name", "eth0")
            _ip("-n", db, "link", "set", "eth0", "netns", ns)
            _ip("-n", db, "link", "set", host, "master", "br0")
            _ip("-n", db, "link", "set", host, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    # -- processes ------------------------------------------------------------

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace (with its own hostname,
        except on the database host, where it is run as is)."""
        enter = ["ip", "netns", "exec", self.namespace(host)]
        if host == "db":
            return [*enter, *argv]
        rename = 'hostname "$0" && exec "$@"'
        return [*enter, "unshare", "--uts", "sh", "-c", rename, self.hostname(host), *argv]

    def popen(self, host: str, argv: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` on ``host`` (``subprocess.Popen`` options pass through);
        the Popen's pid is the command's own (every wrapper execs)."""
        return subprocess.Popen(self.command(host, argv), **options)

    def run(
        self, host: str, argv: Sequence[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``host`` to completion, its output captured as text."""
        return subprocess.run(
            self.command(host, argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def pids(self, host: str) -> list[int]:
        """Every process on ``host`` now."""
        return namespace_pids(self.namespace(host))

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL every process on ``host`` (as a machine losing power); their pids.

        The caller still reaps the ones it started (``Popen.wait``)."""
        pids = self.pids(host)
        _kill_all_in(self.namespace(host))
        return pids

    # -- links ----------------------------------------------------------------

    def cut(self, host: str, side: Literal["bridge", "host"] = "bridge") -> None:
        """Cut ``host`` off: its veth end on the bridge (``"bridge"``, the host
        still thinks it is linked) or in the host (``"host"``) goes down."""
        if side == "bridge":
            _ip("-n", self.namespace("db"), "link", "set", host, "down")
        else:
            _ip("-n", self.namespace(host), "link", "set", "eth0", "down")

    def restore(self, host: str) -> None:
        """Link ``host`` again (both ends up)."""
        _ip("-n", self.namespace(host), "link", "set", "eth0", "up")
        _ip("-n", self.namespace("db"), "link", "set", host, "up")

    def linked(self, host: str) -> bool:
        """Whether both ends of ``host``'s link are up (administratively)."""
        ends = (
            _ip("-n", self.namespace("db"), "-o", "link", "show", host).stdout,
            _ip("-n", self.namespace(host), "-o", "link", "show", "eth0").stdout,
        )
        return all("UP" in end.split("<", 1)[1].split(">", 1)[0].split(",") for end in ends)

    # -- the end ----------------------------------------------------------------

    def close(self) -> None:
        """Kill everything inside the namespaces, then delete them."""
        errors = []
        for name in reversed(self._made):
            try:
                _kill_all_in(name)
            except RuntimeError as exc:
                errors.append(str(exc))
            done = _ip("netns", "del", name, check=False)
            if done.returncode != 0 and name in namespaces():
                errors.append(f"ip netns del {name}: {done.stderr.strip()}")
        self._made.clear()
        if errors:
            raise RuntimeError("; ".join(errors))
