"""Sign-in for the web UI, against fake Slack (OpenID Connect) and Discord (OAuth2) servers on loopback.

The app is the real one (bots.web.create_app); a browser is Flask's test client, and the
provider's approval page is fetched over HTTP as a browser would follow the redirect to it.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

import bots.cli_slack
import bots.web
from bots.cli import main
from core.tenancy.apikeys import ApiKeys
from core.tenancy.collections import get_collection, map_workspace
from core.tenancy.web_sessions import hash_token
from tests.builders import write_docs
from tests.fakes.signin_servers import FakeDiscordOAuth, FakeSlackSignIn
from tests.web.conftest import COLLECTION

TEAM, OTHER_TEAM, GUILD, OTHER_GUILD = "T0TEAM", "T0OTHER", "81234567890123456", "89999999999999999"
SECRET_COLLECTION = "finance"
SECRET_DOCS = {"payroll.md": "# Payroll\n\n## Salary bands\n\nThe salary bands are reviewed every March by the board.\n"}


@pytest.fixture
def slack() -> Iterator[FakeSlackSignIn]:
    with FakeSlackSignIn(client_id="slack-client", client_secret="slack-secret") as fake:
        yield fake


@pytest.fixture
def discord() -> Iterator[FakeDiscordOAuth]:
    with FakeDiscordOAuth(client_id="discord-client", client_secret="discord-secret") as fake:
        yield fake


@pytest.fixture
def make_app(make_container, docs_folder, tmp_path, slack, discord) -> Iterator[Callable[..., Flask]]:
    """The web process with both sign-in providers, two collections: ``docs`` for TEAM and GUILD,
    ``finance`` for OTHER_GUILD (ingested without a web address, so the playground serves its pages)."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        settings = dict(
            default_collection="unused", web_listen="127.0.0.1:8000",
            signin_slack_client_id=slack.client_id, signin_slack_client_secret=slack.client_secret,
            slack_api_url=slack.api_url,
            signin_discord_client_id=discord.client_id, signin_discord_client_secret=discord.client_secret,
            discord_api_base_url=discord.api_url,
        )
        container = make_container(**{**settings, **overrides})
        container.ingestor.ingest([str(docs_folder)], collection=COLLECTION)
        container.ingestor.ingest([str(write_docs(tmp_path / "finance", SECRET_DOCS))], collection=SECRET_COLLECTION)
        with container.database.sessions.begin() as session:
            map_workspace(session, "slack", TEAM, get_collection(session, COLLECTION))
            map_workspace(session, "discord", GUILD, get_collection(session, COLLECTION))
            map_workspace(session, "discord", OTHER_GUILD, get_collection(session, SECRET_COLLECTION))
        app = bots.web.create_app(container=container, start_worker=False)
        apps.append(app)
        return app

    yield make
    for app in apps:
        bots.web.shutdown(app)


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


