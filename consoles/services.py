"""Console services: who may open what, console tokens, thumbnails and SPICE connection files.

Views, the proxy and the serial consumer all decide through `mode_allowed`.
"""

from __future__ import annotations

import logging
import time

from consoles import conf, tokens, websockify_plugin
from consoles.targets import Unreachable, resolve
from core import audit, shared_redis
from core.choices import AuditResult
from core.policy import Action, can
from hosts.virt import consoles as virt_consoles
from hosts.virt.errors import GuestNotFound, HostUnreachable, VirtError

log = logging.getLogger(__name__)


class ConsoleUnavailable(Exception):
    """No console now; `reason` is for the user, `code` for the page's logic."""

    def __init__(self, reason: str, code: str, status: int = 409):
        super().__init__(reason)
        self.reason, self.code, self.status = reason, code, status


def mode_allowed(user, guest, mode: str) -> bool:
    if mode == "full":
        return can(user, Action.CONSOLE, guest)
    if mode == "view":
        return can(user, Action.CONSOLE_VIEW, guest)
    return False


def still_allowed(user_id: int, host_id: int, guest_uuid: str, mode: str) -> bool:
    """Re-read user and guest: open consoles end when a permission is revoked or a user disabled."""
    from django.contrib.auth import get_user_model

    from guests.models import Guest

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    guest = Guest.objects.filter(host_id=host_id, uuid=guest_uuid).first()
    return user is not None and guest is not None and mode_allowed(user, guest, mode)


def best_mode(user, guest) -> str | None:
    """The most a user may do on this guest's graphical console: 'full', 'view' or None."""
    if mode_allowed(user, guest, "full"):
        return "full"
    if mode_allowed(user, guest, "view"):
        return "view"
    return None


def live_info(guest) -> virt_consoles.ConsoleInfo:
    """The guest's console facts from libvirt, or ConsoleUnavailable saying why not."""
    try:
        return virt_consoles.console_info(guest.host.uri, guest.uuid)
    except HostUnreachable as exc:
        raise ConsoleUnavailable(f"The host {guest.host.name} is unreachable: {exc.detail or exc}",
                                 "host_unreachable", 503) from None
    except GuestNotFound:
        raise ConsoleUnavailable("The guest no longer exists on its host.", "guest_gone", 404) from None
    except VirtError as exc:
        raise ConsoleUnavailable(f"libvirt refused: {exc}", "libvirt_error", 502) from None


def graphics_problem(info: virt_consoles.ConsoleInfo) -> ConsoleUnavailable | None:
    if not info.displayable:
        return ConsoleUnavailable(f"The guest is not running (it is {info.state}): start it to see its screen.",
                                  "not_running")
    if info.first("vnc") is None:
        if info.first("spice") is not None:
            return ConsoleUnavailable("This guest uses SPICE graphics: download the connection file and open it "
                                      "with remote-viewer.", "spice")
        return ConsoleUnavailable("The guest has no VNC graphics device.", "no_graphics")
    return None


def page_problem(guest) -> ConsoleUnavailable | None:
    """Why the graphical console cannot work right now (for the page), or None."""
    try:
        info = live_info(guest)
    except ConsoleUnavailable as exc:
        return exc
    problem = graphics_problem(info)
    if problem is None:
        try:
            resolve(guest.host.uri, info.first("vnc"))
        except Unreachable as exc:
            problem = ConsoleUnavailable(f"The guest's graphics are unreachable: {exc}", "graphics_unreachable")
    return problem


