"""`manage.py watch`: the long-running watcher process (see hosts/watcher.py, hosts/watch_zones.py)."""

import argparse
import logging
import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from core.jobs import reap_stale
from hosts import zones
from hosts.virt.connections import ensure_event_loop
from hosts.watch_zones import ZoneScope, claim_duty
from hosts.watcher import Supervisor

log = logging.getLogger(__name__)
REAP_ROUNDS = 15  # reap jobs whose worker died every 15 sync rounds, once in the whole deployment


def _zone(value: str) -> str:
    try:
        return zones.parse_cli_zone(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = ("Watch enabled hosts: events, status, facts, inventory. Without --zone: every host except those of "
            "zones another watcher runs with --zone.")

    def add_arguments(self, parser):
        parser.add_argument("--sync-seconds", type=float, default=2.0, help="How often to look for host changes")
        parser.add_argument("--zone", dest="zones", action="append", type=_zone, metavar="ZONE",
                            help="Watch only the hosts of this zone (repeatable; 'default' = hosts without a zone)")

    def handle(self, *args, sync_seconds: float, zones: list[str] | None = None, **options):
        ensure_event_loop()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        scope = ZoneScope(zones, ttl=max(10.0, 5 * sync_seconds))
        supervisor = Supervisor(scope)
        self.stdout.write(f"Watcher running. Watching {scope.describe()}.")
        reap_every = REAP_ROUNDS * sync_seconds
        while not stop.is_set():
            try:
                supervisor.sync()
            except Exception:
                log.exception("watcher supervisor iteration failed")
            try:
                if claim_duty("reap_stale", reap_every, scope.ident):
                    reap_stale()
            except Exception:
                log.exception("reaping stale jobs failed")
            finally:
                close_old_connections()
            stop.wait(sync_seconds)
        supervisor.stop()
