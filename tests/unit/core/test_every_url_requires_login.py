"""Walk every URL pattern: anonymous requests are sent to the login page (or get 401 on /api/)."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

OPEN = {"accounts/login/", "healthz"}
SAMPLE_VALUES = {"int": "999999", "uuid": "00000000-0000-4000-8000-000000000000", "slug": "x", "str": "x", "path": "x"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str) -> str:
    route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_VALUES.get(m.group(1) or "str", "x"), route)
    return "/" + route.lstrip("^").rstrip("$").replace("\\Z", "")


ROUTES = sorted({_concrete(r) for r in _walk(get_resolver().url_patterns)})


def test_the_walk_finds_the_main_pages():
    assert {"/", "/hosts/", "/hosts/add/", "/guests/", "/jobs/"} <= set(ROUTES)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ROUTES)
def test_anonymous_requests_go_to_login(client, url):
    if url.lstrip("/") in OPEN or url.startswith("/static/"):
        return
    for method in (client.get, client.post):
        response = method(url)
        if url.startswith("/api/"):
            assert response.status_code == 401, url
        else:
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/"), url
