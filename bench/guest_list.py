"""Guest-list bench: 2,000 test-driver guests on several hosts through the real libvirtd.

Prints (does not assert):
  * reconciliation time per host (one bulk round: listAllDomains ×3 + getAllDomainStats, XML of
    new guests on the first, full resync);
  * guest-list server time p50/p95 for the first page, a filtered page and a sorted page, with
    the libvirt calls made while rendering (expected 0) and the SQL queries per page;
  * watcher CPU seconds per minute with these hosts (`manage.py watch` for --watch-seconds);
  * with --latency: `virsh start`/`destroy` of a real QEMU/TCG guest → row changed in Chromium,
    p50/p95 over --tries runs (needs Redis, libvirtd, Debian's chromium).

Run:  .venv/bin/python bench/guest_list.py [--hosts 4] [--guests 2000] [--latency]
It uses its own database (var/test-bench/) and Redis DB 11; libvirt objects are named vdtest-….
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VIRTDASH_TEST_ID", "bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from virtdash.xml import Domain  # noqa: E402

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def node_file(path: Path, host_index: int, count: int) -> str:
    """A test-driver node file: `count` guests, every third one shut off (test:runstate)."""
    parts = ["<node>"]
    for i in range(count):
        dom = Domain.new(f"vdtest-bench-h{host_index}-{i:04}", 64 + (i % 8) * 64, 1 + i % 4, "test")
        xml = dom.to_string()
        if i % 3 == 0:
            xml = xml.replace("<domain type=\"test\">", f"<domain type=\"test\" xmlns:test=\"{TEST_NS}\">", 1)
            xml = xml.replace("</domain>", "<test:runstate>5</test:runstate></domain>")
        parts.append(xml)
    parts.append("</node>")
    path.write_text("\n".join(parts))
    return f"test+unix://{path}"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def setup(args, workdir: Path):
    from guests.models import Guest, GuestSample
    from hosts.models import Host
    from tests.conftest import make_user

    call_command("migrate", verbosity=0)
    Host.objects.all().delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench-admin").delete()
    admin = make_user("bench-admin", "admin", is_superuser=True)
    per_host = args.guests // args.hosts
    hosts = [Host.objects.create(name=f"bench-{i}", uri=node_file(workdir / f"node-{i}.xml", i, per_host))
             for i in range(args.hosts)]
    print(f"{args.hosts} hosts × {per_host} guests through libvirtd (test+unix node files)")
    from guests import inventory

    for host in hosts:
        first = time.perf_counter()
        read, changes = inventory.resync(host, full=True, capacity=True)
        first = time.perf_counter() - first
        again = []
        for _ in range(5):
            began = time.perf_counter()
            inventory.resync(host, capacity=True)
            again.append(time.perf_counter() - began)
        print(f"  reconcile {host.name}: first (XML of {len(changes.created)} new guests) {first * 1000:.0f} ms; "
              f"periodic p50 {statistics.median(again) * 1000:.0f} ms (libvirt round {read.seconds * 1000:.0f} ms)")
    now = timezone.now()
    guests = list(Guest.objects.filter(state="running").values_list("pk", flat=True))
    samples = [GuestSample(guest_id=g, time=now - timezone.timedelta(minutes=m), cpu_percent=(g * m) % 100,
                           memory_used=2**26, memory=2**27) for g in guests for m in range(0, 30, 2)]
    GuestSample.objects.bulk_create(samples, batch_size=5000)
    print(f"  {Guest.objects.count()} guest rows, {len(samples)} samples for sparklines")
    return admin, hosts


def bench_list(admin, runs: int) -> None:
    from hosts.virt import connections

    calls = []
    real = connections.call
    connections.call = lambda uri, fn, **kw: (calls.append(uri), real(uri, fn, **kw))[1]
    client = Client()
    client.force_login(admin)
    pages = {"first page": "/guests/", "filtered": "/guests/?state=running&q=h1-01",
             "sorted (-memory, page 7)": "/guests/?sort=-memory&page=7"}
    for label, url in pages.items():
        client.get(url)  # warm
        times, queries = [], 0
        before = len(calls)
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - began)
            queries = len(captured)
            assert response.status_code == 200
        p50, p95 = percentile(times, 50) * 1000, percentile(times, 95) * 1000
        print(f"  list {label:26} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
              f"  libvirt calls {len(calls) - before}  SQL queries {queries}")
    connections.call = real


def bench_watcher(seconds: float) -> None:
    proc = subprocess.Popen([sys.executable, "manage.py", "watch"], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)  # connect and first full resync
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    start_cpu, began = cpu(), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu() - start_cpu, time.monotonic() - began
    proc.terminate()
    proc.wait(10)
    print(f"  watcher CPU: {used / elapsed * 60:.1f} s per minute ({used:.1f} s over {elapsed:.0f} s, "
          f"sampling every {os.environ.get('VIRTDASH_SAMPLE_SECONDS', '10')} s)")


def bench_latency(tries: int) -> None:
    import libvirt
    from playwright.sync_api import sync_playwright

    from guests.models import Guest
    from hosts.models import Host
    from tests.conftest import make_user
    from tests.e2e.conftest import CHROMIUM_ARGS, login
    from tests.stack import Stack, chromium_path, ensure_libvirtd, ensure_redis, free_port, wait_until

    ensure_redis()
    ensure_libvirtd()
    Host.objects.create(name="local", uri="qemu:///system")
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench-operator").delete()
    user = make_user("bench-operator", "operator")
    conn = libvirt.open("qemu:///system")
    name = f"vdtest-bench-{os.getpid()}"
    dom = conn.defineXML(Domain.new(name, 64, 1, "qemu").to_string())
    stack = Stack(port=free_port())
    stack.start_watcher()
    stack.start_web()
    try:
        wait_until(lambda: Guest.objects.filter(name=name).exists(), 30, message="guest listed")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page()
            login(page, stack.url, user.username)
            page.goto(f"{stack.url}/guests/?q={name}")
            page.wait_for_selector("#live-status.ok")
            badge = page.locator("[data-field=state]")
            results = {"start": [], "destroy": []}
            for _ in range(tries):
                for action, text in (("start", "Running"), ("destroy", "Shut off")):
                    (dom.create if action == "start" else dom.destroy)()
                    began = time.monotonic()
                    badge.filter(has_text=text).wait_for(timeout=10000)
                    results[action].append(time.monotonic() - began)
            browser.close()
        for action, values in results.items():
            print(f"  virsh {action:7} → row changed in Chromium: p50 {percentile(values, 50) * 1000:.0f} ms  "
                  f"p95 {percentile(values, 95) * 1000:.0f} ms  ({len(values)} tries)")
    finally:
        stack.stop_all()
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--guests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--watch-seconds", type=float, default=30)
    parser.add_argument("--latency", action="store_true", help="also measure virsh → Chromium latency")
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    subprocess.run([str(REPO / "scripts" / "libvirtd-up.sh")], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="vdtest-bench-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        admin, _hosts = setup(args, workdir)
        bench_list(admin, args.runs)
        if args.watch_seconds:
            bench_watcher(args.watch_seconds)
        if args.latency:
            from hosts.models import Host

            Host.objects.filter(name__startswith="bench-").update(enabled=False)
            bench_latency(args.tries)


if __name__ == "__main__":
    main()