def sign_in(client: FlaskClient, provider: str, next_path: str = "/"):
    """Click "Sign in with ...", let the provider approve, and come back: the callback's response."""
    start = client.get(f"/signin/{provider}", query_string={"next": next_path})
    assert start.status_code == 302
    approved = httpx.get(start.headers["Location"], follow_redirects=False)
    assert approved.status_code == 302
    back = urlsplit(approved.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def signout_token(html: str) -> str:
    match = re.search(r'action="/signout">.*?name="csrf_token" value="([^"]+)"', html, re.S)
    assert match, "a signed-in page has a sign-out form"
    return match.group(1)


def playground_token(html: str) -> str:
    match = re.search(r'action="/ask">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def session_rows(app: Flask) -> list[dict]:
    with bots.web.runtime_of(app).container.database.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM web_sessions"))]


def test_a_signed_in_slack_member_uses_the_playground_of_their_workspace(app, slack):
    client = app.test_client()
    closed = client.get("/")
    assert closed.status_code == 303 and closed.headers["Location"] == "/signin?next=%2F"
    assert "Sign in with Slack" in client.get("/signin?next=/").get_data(as_text=True)

    slack.sign_in_as(team=TEAM, user="U0ADA", name="Ada Lovelace")
    back = sign_in(client, "slack")
    assert back.status_code == 303 and back.headers["Location"] == "/"
    cookie = next(c for c in back.headers.getlist("Set-Cookie") if c.startswith("docrag_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # loopback, plain HTTP

    page = client.get("/").get_data(as_text=True)
    assert "Signed in as Ada Lovelace" in page
    asked = client.post("/ask", data={"question": "how do I rotate my API key?", "csrf_token": playground_token(page)})
    assert asked.status_code == 303
    page = client.get("/").get_data(as_text=True)
    assert "click Rotate" in page and "Answering from <strong>docs</strong>" in page

    token = cookie.split(";")[0].partition("=")[2]
    [row] = session_rows(app)
    assert row["token_hash"] == hash_token(token) and token not in str(row)  # stored hashed only
    assert (row["provider"], row["user_id"], row["workspaces"]) == ("slack", "U0ADA", [TEAM])


def test_a_forged_or_replayed_state_is_refused(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    browser = app.test_client()
    start = browser.get("/signin/slack")
    approved = urlsplit(httpx.get(start.headers["Location"], follow_redirects=False).headers["Location"])
    code = parse_qs(approved.query)["code"][0]

    forged = browser.get("/signin/slack/callback", query_string={"code": code, "state": "forged-state-value"})
    assert forged.status_code == 400 and "did not start here" in forged.get_data(as_text=True)

    # The genuine callback delivered to another browser (login CSRF): that browser never started it.
    elsewhere = app.test_client().get(f"{approved.path}?{approved.query}")
    assert elsewhere.status_code == 400
    assert session_rows(app) == []

    assert browser.get(f"{approved.path}?{approved.query}").status_code == 303  # the real one works once
    replayed = browser.get(f"{approved.path}?{approved.query}")
    assert replayed.status_code == 400 and len(session_rows(app)) == 1


def test_a_member_of_another_workspace_is_refused(app, slack, discord):
    slack.sign_in_as(team=OTHER_TEAM, user="U0EVE")
    client = app.test_client()
    refused = sign_in(client, "slack")
    assert refused.status_code == 403 and "no access" in refused.get_data(as_text=True)
    discord.sign_in_as(user="555", guilds=("11111111111111111",))
    assert sign_in(client, "discord").status_code == 403
    assert session_rows(app) == [] and client.get("/").status_code == 303


def test_discord_members_see_the_collections_of_their_known_servers_only(app, discord):
    discord.sign_in_as(user="7001", guilds=(GUILD, "11111111111111111"), name="grace")
    client = app.test_client()
    assert sign_in(client, "discord", next_path="/?from=chat").headers["Location"] == "/?from=chat"
    [row] = session_rows(app)
    assert row["workspaces"] == [GUILD]  # the unknown server grants nothing
    assert "Signed in as Grace" in client.get("/").get_data(as_text=True)


def test_a_viewer_cannot_read_another_workspaces_collection(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    sign_in(client, "slack")
    assert client.get("/docs/docs/keys.md").status_code == 200
    other = client.get(f"/docs/{SECRET_COLLECTION}/payroll.md")
    assert other.status_code == 404 and "salary" not in other.get_data(as_text=True).lower()

    page = client.get("/").get_data(as_text=True)
    client.post("/ask", data={"question": "when are the salary bands reviewed?", "csrf_token": playground_token(page)})
    assert "March" not in client.get("/").get_data(as_text=True)


def test_an_expired_session_signs_the_viewer_out(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    sign_in(client, "slack")
    page = client.get("/").get_data(as_text=True)
    with bots.web.runtime_of(app).container.database.engine.begin() as conn:
        conn.execute(sa.text("UPDATE web_sessions SET expires_at = now() - interval '1 second'"))
    assert client.get("/").status_code == 303
    late = client.post("/ask", data={"question": "how do I rotate my API key?", "csrf_token": playground_token(page)})
    assert late.status_code == 401 and "Sign in first" in late.get_data(as_text=True)
    sign_in(app.test_client(), "slack")  # someone else signs in: expired rows are swept
    assert [row["user_id"] for row in session_rows(app)] == ["U0ADA"] and len(session_rows(app)) == 1


def test_sign_out_needs_the_sessions_csrf_token_and_ends_the_session(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    cookie = sign_in(client, "slack").headers.getlist("Set-Cookie")
    token = next(c for c in cookie if c.startswith("docrag_session=")).split(";")[0].partition("=")[2]
    page = client.get("/").get_data(as_text=True)
    csrf = signout_token(page)

    assert client.post("/signout", data={}).status_code == 403
    assert client.post("/signout", data={"csrf_token": playground_token(page)}).status_code == 403
    cross_site = client.post("/signout", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert client.post("/ask", data={"question": "hi"}).status_code == 403  # the playground's own CSRF check
    assert len(session_rows(app)) == 1 and client.get("/").status_code == 200

    out = client.post("/signout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["Location"] == "/signin"
    assert session_rows(app) == []
    replay = app.test_client()
    replay.set_cookie("docrag_session", token)
    assert replay.get("/").status_code == 303  # the old cookie opens nothing any more


def test_cookies_are_secure_beyond_loopback(make_app, slack):
    app = make_app(web_listen="0.0.0.0:8000")
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "docrag.example"})
    start = client.get("/signin/slack")
    assert all("Secure" in c for c in start.headers.getlist("Set-Cookie"))
    back = sign_in(client, "slack")
    assert back.status_code == 303
    assert all("Secure" in c for c in back.headers.getlist("Set-Cookie") if c.startswith("docrag_session="))
    assert client.get("/").status_code == 200


def test_the_rest_api_still_wants_its_api_key(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    sign_in(client, "slack")
    assert client.post("/api/v1/ask", json={"question": "how do I rotate my API key?"}).status_code == 401
    key = ApiKeys(bots.web.runtime_of(app).container.database.sessions).create([COLLECTION]).key
    anonymous = app.test_client()
    answer = anonymous.post("/api/v1/ask", json={"question": "how do I rotate my API key?"},
                            headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200


def test_the_playground_is_public_only_on_loopback_without_sign_in(make_container, docs_folder):
    def app_for(**overrides: object) -> Flask:
        container = make_container(default_collection=COLLECTION, **overrides)
        return bots.web.create_app(container=container, start_worker=False)

    fresh_machine = app_for(web_listen="127.0.0.1:8000")  # what `make run` serves
    on_a_network = app_for(web_listen="0.0.0.0:8000")  # PORT set, or --host 0.0.0.0
    behind_a_proxy = app_for(web_listen="127.0.0.1:8000", trusted_proxies=1)
    on_purpose = app_for(web_listen="0.0.0.0:8000", playground_public=True)
    try:
        assert fresh_machine.test_client().get("/").status_code == 200
        assert on_purpose.test_client().get("/").status_code == 200
        assert fresh_machine.test_client().get("/sources").status_code == 200
        for app in (on_a_network, behind_a_proxy):
            assert app.test_client().get("/").status_code == 303
            assert app.test_client().get("/sources").status_code == 303  # the sources page admits the same people
            assert "no way to sign in is configured" in app.test_client().get("/signin").get_data(as_text=True)
    finally:
        for app in (fresh_machine, on_a_network, behind_a_proxy, on_purpose):
            bots.web.shutdown(app)


def test_serve_warns_when_a_public_playground_listens_beyond_loopback(database_url, monkeypatch):
    monkeypatch.setattr(bots.cli_slack, "run_gunicorn", lambda **kwargs: None)  # DocRag's own launcher, not gunicorn
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "DOCRAG_PLAYGROUND_PUBLIC": "true"}
    exposed = runner.invoke(main, ["serve", "--host", "0.0.0.0"], env=env)
    assert exposed.exit_code == 0 and "anyone who can reach it can read your documentation" in exposed.stderr
    local = runner.invoke(main, ["serve", "--host", "127.0.0.1"], env=env)
    assert local.exit_code == 0 and "Warning" not in local.stderr and "Playground: public" in local.stdout


def test_a_cancelled_sign_in_and_a_foreign_return_address_lead_nowhere(app, slack):
    slack.sign_in_as(team=TEAM, user="U0ADA")
    client = app.test_client()
    start = client.get("/signin/slack")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    cancelled = client.get("/signin/slack/callback", query_string={"error": "access_denied", "state": state})
    assert cancelled.status_code == 400 and "did not sign you in" in cancelled.get_data(as_text=True)
    assert sign_in(client, "slack", next_path="//evil.example/x").headers["Location"] == "/"
    assert client.get("/signin/github").status_code == 404


def test_members_of_a_workspace_where_the_app_is_installed_read_the_default_collection(make_app, slack):
    from slack_sdk.oauth.installation_store import Installation
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    app = make_app(default_collection=COLLECTION)
    engine = bots.web.runtime_of(app).container.database.engine
    SQLAlchemyInstallationStore(client_id="bot-client", engine=engine).save(Installation(
        app_id="A0APP", team_id="T0INSTALLED", user_id="U0ADMIN", bot_token="xoxb-test", bot_id="B0BOT",
        bot_user_id="U0BOT", bot_scopes=["chat:write"],
    ))
    slack.sign_in_as(team="T0INSTALLED", user="U0BOB", name="Bob")
    client = app.test_client()
    assert sign_in(client, "slack").status_code == 303
    page = client.get("/").get_data(as_text=True)
    client.post("/ask", data={"question": "how do I rotate my API key?", "csrf_token": playground_token(page)})
    assert "Answering from <strong>docs</strong>" in client.get("/").get_data(as_text=True)
