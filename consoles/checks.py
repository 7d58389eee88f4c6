"""Checks shared by the console WebSockets: origin, query string, subprotocol token."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

TOKEN_PROTOCOL_PREFIX = "vd-token."


def headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def request_host(scope) -> str:
    """The host name (no port) the browser addressed, as the reverse proxy forwarded it."""
    hdrs = headers(scope)
    raw = hdrs.get("x-forwarded-host", "").split(",")[0].strip() if settings.USE_X_FORWARDED_HOST else ""
    domain, _port = split_domain_port(raw or hdrs.get("host", ""))
    return domain


def origin_ok(scope) -> bool:
    """Origin present, in ALLOWED_HOSTS, and naming the very host this request was sent to.

    Cross-site WebSocket hijacking (CVE-2015-0259): a cookie-authenticated WebSocket must come
    from our own pages. Ports are not compared: a TLS proxy in front may change them.
    """
    origin = headers(scope).get("origin", "")
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return validate_host(host, settings.ALLOWED_HOSTS) and host == request_host(scope).lower()


def offered_protocols(scope) -> list[str]:
    return [p for p in scope.get("subprotocols", []) if p]


def token_from_protocols(scope) -> str:
    tokens = [p[len(TOKEN_PROTOCOL_PREFIX):] for p in offered_protocols(scope) if p.startswith(TOKEN_PROTOCOL_PREFIX)]
    return tokens[0] if len(tokens) == 1 else ""


def reply_protocol(scope) -> str | None:
    offered = offered_protocols(scope)
    return "binary" if "binary" in offered else None
