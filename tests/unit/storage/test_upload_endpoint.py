"""The raw upload endpoint (hosts.upload_stream) driven as an ASGI app on the test driver: every
refusal is decided without asking for the body, and only POSTs to an upload URL bypass Django."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.core import signals
from django.db import close_old_connections

from core.models import AuditEntry
from hosts.upload_stream import route_uploads

CSRF = "vdtestcsrfsecret0123456789abcdef"


class Exchange:
    """One request through the endpoint; counts how often the body was asked for."""

    def __init__(self, path: str, *, query: str = "name=vdtest-up.iso&format=raw", body: bytes = b"0123456789",
                 session: str | None = None, csrf: str | None = CSRF, content_type: str = "application/octet-stream",
                 length: int | None = None, method: str = "POST"):
        cookies = f"csrftoken={CSRF}" + (f"; sessionid={session}" if session else "")
        headers = [(b"host", b"127.0.0.1"), (b"cookie", cookies.encode()), (b"content-type", content_type.encode())]
        if length is not None or body:
            headers.append((b"content-length", str(len(body) if length is None else length).encode()))
        if csrf:
            headers.append((b"x-csrftoken", csrf.encode()))
        self.scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                      "query_string": query.encode(), "headers": headers, "scheme": "http", "http_version": "1.1",
                      "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "asgi": {"version": "3.0"}}
        self.body, self.reads, self.sent, self.django_called = body, 0, [], False

    async def receive(self):
        self.reads += 1
        if self.reads == 1:
            return {"type": "http.request", "body": self.body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)

    async def django(self, scope, receive, send):
        self.django_called = True

    def run(self) -> Exchange:
        async_to_sync(route_uploads(self.django))(self.scope, self.receive, self.send)
        return self

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def error(self) -> str:
        return json.loads(self.sent[1]["body"])["error"]


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """The endpoint closes stale DB connections after a request, as Django does; inside a test's
    transaction that would close the test's own connection (Django's test client disconnects the
    same receiver around each request)."""
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def upload_url(test_host, pool_name):
    return f"/hosts/{test_host.pk}/storage/{pool_name}/upload/"


def _session(client) -> str:
    return client.cookies["sessionid"].value


@pytest.mark.parametrize("case, options, status, text", [
    ("anonymous", {}, 401, "Log in"),
    ("no CSRF header", {"csrf": None, "session": "admin"}, 403, "CSRF"),
    ("path in the name", {"query": "name=..%2F..%2Fetc%2Fpasswd&format=raw", "session": "admin"}, 400, "Volume name"),
    ("form post", {"content_type": "application/x-www-form-urlencoded", "session": "admin"}, 415, "octet-stream"),
    ("no length", {"body": b"", "session": "admin"}, 411, "Content-Length"),
    ("absurd length", {"length": 2 * 1024**5, "session": "admin"}, 413, "limit"),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_refusals_never_ask_for_the_body(case, options, status, text, upload_url, admin_client, pool_state):
    before = pool_state()
    if options.get("session") == "admin":
        options = {**options, "session": _session(admin_client)}
    exchange = Exchange(upload_url, **options).run()
    assert (exchange.status, exchange.reads) == (status, 0), case
    assert text in exchange.error
    assert (b"connection", b"close") in exchange.sent[0]["headers"]
    assert pool_state() == before


def test_a_viewer_is_refused_before_the_body_and_the_denial_is_audited(upload_url, viewer_client, pool_state):
    exchange = Exchange(upload_url, session=_session(viewer_client)).run()
    assert (exchange.status, exchange.reads) == (403, 0)
    assert AuditEntry.objects.get(action="volume.upload").result == "denied"
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_an_upload_the_driver_cannot_stream_is_refused_and_leaves_nothing(upload_url, admin_client, pool_state):
    exchange = Exchange(upload_url, session=_session(admin_client)).run()
    assert exchange.status == 400 and "not supported" in exchange.error
    assert exchange.reads == 0  # refused while opening the libvirt stream
    entry = AuditEntry.objects.get(action="volume.upload")
    assert entry.result == "failed" and "not supported" in entry.detail
    assert pool_state()[2] == ["vdtest-vol.qcow2"]


def test_everything_else_goes_to_django(upload_url, test_host):
    assert Exchange(upload_url, method="GET").run().django_called
    assert Exchange(upload_url.replace("/upload/", "/action/")).run().django_called
    assert Exchange(f"/hosts/{test_host.pk}/storage/a/b/upload/").run().django_called


def test_the_upload_page_is_served_by_django_and_only_over_get(admin_client, upload_url):
    assert admin_client.get(upload_url).status_code == 200
    assert admin_client.post(upload_url, b"x", content_type="application/octet-stream").status_code == 405
