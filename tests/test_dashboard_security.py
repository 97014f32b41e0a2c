"""O1: who may use the dashboard: loopback by default, a token otherwise, the extra named.

The token rules follow Jupyter's server: a bearer header or a cookie that
``?token=`` sets once (HttpOnly, SameSite=Strict), compared in constant time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from cli import _ui
from tests.conftest import Target, run_cli
from tests.dashboard_helpers import BASE, dashboard, form_token, quote, seed
from tests.processes import DEADLINE, ROOT

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token"  # noqa: S105
READS = [
    "/",
    "/?status=pending",
    "/live/runs",
    "/runs/guarded",
    "/live/runs/guarded",
    "/static/dashboard.js",
    "/static/dashboard.css",
    "/runs/nope",
]


def test_O1_with_a_token_every_route_needs_it(db: Target) -> None:
    seed(db, "guarded")
    with dashboard(db, token=TOKEN) as client:
        for url in READS:
            assert client.get(url).status_code == 401, url
            assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
            good = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
            assert good.status_code in {200, 404}, url
            client.cookies.set("proctor_ui_token", TOKEN)
            assert client.get(url).status_code in {200, 404}, url
            client.cookies.set("proctor_ui_token", "wrong")
            assert client.get(url).status_code == 401, url
            client.cookies.clear()
        refused = client.post(
            "/runs/guarded/terminate", data={"csrf": form_token(client)}, headers={"Origin": BASE}
        )
        assert refused.status_code == 401
        allowed = client.post(
            "/runs/guarded/terminate",
            data={"csrf": form_token(client)},
            headers={"Origin": BASE, "Authorization": f"Bearer {TOKEN}"},
        )
        assert allowed.status_code == 303  # accepted: to the run page (Post/Redirect/Get)
        assert "401" in client.get("/").text
        # a refusal links an empty icon: a browser then asks for no /favicon.ico,
        # which the token would refuse again (a console error in the browser tests)
        assert '<link rel="icon" href="data:,">' in client.get("/").text
        assert TOKEN not in client.get("/").text


def test_O1_token_in_the_url_sets_the_cookie_and_redirects_without_it(db: Target) -> None:
    seed(db, "guarded")
    with dashboard(db, token=TOKEN) as client:
        answer = client.get(f"/runs/guarded?token={TOKEN}&x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/runs/guarded?x=1"
        cookie = answer.headers["set-cookie"]
        assert f"proctor_ui_token={TOKEN}" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert client.get("/runs/guarded").status_code == 200  # the cookie now
        client.cookies.clear()
        assert client.get("/?token=wrong").status_code == 401
        odd = client.get(f"/runs/{quote('customer/42 ?#%')}?token={TOKEN}")
        assert odd.headers["location"] == f"/runs/{quote('customer/42 ?#%')}"
        # never to another site: "//evil.example/" is a network-path reference
        raw = f"//evil.example/?token={TOKEN}".encode()
        away = client.get(httpx.URL(BASE).copy_with(raw_path=raw))
        assert away.headers["location"] == "/evil.example/"


@pytest.mark.parametrize("token", [None, TOKEN])
def test_O1_no_answer_may_be_framed_by_another_site(db: Target, token: str | None) -> None:
    """Clickjacking (found by a tester): another site framed the loopback
    dashboard invisibly and had the user click terminate; the frame's POST
    carried the dashboard's own Origin. Every answer now forbids framing."""
    seed(db, "framed")
    auth = {} if token is None else {"Authorization": f"Bearer {token}"}
    with dashboard(db, token=token) as client:
        answers = [
            client.get("/", headers=auth),
            client.get("/runs/framed", headers=auth),
            client.get("/live/runs", headers=auth),
            client.get("/static/dashboard.js", headers=auth),
            client.get("/runs/nope", headers=auth),  # a 404
            client.post("/runs/framed/cancel", data={}, headers=auth),  # a refusal
        ]
    for answer in answers:
        assert answer.headers["x-frame-options"] == "DENY", answer.url
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_O1_with_a_token_other_host_names_are_served(db: Target) -> None:
    """The token is the guard then (a --host that is not loopback needs one)."""
    seed(db, "guarded")
    with dashboard(db, token=TOKEN) as client:
        answer = client.get(
            "/", headers={"Host": "dash.example:8765", "Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])  # noqa: S104
def test_O1_proctor_ui_refuses_a_host_that_is_not_loopback_without_a_token(
    db: Target, host: str
) -> None:
    seed(db, "x")
    result = run_cli(db, "ui", "--host", host, "--port", "0")
    assert result.exit_code == 2, result.output
    assert "is not loopback" in result.output
    assert "--token" in result.output
    assert "serving" not in result.output


def test_O1_proctor_ui_refuses_an_empty_token(db: Target) -> None:
    seed(db, "x")
    result = run_cli(db, "ui", "--token", " ", "--port", "0")
    assert result.exit_code == 2
    assert "--token" in result.output


def test_O1_proctor_ui_on_a_missing_store_says_so_before_serving(tmp_path: Any) -> None:
    result = run_cli(tmp_path / "nothing.db", "ui", "--port", "0")
    assert result.exit_code == 1
    assert "no Proctor store at" in result.output
    assert not (tmp_path / "nothing.db").exists()


#: ``proctor`` with the ui extra's packages made unimportable (``sys.modules[name] = None``).
_WITHOUT_UI = (
    "import sys\n"
    "for name in ('starlette', 'uvicorn', 'jinja2'):\n"
    "    sys.modules[name] = None\n"
    "from cli import _ui, main\n"
    "assert _ui.dashboard_hint('x.db') is None and not _ui.ui_available()\n"
    "sys.argv = ['proctor', *sys.argv[1:]]\n"
    "main()\n"
)


@pytest.mark.timeout(120)
def test_O1_without_the_ui_extra_proctor_ui_names_the_pip_command(db: Target) -> None:
    seed(db, "x")
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_UI, "--db", os.fspath(db), "ui", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "pip install 'proctor[ui]'" in result.stderr
    assert "starlette" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_O1_the_demo_hint_names_the_store_when_the_extra_is_installed() -> None:
    assert (
        _ui.dashboard_hint("my store.db")
        == "see it in the dashboard: proctor --db 'my store.db' ui"
    )