def issue_vnc_token(user, guest, mode: str) -> dict:
    """Check the policy, resolve the VNC target from the live XML, and return a one-time token."""
    if not mode_allowed(user, guest, mode):
        audit.record(user, "console.vnc", guest, result=AuditResult.DENIED, detail=f"mode {mode}")
        raise ConsoleUnavailable("You may not open this console.", "forbidden", 403)
    try:
        info = live_info(guest)
        problem = graphics_problem(info)
        if problem:
            raise problem
        graphics = info.first("vnc")
        assert graphics is not None
        try:
            target = resolve(guest.host.uri, graphics)
        except Unreachable as exc:
            raise ConsoleUnavailable(str(exc), "graphics_unreachable") from None
    except ConsoleUnavailable as exc:
        audit.record(user, "console.vnc", guest, result=AuditResult.FAILED, detail=exc.reason)
        raise
    grant = tokens.ConsoleGrant(user_id=user.pk, guest_uuid=guest.uuid, host_id=guest.host_id, mode=mode,
                                target=target, password=graphics.passwd or None)
    token = tokens.issue(grant)
    route = websockify_plugin.route(grant)  # the in-process proxy, or the websockify tier when configured
    audit.record(user, "console.vnc", guest, detail=f"mode {mode}, target {target.describe()}, {route['transport']}")
    return {"token": token, "path": f"/websockify/{guest.uuid}", "mode": mode, "ttl": conf.TOKEN_TTL, **route}


# -- thumbnails -------------------------------------------------------------------------------------

def _thumb_keys(guest) -> tuple[str, str]:
    base = f"vd:console:thumb:{guest.host_id}:{guest.uuid}"
    return base, base + ":lock"


def thumbnail(guest) -> bytes | None:
    """A PNG of the guest's screen, at most THUMBNAIL_SECONDS old, taken only when asked for.

    At most one screenshot per guest per THUMBNAIL_SECONDS across all processes (a Redis
    SET NX lock); meanwhile everyone gets the cached image. None: no screen to show.
    """
    client = shared_redis.client()
    key, lock = _thumb_keys(guest)
    if client.set(lock, str(time.time()), nx=True, ex=conf.THUMBNAIL_SECONDS):
        png = _take_screenshot(guest)
        if png is None:
            client.delete(key)
            return None
        client.set(key, png, ex=conf.THUMBNAIL_KEEP_SECONDS)
        return png
    return client.get(key)


def _take_screenshot(guest) -> bytes | None:
    try:
        info = virt_consoles.console_info(guest.host.uri, guest.uuid)
        if not info.displayable or not info.graphics:
            return None
        mime, data = virt_consoles.screenshot(guest.host.uri, guest.uuid)
    except VirtError as exc:
        log.info("no thumbnail for %s: %s", guest.uuid, exc)
        return None
    if mime != "image/png" and not data.startswith(b"\x89PNG"):
        log.info("no thumbnail for %s: QEMU returned %s", guest.uuid, mime)
        return None
    return data


# -- SPICE ----------------------------------------------------------------------------------------

def spice_file(guest, user) -> str:
    """A remote-viewer connection file (.vv) for the guest's SPICE display."""
    info = live_info(guest)
    if not info.displayable:
        raise ConsoleUnavailable(f"The guest is not running (it is {info.state}).", "not_running")
    graphics = info.first("spice")
    if graphics is None:
        raise ConsoleUnavailable("The guest has no SPICE graphics device.", "no_graphics")
    try:
        target = resolve(guest.host.uri, graphics)
    except Unreachable as exc:
        raise ConsoleUnavailable(str(exc), "graphics_unreachable") from None
    lines = ["[virt-viewer]", "type=spice", f"title={_safe(guest.name)} - VirtDash", "delete-this-file=1"]
    if target.via_ssh:
        # remote-viewer cannot tunnel through SSH from a .vv file: name the command that can.
        raise ConsoleUnavailable(
            f"The SPICE display listens on the loopback of {target.ssh_host}: run "
            f"`virt-viewer --connect {guest.host.uri} {guest.name}` on a machine with SSH access to it.",
            "graphics_unreachable")
    lines += [f"host={target.host}", f"port={target.port}"]
    if graphics.tls_port and graphics.tls_port > 0:
        lines.append(f"tls-port={graphics.tls_port}")
    if graphics.passwd:
        lines.append(f"password={_safe(graphics.passwd)}")
    audit.record(user, "console.spice", guest, detail="connection file downloaded")
    return "\n".join(lines) + "\n"


def _safe(text: str) -> str:
    """One line of an INI file: no newlines or control characters."""
    return "".join(ch for ch in text if ch.isprintable())
