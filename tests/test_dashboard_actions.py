"""O1: the run page's cancel and terminate write exactly what the CLI writes.

Both go through ``cli._requesting``, the code of ``proctor cancel`` and
``proctor terminate``; these tests compare the records each writes (event
rows without seq, ts and origin; the run's request columns) and the
sentences each says. The guards (CSRF token, Origin, Host) refuse before
anything is written.
"""

from __future__ import annotations

import time

import pytest

from actors import Runtime, get_context, start_child, step, workflow
from persistence import RunState, open_store
from tests.conftest import Target, run_cli, wait_until
from tests.dashboard_helpers import (
    BASE,
    comparable,
    csrf_of,
    dashboard,
    flash,
    followed,
    form_token,
    post,
    quote,
    request_fields,
    seed,
)

pytestmark = pytest.mark.timeout(60)


def _events(db: Target, run_id: str) -> list[object]:
    with open_store(db, readonly=True) as store:
        return comparable(store.events(run_id))


def _run(db: Target, run_id: str) -> tuple[object, ...]:
    with open_store(db, readonly=True) as store:
        return request_fields(store.get_run(run_id))


def _last_seq(db: Target) -> int:
    with open_store(db, readonly=True) as store:
        return store.last_seq()


def test_O1_cancel_button_writes_what_proctor_cancel_writes(db: Target) -> None:
    seed(db, "by-cli", "by-ui", args="same")
    said = run_cli(db, "cancel", "by-cli", "--reason", "stock ran out", "--grace", "5")
    assert said.exit_code == 0, said.output
    with dashboard(db) as client:
        answer = post(client, "by-ui", "cancel", reason="stock ran out", grace="5")
    assert answer.status_code == 200
    assert flash(answer.text) == [said.output.strip().replace("by-cli", "by-ui")]
    assert _events(db, "by-ui") == _events(db, "by-cli")
    assert _run(db, "by-ui") == _run(db, "by-cli")
    with open_store(db, readonly=True) as store:
        (request,) = [e for e in store.events("by-ui") if e.type.value == "cancel_requested"]
    assert request.data["source"] == "cli"
    assert request.data["origin"].startswith("ui-")
    assert 'data-status="CANCELLING"' in answer.text


def test_O1_a_repeated_cancel_says_what_the_cli_says(db: Target) -> None:
    seed(db, "again")
    run_cli(db, "cancel", "again")
    said = run_cli(db, "cancel", "again")
    with dashboard(db) as client:
        answer = post(client, "again", "cancel")
    assert flash(answer.text) == [said.output.strip()]


def test_O1_terminate_button_writes_what_proctor_terminate_writes(db: Target) -> None:
    seed(db, "t-cli", "t-ui", args="same")
    said = run_cli(db, "terminate", "t-cli", "--reason", "wedged")
    assert said.exit_code == 0, said.output
    with dashboard(db) as client:
        answer = post(client, "t-ui", "terminate", reason="wedged")
    assert answer.status_code == 200
    assert flash(answer.text) == [said.output.strip().replace("t-cli", "t-ui")]
    assert _events(db, "t-ui") == _events(db, "t-cli")
    assert _run(db, "t-ui") == _run(db, "t-cli")
    assert 'data-status="TERMINATED"' in answer.text
    assert 'id="terminate-button"' not in answer.text


@pytest.mark.parametrize("verb", ["cancel", "terminate"])
def test_O1_an_action_on_a_finished_run_shows_the_cli_message_and_writes_nothing(
    db: Target, verb: str
) -> None:
    seed(db, "done")
    run_cli(db, "terminate", "done")
    said = run_cli(db, verb, "done", "--reason", "late")
    assert said.exit_code == 4
    before = _last_seq(db)
    with dashboard(db) as client:
        page = client.get("/runs/done").text
        answer = client.post(
            f"/runs/done/{verb}",
            data={"csrf": form_token(client), "reason": "late"},
            headers={"Origin": BASE},
        )
    assert 'id="cancel-button"' not in page
    assert answer.status_code == 409
    assert flash(answer.text) == [said.output.strip().removeprefix("Error: ")]
    assert _last_seq(db) == before


def test_O1_an_action_on_an_unknown_run_is_404_with_the_cli_message(db: Target) -> None:
    seed(db, "other")
    said = run_cli(db, "cancel", "ghost")
    assert said.exit_code == 3
    with dashboard(db) as client:
        answer = client.post(
            "/runs/ghost/cancel", data={"csrf": form_token(client)}, headers={"Origin": BASE}
        )
    assert answer.status_code == 404
    assert "no run with id &#39;ghost&#39;" in answer.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"grace": "-1"}, "grace: '-1' is not a finite number of seconds >= 0"),
        ({"grace": "soon"}, "grace: 'soon' is not a number of seconds"),
        ({"grace": "nan"}, "grace: 'nan' is not a finite number of seconds >= 0"),
        ({"reason": "a\x00b"}, "NUL character"),
    ],
)
def test_O1_a_bad_grace_or_reason_is_400_and_writes_nothing(
    db: Target, fields: dict[str, str], message: str
) -> None:
    seed(db, "bad-input")
    before = _last_seq(db)
    with dashboard(db) as client:
        answer = post(client, "bad-input", "cancel", **fields)
    assert answer.status_code == 400
    (shown,) = flash(answer.text)
    assert message in shown
    assert _last_seq(db) == before
    assert _run(db, "bad-input")[0] is RunState.PENDING


