"""`manage.py watch`: the long-running watcher process (see hosts/watcher.py)."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from core.jobs import reap_stale
from hosts.virt.connections import ensure_event_loop
from hosts.watcher import Supervisor

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Watch every enabled host: events, status, facts, inventory."

    def add_arguments(self, parser):
        parser.add_argument("--sync-seconds", type=float, default=2.0, help="How often to look for host changes")

    def handle(self, *args, sync_seconds: float, **options):
        ensure_event_loop()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        supervisor = Supervisor()
        self.stdout.write("Watcher running.")
        ticks = 0
        while not stop.is_set():
            try:
                supervisor.sync()
                if ticks % 15 == 0:
                    reap_stale()
            except Exception:
                log.exception("watcher supervisor iteration failed")
            finally:
                close_old_connections()
            ticks += 1
            stop.wait(sync_seconds)
        supervisor.stop()
