"""The websockify console tier: websockify plugins that serve OUR one-time console tokens.

The in-process proxy (consoles/proxy.py, /websockify/<uuid> inside the web server) stays the
default. This module lets a stock websockify process (Procfile line `console:`, or websockify on
a separate console machine that shares Redis and the database) serve the same tokens:

    websockify --token-plugin consoles.websockify_plugin.TokenPlugin --token-source virtdash \\
               --auth-plugin consoles.websockify_plugin.ExpectOrigin --auth-source "https://dash.example.com" \\
               127.0.0.1:6080

* `TokenPlugin.lookup(token)` consumes the token with the very code the in-process proxy uses
  (`consoles.tokens.consume`: SHA-256 key, atomic GETDEL, record decrypted with a key derived from
  the token) and returns the target bound in it, never anything the client sent. Unknown, expired,
  reused and malformed tokens get None, so websockify refuses the connection.
* It refuses grants the tier cannot serve safely, each with a log line and an audit entry: a
  password-protected display (websockify cannot answer QEMU's VNC password for the user), a
  display behind an SSH tunnel (only the in-process proxy opens tunnels), and view-only grants
  (websockify relays the browser's key and mouse events unfiltered). `route()` makes the token
  endpoint send such grants to the in-process proxy in the first place, so the page never offers
  the tier a token it would refuse.
* websockify looks the token up *before* it runs its auth plugin, so the session's outcome is known
  only there: `ExpectOrigin` here is websockify's own `ExpectOrigin` (same `--auth-source`: the
  site's origins, space-separated; a missing or foreign `Origin` gets HTTP 403) that also writes
  the one audit entry for a looked-up token (accepted, or refused for its Origin). Use it instead
  of websockify's bare `ExpectOrigin`, or accepted sessions go unaudited.

Token transport: websockify 0.13 reads the token only from the `?token=` query (or the Host
header), not from a path segment or a WebSocket subprotocol, so the page connects to
`<VIRTDASH_WEBSOCKIFY_URL>?token=…`. A query can end up in access logs (a reverse proxy's, and
websockify's own "Path:" / "Token not found" lines); that token is dead by then: it is consumed
(GETDEL) when websockify looks it up, before any of those lines is written, it lived ≤ 30 s, and
it is bound to one user, guest, target and mode. The in-process proxy keeps the token out of URLs
altogether (subprotocol), one more reason it is the default.

websockify forks one process per connection; `lookup` and `authenticate` for a connection run one
after the other in that process, which is where the pending grant lives (a thread-local). An
accepted session's process also enforces what the in-process proxy does per session (`_guard`):
the per-user session cap (the same Redis set, so both transports count together), the absolute
time limit, and the policy re-check every few seconds (revoking a permission or disabling the
user closes the console). websockify cannot see traffic from a plugin, so there is no idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from websockify import auth_plugins

log = logging.getLogger("virtdash.consoles.websockify")

ACTION = "console.vnc"
TIER = "websockify tier"

_pending = threading.local()
_listener_pid: int | None = None  # websockify's listening process; sessions run in forked children


def setup_django() -> None:
    """Configure Django once in this process (websockify imports us before anything else)."""
    import django
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "virtdash.settings")
        django.setup()


def refusal(grant) -> str | None:
    """Why the websockify tier must not serve this grant (the in-process proxy can), or None."""
    if grant.mode != "full":
        return "view-only console: websockify cannot filter the browser's input events"
    if grant.password:
        return "the display is password-protected and websockify cannot answer the VNC password"
    if grant.target.via_ssh:
        return f"the display is reached through an SSH tunnel to {grant.target.ssh_host}, which websockify cannot open"
    return None


def route(grant) -> dict:
    """Where the page connects with this grant's token: the websockify tier when it is configured
    and can serve the grant, else the in-process proxy (the caller's default `path`)."""
    from consoles import conf

    if conf.TRANSPORT == "websockify":
        reason = refusal(grant)
        if reason is None:
            return {"transport": "websockify", "url": conf.WEBSOCKIFY_URL}
        return {"transport": "inprocess", "fallback": reason}
    return {"transport": "inprocess"}


def _audit(grant, result: str, detail: str) -> None:
    """One audit entry for a websockify session; never lets a database error escape into websockify."""
    try:
        from django.contrib.auth import get_user_model
        from django.db import close_old_connections

        from core import audit
        from guests.models import Guest

        close_old_connections()
        if grant is None:
            audit.record(None, ACTION, result=result, detail=f"{TIER}: {detail}", target_type="console",
                         target_name=TIER)
            return
        user = get_user_model().objects.filter(pk=grant.user_id).first()
        guest = Guest.objects.filter(host_id=grant.host_id, uuid=grant.guest_uuid).first()
        detail = f"{TIER}: {detail}"
        if guest is not None:
            audit.record(user, ACTION, guest, result=result, detail=detail)
        else:
            audit.record(user, ACTION, result=result, detail=detail, target_type="guest",
                         target_id=grant.guest_uuid[:64], target_name=grant.guest_uuid)
    except Exception as exc:  # the database down: the refusal or session still stands, say so loudly
        log.error("%s: could not write the audit entry (%s: %s): %s: %s", TIER, result, detail,
                  type(exc).__name__, exc)


class TokenPlugin:
    """websockify token plugin (`token_plugins.BasePlugin` interface) over consoles.tokens.

    `--token-source` is unused (any value; websockify requires none): Redis and the database come
    from the Django settings (DJANGO_SETTINGS_MODULE, REDIS_URL, DATABASE_URL).
    """

    def __init__(self, src=None):
        global _listener_pid
        self.source = src
        setup_django()  # settings only: no Redis or database connection is opened here
        _listener_pid = os.getpid()
        log.info("%s: serving VirtDash console tokens", TIER)

    def lookup(self, token):
        from core.choices import AuditResult

        _pending.grant = None
        try:
            grant, detail = self._grant(token)
        except Exception as exc:  # Redis or the database failing: refuse, never proxy unchecked
            why = f"{type(exc).__name__}: {exc}"[:500]
            log.error("%s: refused a console token, the check failed (Redis or the database?): %s", TIER, why)
            _audit(None, AuditResult.FAILED, f"token check failed: {why}")
            return None
        if grant is None or detail:
            log.warning("%s: refused a console token%s: %s", TIER,
                        f" of user {grant.user_id} for guest {grant.guest_uuid}" if grant else "", detail)
            if detail != "malformed token":  # junk from anyone is logged, not written to the database
                _audit(grant, AuditResult.DENIED, detail)
            return None
        _pending.grant = grant
        log.info("%s: token of user %s for guest %s → %s", TIER, grant.user_id, grant.guest_uuid,
                 grant.target.describe())
        return grant.target.host, grant.target.port

    @staticmethod
    def _grant(token):
        from consoles import services, tokens

        if not tokens.looks_like_token(token):
            return None, "malformed token"
        grant = tokens.consume(token)
        if grant is None:
            return None, "unknown, expired or already used console token"
        reason = refusal(grant)
        if reason:
            return grant, f"{reason}; the in-process proxy serves this console"
        from django.db import close_old_connections

        close_old_connections()
        if not services.still_allowed(grant.user_id, grant.host_id, grant.guest_uuid, grant.mode):
            return grant, "permission for this console was withdrawn"
        return grant, ""


class ExpectOrigin(auth_plugins.ExpectOrigin):
    """websockify's ExpectOrigin (same source: allowed origins, space-separated) plus, for the
    session whose token `TokenPlugin` just looked up, its limits (`_guard`) and its audit entry."""

    def authenticate(self, headers, target_host, target_port):
        from core.choices import AuditResult

        grant = getattr(_pending, "grant", None)
        _pending.grant = None
        try:
            super().authenticate(headers, target_host, target_port)
        except auth_plugins.InvalidOriginError as exc:
            log.warning("%s: refused a console for a foreign or missing Origin %r", TIER, exc.actual_origin)
            if grant is not None:
                _audit(grant, AuditResult.DENIED, f"foreign or missing Origin {exc.actual_origin!r}"[:500])
            raise
        if grant is None:
            return
        try:
            _guard(grant)
        except auth_plugins.AuthenticationError as exc:
            log.warning("%s: refused a console of user %s: %s", TIER, grant.user_id, exc.msg)
            _audit(grant, AuditResult.DENIED, exc.msg)
            raise
        age = time.time() - grant.issued if grant.issued else 0
        _audit(grant, AuditResult.OK, f"session opened, mode {grant.mode}, target {grant.target.describe()}, "
                                      f"token used after {age:.1f} s")


def _in_redis(make_call):
    """Run one consoles.sessions coroutine on a fresh event loop and close its Redis client."""
    from consoles import tokens

    async def main():
        try:
            return await make_call()
        finally:
            await tokens.async_client().aclose()

    return asyncio.run(main())


def _guard(grant) -> None:
    """Per-session limits, enforced inside the session's own forked process (see the module doc).

    Raises AuthenticationError (HTTP 403) when the user already has the most sessions open.
    """
    from multiprocessing import util as mp_util

    from consoles import conf, sessions

    if os.getpid() == _listener_pid:  # websockify --run-once: no process of our own to end
        log.warning("%s: session limits need websockify's process per connection (no --run-once)", TIER)
        return
    try:
        session = _in_redis(lambda: sessions.acquire(grant.user_id))
    except Exception as exc:
        raise auth_plugins.AuthenticationError(response_code=403, response_msg="console session check failed",
                                               log_msg=f"session check failed: {exc}") from None
    if session is None:
        raise auth_plugins.AuthenticationError(response_code=403,
                                               response_msg=f"more than {conf.MAX_SESSIONS_PER_USER} "
                                                            "console sessions open")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            _in_redis(lambda: sessions.release(grant.user_id, session))

    mp_util.Finalize(None, release, exitpriority=10)  # runs when the session's process ends normally
    deadline = time.monotonic() + conf.ABSOLUTE_TIMEOUT

    def watch() -> None:
        from django.db import close_old_connections

        from consoles.services import still_allowed

        while True:
            time.sleep(max(0.05, min(conf.RECHECK_SECONDS, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                why = "console session time limit reached"
            else:
                try:
                    close_old_connections()
                    allowed = still_allowed(grant.user_id, grant.host_id, grant.guest_uuid, grant.mode)
                except Exception as exc:  # as in-process: a failing check ends the session
                    allowed, why = False, f"permission re-check failed: {type(exc).__name__}: {exc}"
                else:
                    why = "permission withdrawn"
                if allowed:
                    continue
            log.info("%s: closing the console of user %s on guest %s: %s", TIER, grant.user_id,
                     grant.guest_uuid, why)
            try:
                release()
            finally:
                os._exit(0)  # ends this session's process only: the browser sees the socket close

    threading.Thread(target=watch, name="console-guard", daemon=True).start()
