"""Live-update fan-out bench: a burst of hints to many browsers' WebSockets at once.

RELIABILITY.md's checklist: "300-event burst to 1,000 clients [no gaps, or an explicit resync]".
Opens --clients authenticated WebSockets to the real web server (uvicorn, 2 workers, Channels on
Redis), subscribes each to "guests", publishes --events hints as fast as `core.live.send_now` can,
then prints (does not assert):
  * how many clients received every hint, and how many saw a gap in the sequence numbers
    (those re-fetch their page: live.js resyncs on a gap, so nothing is silently missed);
  * how many frames that took (hints are merged per topic during a burst);
  * delivery time of the last hint per client, p50/p95/max, from the start of the burst;
  * the web processes' memory before and after.

Run:  .venv/bin/python bench/live_fanout.py [--clients 1000] [--events 300]
It uses its own database (var/test-bench/) and Redis DB 11.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VIRTDASH_TEST_ID", "bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.core.management import call_command  # noqa: E402

from core import live  # noqa: E402
from tests.conftest import make_user  # noqa: E402
from tests.stack import Stack, ensure_redis, free_port, session_cookie  # noqa: E402


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn's workers)."""
    total = 0
    for candidate in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


class Client:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.frames = 0
        self.flagged_gap = False
        self.last_at = 0.0


async def open_client(url: str, origin: str, cookie: str) -> tuple[Client, websockets.ClientConnection]:
    socket = await websockets.connect(url, origin=origin, additional_headers={"Cookie": f"sessionid={cookie}"},
                                      open_timeout=60, max_queue=None)
    await socket.send(json.dumps({"subscribe": ["guests"]}))
    reply = json.loads(await socket.recv())
    assert reply.get("subscribed") == ["guests"], reply
    return Client(), socket


async def listen(client: Client, socket, until: float) -> None:
    while time.monotonic() < until:
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=until - time.monotonic()))
        except (TimeoutError, websockets.ConnectionClosed):
            return
        if message.get("topic") == "guests":  # a merged hint covers first..seq
            client.seqs.extend(range(message.get("first", message["seq"]), message["seq"] + 1))
            client.frames += 1
            client.flagged_gap |= bool(message.get("gap"))
            client.last_at = time.monotonic()


def burst(events: int, spread: float) -> tuple[float, float]:
    started = time.monotonic()
    for i in range(events):
        live.send_now(["guests"], "changed", {"bench": i})
        if spread:
            time.sleep(spread / events)
    return started, time.monotonic()


async def run(args, stack: Stack, cookie: str) -> None:
    url = f"ws://127.0.0.1:{stack.port}/ws/live/"
    opened = time.monotonic()
    pairs = []
    for start in range(0, args.clients, 100):  # in batches: a real crowd does not arrive in one tick
        pairs += await asyncio.gather(*(open_client(url, stack.url, cookie)
                                        for _ in range(start, min(args.clients, start + 100))))
    print(f"{args.clients} sockets open and subscribed in {time.monotonic() - opened:.1f} s")
    web_pid = stack.processes["web"].pid
    before = rss_kib(web_pid)
    listeners = [asyncio.create_task(listen(c, s, time.monotonic() + args.wait)) for c, s in pairs]
    await asyncio.sleep(0.5)
    started, ended = await asyncio.to_thread(burst, args.events, args.spread)
    await asyncio.gather(*listeners)
    after = rss_kib(web_pid)
    for _, socket in pairs:
        await socket.close()
    report(args, [c for c, _ in pairs], started, ended, before, after)


def report(args, clients: list[Client], started: float, ended: float, before: int, after: int) -> None:
    complete = sum(1 for c in clients if len(c.seqs) == args.events)
    gaps = sum(1 for c in clients if c.flagged_gap or any(b != a + 1 for a, b in zip(c.seqs, c.seqs[1:], strict=False))
               or 0 < len(c.seqs) < args.events)
    silent = sum(1 for c in clients if not c.seqs)
    delivered = sorted(c.last_at - started for c in clients if c.seqs)
    p95 = delivered[int(0.95 * (len(delivered) - 1))] if delivered else float("nan")
    print(f"burst: {args.events} hints published in {ended - started:.2f} s "
          f"({args.events / max(ended - started, 1e-9):.0f}/s)")
    print(f"clients with every hint: {complete}/{len(clients)}; with a gap (resync): {gaps}; with none: {silent}")
    if delivered:
        print(f"last hint delivered after p50 {statistics.median(delivered):.2f} s, p95 {p95:.2f} s, "
              f"max {delivered[-1]:.2f} s (from the start of the burst)")
    frames = sum(c.frames for c in clients)
    print(f"hints accounted for in all: {sum(len(c.seqs) for c in clients):,}, in {frames:,} WebSocket frames "
          f"({frames / max(len(clients), 1):.1f} per client; bursts are merged per topic every 250 ms)")
    print(f"web processes RSS: {before / 1024:.0f} MiB before the burst, {after / 1024:.0f} MiB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--spread", type=float, default=0, help="publish the hints evenly over this many seconds")
    parser.add_argument("--wait", type=float, default=30, help="seconds to listen after the burst starts")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 1024)), hard))
    ensure_redis()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench-viewer").first() or make_user("bench-viewer", "viewer")
    stack = Stack(port=free_port())
    stack.start_web()
    try:
        asyncio.run(run(args, stack, session_cookie(user)))
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
