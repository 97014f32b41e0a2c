"""Many hosts on one PostgreSQL store (P2, P3): three "hosts" as network namespaces.

Each host is a network namespace with a hostname of its own, linked by a
veth pair to a bridge on the database host, where a throw-away PostgreSQL
server listens on the bridge address (``tests.netns``,
``tests.netns_server``). A worker runs on each host; the test process
reads the store through the server's Unix socket.

These tests need root (``ip netns add``); elsewhere they are skipped, saying
why, except under CI (the environment variable ``CI`` set), where that is a
failure: CI must run them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.netns import NamespacesUnavailable, Network
from tests.netns_server import Server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    try:
        net = Network.create()
    except NamespacesUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the multi-host tests: {exc}")
        pytest.skip(f"multi-host tests need network namespaces: {exc}")
    try:
        yield net
    finally:
        net.close()


@pytest.fixture(scope="module")
def server(network: Network) -> Iterator[Server]:
    srv = Server(network)
    try:
        yield srv
    finally:
        srv.stop()


def connect(network: Network, host: str, url: str) -> tuple[bool, str, float]:
    """Connect from ``host`` and ask the server who we are: (worked, answer
    or error, seconds it took)."""
    start = time.monotonic()
    done = network.run(
        host, ["psql", "-X", "-A", "-t", url, "-c", "SELECT inet_client_addr()"], timeout=30
    )
    took = time.monotonic() - start
    if done.returncode == 0:
        return True, done.stdout.strip(), took
    return False, done.stderr.strip(), took


def test_P2_every_host_reaches_the_database_and_a_cut_link_isolates_only_its_host(
    network: Network, server: Server
) -> None:
    database = server.database()
    url = server.tcp_url(database, connect_timeout="2")
    for host in network.hosts:
        assert connect(network, host, url)[:2] == (True, network.address(host))
        assert network.run(host, ["hostname"], timeout=30).stdout.strip() == network.hostname(host)

    network.cut("h2")
    try:
        assert not network.linked("h2")
        worked, error, took = connect(network, "h2", url)
        assert not worked
        assert "timeout expired" in error  # the packets vanish: no refusal, a timeout
        assert 1.5 < took < 15
        for host in ("h1", "h3"):
            assert connect(network, host, url)[:2] == (True, network.address(host))
    finally:
        network.restore("h2")
    assert network.linked("h2")
    deadline = time.monotonic() + 10  # the host's ARP entry for the bridge may need renewing
    while not (reached := connect(network, "h2", url))[0] and time.monotonic() < deadline:
        pass
    assert reached[:2] == (True, network.address("h2"))
