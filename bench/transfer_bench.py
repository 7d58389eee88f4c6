"""Volume upload/download figures: throughput and the web worker's memory growth.

Starts the real web server (uvicorn, one worker, MALLOC_ARENA_MAX=2 as in the Procfile) against a
vdtest- dir pool in a temp folder on qemu:///system and measures, for a volume of --mib MiB:
  * upload through POST /hosts/<pk>/storage/<pool>/upload/ (the raw streaming endpoint);
  * download through .../volumes/<name>/download/ read as fast as possible;
  * download read slowly (--slow-mib-s MiB/s for --slow-seconds s), then abandoned;
  * the same volume moved by libvirt directly (one stream, no web server) as the reference.
Memory is the worker's peak RSS (VmHWM, reset before each phase) minus its RSS before it.
Printed, not asserted. Run: .venv/bin/python bench/transfer_bench.py [--mib 256]
Only loopback traffic; the pool and its volumes are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VIRTDASH_TEST_ID", "bench-transfer")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
MIB = 1024 * 1024
CSRF = "benchcsrfsecret0123456789abcdefg"
URI = "qemu:///system"


def setup_django():
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


class Worker:
    """The uvicorn worker process: reset and read its peak RSS around a phase."""

    def __init__(self, master: int):
        children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        self.pid = int(children[0]) if children else master

    def start(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.base = kib(self.pid, "VmRSS")

    def growth_mib(self) -> float:
        return max(0, kib(self.pid, "VmHWM") - self.base) / 1024


def upload(port: int, path: str, cookie: str, size: int) -> tuple[float, str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", path)
    for name, value in (("Cookie", f"csrftoken={CSRF}; sessionid={cookie}"), ("X-CSRFToken", CSRF),
                        ("Origin", f"http://127.0.0.1:{port}"), ("Content-Type", "application/octet-stream"),
                        ("Content-Length", str(size))):
        conn.putheader(name, value)
    digest = hashlib.sha256()
    piece = os.urandom(MIB)
    started = time.monotonic()
    conn.endheaders()
    for offset in range(0, size, MIB):
        chunk = piece[: min(MIB, size - offset)]
        digest.update(chunk)
        conn.send(chunk)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.monotonic() - started
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {body[:200]!r}")
    return elapsed, digest.hexdigest(), response.status


def download(port: int, path: str, cookie: str, *, rate: float = 0, seconds: float = 0) -> tuple[float, str, int]:
    """Read the download (all of it, or at `rate` bytes/s for `seconds` s); returns time, sha256, bytes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
    response = conn.getresponse()
    digest, total = hashlib.sha256(), 0
    while chunk := response.read(256 * 1024):
        digest.update(chunk)
        total += len(chunk)
        if rate:
            time.sleep(max(0.0, started + total / rate - time.monotonic()))
            if time.monotonic() - started > seconds:
                break
    elapsed = time.monotonic() - started
    conn.close()
    return elapsed, digest.hexdigest(), total


def direct(pool: str, size: int) -> tuple[float, float]:
    """libvirt alone: one stream up, one stream down (MiB/s each)."""
    import libvirt

    conn = libvirt.open(URI)
    try:
        p = conn.storagePoolLookupByName(pool)
        from virtdash.xml import StorageVolume

        vol = p.createXML(StorageVolume.new("vdtest-direct.img", size, format="raw").to_string(), 0)
        piece = os.urandom(MIB)
        started = time.monotonic()
        stream = conn.newStream(0)
        vol.upload(stream, 0, size, 0)
        for offset in range(0, size, MIB):
            stream.send(piece[: min(MIB, size - offset)])
        stream.finish()
        up = size / MIB / (time.monotonic() - started)
        started = time.monotonic()
        stream = conn.newStream(0)
        vol.download(stream, 0, size, 0)
        while stream.recv(MIB):
            pass
        stream.finish()
        down = size / MIB / (time.monotonic() - started)
        vol.delete(0)
        return up, down
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="volume size in MiB")
    parser.add_argument("--slow-mib-s", type=float, default=10)
    parser.add_argument("--slow-seconds", type=float, default=4)
    args = parser.parse_args()
    size = args.mib * MIB
    setup_django()
    from django.contrib.auth import get_user_model

    from hosts.models import Host
    from hosts.virt import storage
    from tests.conftest import make_user
    from tests.integration.conftest import remove_test_pool
    from tests.stack import VENV_BIN, Stack, ensure_libvirtd, ensure_redis, free_port, session_cookie, wait_for_port

    ensure_redis()
    ensure_libvirtd()
    pool = f"vdtest-bench-{os.getpid()}"
    folder = tempfile.mkdtemp(prefix=f"{pool}-")
    os.chmod(folder, 0o755)
    web = Stack(port=free_port())
    import libvirt

    admin_conn = libvirt.open(URI)
    try:
        storage.define_pool(URI, "dir", pool, target_path=f"{folder}/pool")
        get_user_model().objects.filter(username="bench-admin").delete()
        cookie = session_cookie(make_user("bench-admin", "admin", is_superuser=True))
        host, _ = Host.objects.get_or_create(name="bench-local", uri=URI)
        web.start("web", [str(VENV_BIN / "uvicorn"), "virtdash.asgi:application", "--host", "127.0.0.1",
                          "--port", str(web.port), "--workers", "1", "--no-access-log"], MALLOC_ARENA_MAX="2")
        wait_for_port(web.port, 30)
        base = f"/hosts/{host.pk}/storage/{pool}"
        upload(web.port, f"{base}/upload/?name=vdtest-warm.img&format=raw", cookie, 4 * MIB)  # warm the worker
        download(web.port, f"{base}/volumes/vdtest-warm.img/download/", cookie)
        worker = Worker(web.processes["web"].pid)

        worker.start()
        up_time, up_sha, _ = upload(web.port, f"{base}/upload/?name=vdtest-bench.img&format=raw", cookie, size)
        up_growth = worker.growth_mib()
        worker.start()
        down_time, down_sha, got = download(web.port, f"{base}/volumes/vdtest-bench.img/download/", cookie)
        down_growth = worker.growth_mib()
        worker.start()
        slow_time, _, slow_got = download(web.port, f"{base}/volumes/vdtest-bench.img/download/", cookie,
                                          rate=args.slow_mib_s * MIB, seconds=args.slow_seconds)
        slow_growth = worker.growth_mib()
        direct_up, direct_down = direct(pool, size)
    finally:
        web.stop_all()
        remove_test_pool(admin_conn, pool)
        admin_conn.close()
        shutil.rmtree(folder, ignore_errors=True)
    assert got == size and up_sha == down_sha, "the download differs from the upload"
    print(f"volume of {args.mib} MiB, one uvicorn worker, loopback:")
    print(f"  upload through the web endpoint:   {args.mib / up_time:6.1f} MiB/s, worker peak RSS +{up_growth:.1f} MiB")
    print(f"  download through the web view:     {args.mib / down_time:6.1f} MiB/s, worker peak RSS "
          f"+{down_growth:.1f} MiB (sha256 identical)")
    print(f"  download read at {args.slow_mib_s:g} MiB/s for {slow_time:.1f} s ({slow_got / MIB:.0f} MiB, then "
          f"abandoned): worker peak RSS +{slow_growth:.1f} MiB")
    print(f"  libvirt directly, one stream:      upload {direct_up:.1f} MiB/s, download {direct_down:.1f} MiB/s")


if __name__ == "__main__":
    main()