def test_O1_a_post_without_the_forms_csrf_token_is_refused(db: Target) -> None:
    seed(db, "guarded")
    before = _last_seq(db)
    with dashboard(db) as client:
        missing = client.post("/runs/guarded/cancel", data={}, headers={"Origin": BASE})
        wrong = client.post(
            "/runs/guarded/terminate", data={"csrf": "forged"}, headers={"Origin": BASE}
        )
    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert "CSRF" in flash(wrong.text)[0]
    assert _last_seq(db) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
    ],
)
def test_O1_a_post_from_another_origin_is_refused(db: Target, headers: dict[str, str]) -> None:
    seed(db, "guarded")
    before = _last_seq(db)
    with dashboard(db) as client:
        token = csrf_of(client.get("/runs/guarded").text)
        answer = client.post("/runs/guarded/terminate", data={"csrf": token}, headers=headers)
        allowed = client.post(
            "/runs/guarded/terminate",
            data={"csrf": token},
            headers={"Referer": f"{BASE}/runs/guarded"},
        )
        shown = followed(client, allowed)
    assert answer.status_code == 403
    assert allowed.status_code == 303  # a Referer of the same origin is enough
    assert flash(shown.text) == ["run guarded terminated"]
    assert _last_seq(db) > before  # only the allowed one wrote


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "10.0.0.1", "0.0.0.0"])  # noqa: S104
def test_O1_without_a_token_a_host_that_is_not_loopback_is_refused(db: Target, host: str) -> None:
    """DNS rebinding: another site's name pointed at 127.0.0.1 (Jupyter refuses it too)."""
    seed(db, "guarded")
    before = _last_seq(db)
    with dashboard(db) as client:
        page = client.get("/", headers={"Host": host})
        token = csrf_of(client.get("/runs/guarded").text)
        action = client.post(
            "/runs/guarded/terminate",
            data={"csrf": token},
            headers={"Host": host, "Origin": f"http://{host}"},
        )
        for name in ["localhost:8765", "127.0.0.1", "[::1]:8765", "127.1.2.3"]:
            assert client.get("/", headers={"Host": name}).status_code == 200, name
    assert page.status_code == 403
    assert action.status_code == 403
    assert _last_seq(db) == before


@step()
def slow_charge(rounds: int) -> int:
    ctx = get_context()
    for i in range(rounds):
        ctx.heartbeat({"round": i})
        time.sleep(0.01)
    return rounds


@workflow()
async def charging(rounds: int) -> int:
    return await slow_charge(rounds)


@workflow()
async def with_a_child(rounds: int) -> int:
    child = await start_child(charging, rounds)
    return await child


def test_O1_cancel_with_wait_shows_how_the_run_ended(db: Target) -> None:
    with Runtime(db) as rt:
        handle = rt.start(charging, 3000, run_id="waited")
        wait_until(lambda: any(e.type.value == "step_started" for e in rt.events("waited")))
        with dashboard(db) as client:
            answer = post(client, "waited", "cancel", reason="enough", wait="1")
        assert handle.run_id == "waited"
    assert answer.status_code == 200
    assert flash(answer.text) == [
        "cancel requested: run waited is now cancelling",
        "run waited is cancelled",
    ]
    assert 'data-status="CANCELLED"' in answer.text


def test_O1_terminate_of_a_run_with_a_child_says_so_as_the_cli_does(db: Target) -> None:
    with Runtime(db) as rt:
        rt.start(with_a_child, 3000, run_id="family")
        wait_until(lambda: rt.list_runs(parent_run_id="family"))
        with dashboard(db) as client:
            answer = post(client, "family", "terminate", reason="stop all")
        (child,) = rt.list_runs(parent_run_id="family")
        wait_until(lambda: rt.get_run(child.run_id).status is RunState.TERMINATED)
    assert flash(answer.text) == ["run family terminated with 1 child run"]


def test_O1_a_form_that_is_not_utf8_is_400_and_writes_nothing(db: Target) -> None:
    seed(db, "raw")
    before = _last_seq(db)
    with dashboard(db) as client:
        body = f"csrf={form_token(client)}&reason=".encode() + b"\xff\xfe"
        answer = client.post(
            "/runs/raw/cancel",
            content=body,
            headers={"Origin": BASE, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 400
    assert _last_seq(db) == before


def test_O1_an_accepted_action_redirects_so_a_reload_never_sends_it_again(db: Target) -> None:
    """Post/Redirect/Get: the answer is a 303 to the run page, whose #flash
    shows the CLI's sentence once; reloading it writes nothing and shows no
    flash, and the flash of one run never shows on another's page."""
    seed(db, "prg/1?x", "other")
    with dashboard(db) as client:
        form = {"csrf": form_token(client), "reason": "once"}
        answer = client.post(
            f"/runs/{quote('prg/1?x')}/cancel", data=form, headers={"Origin": BASE}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/runs/{quote('prg/1?x')}"
        assert "HttpOnly" in answer.headers["set-cookie"]
        assert "SameSite=strict" in answer.headers["set-cookie"]
        elsewhere = client.get("/runs/other")
        first = client.get(answer.headers["location"])
        after = _last_seq(db)
        again = client.get(answer.headers["location"])
    assert 'id="flash"' not in elsewhere.text
    assert flash(first.text) == ["cancel requested: run prg/1?x is now cancelling"]
    assert 'id="flash"' not in again.text
    assert _last_seq(db) == after
    with open_store(db, readonly=True) as store:
        requests = [e for e in store.events("prg/1?x") if e.type.value == "cancel_requested"]
    assert len(requests) == 1
