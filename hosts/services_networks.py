"""Network operations for pages and the API: every change audited, errors with an operator's message."""

from __future__ import annotations

from collections.abc import Callable

from core import audit, live
from core.choices import AuditResult
from hosts import leases
from hosts.models import Host
from hosts.virt import networks
from hosts.virt.errors import OperationRefused, VirtError


def _target(host: Host, name: str) -> dict:
    return {"target_type": "network", "target_id": str(host.pk), "target_name": f"{host.name}:{name}"}


def _audited(actor, action: str, host: Host, name: str, fn: Callable, detail: str = ""):
    try:
        result = fn()
    except (VirtError, ValueError) as exc:
        audit.record(actor, action, result=AuditResult.FAILED, detail=str(exc), **_target(host, name))
        raise
    audit.record(actor, action, detail=detail, **_target(host, name))
    live.publish([f"host.{host.pk}"], "network", {"name": name})
    return result


def audit_denied(actor, action: str, host: Host, name: str = "-") -> None:
    audit.record(actor, action, result=AuditResult.DENIED, **_target(host, name))


def list_networks(host: Host) -> list[networks.NetworkInfo]:
    return networks.list_networks(host.uri)


def network_with_leases(host: Host, name: str) -> tuple[networks.NetworkInfo, list[networks.Lease]]:
    """For the network page: also marks it as open, so the watcher polls its leases (hosts/leases.py)."""
    shown = networks.get_network(host.uri, name), networks.dhcp_leases(host.uri, name)
    leases.note_viewed(host.pk, name)
    return shown


def create_network(actor, host: Host, *, name: str, mode: str, ipv4: str = "", dhcp: bool = True,
                   bridge: str = "", forward_dev: str = "", autostart: bool = False, dhcp_start: str = "",
                   dhcp_end: str = "") -> networks.NetworkInfo:
    return _audited(actor, "network.create", host, name,
                    lambda: networks.define_network(host.uri, name, mode, ipv4=ipv4, dhcp=dhcp, bridge=bridge,
                                                    forward_dev=forward_dev, autostart=autostart,
                                                    dhcp_start=dhcp_start, dhcp_end=dhcp_end),
                    detail=f"mode={mode} ipv4={ipv4 or '-'} bridge={bridge or '-'}"
                           + (f" dhcp={dhcp_start}-{dhcp_end}" if dhcp_start or dhcp_end else ""))


def start_network(actor, host: Host, name: str, *, confirm_host_address: bool = False) -> str:
    _audited(actor, "network.start", host, name,
             lambda: networks.start_network(host.uri, name, confirm_host_address=confirm_host_address))
    return f"Started network {name}."


NETWORK_ACTIONS: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "stop": ("Stopped network", networks.stop_network),
    "autostart-on": ("Autostart enabled for network",
                     lambda uri, name: networks.set_network_autostart(uri, name, True)),
    "autostart-off": ("Autostart disabled for network",
                      lambda uri, name: networks.set_network_autostart(uri, name, False)),
    "delete": ("Deleted network", networks.delete_network),
}


def network_action(actor, host: Host, name: str, action: str) -> str:
    if action not in NETWORK_ACTIONS:
        error = OperationRefused(f"Unknown network action {action!r}.")
        audit.record(actor, f"network.{action}"[:64], result=AuditResult.FAILED, detail=str(error),
                     **_target(host, name))
        raise error
    verb, fn = NETWORK_ACTIONS[action]
    _audited(actor, f"network.{action}", host, name, lambda: fn(host.uri, name))
    return f"{verb} {name}."
