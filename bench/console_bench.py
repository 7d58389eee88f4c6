"""Console proxy figures: connect time (p50/p95) and throughput vs a direct TCP connection.

Boots one tiny guest (VNC with a password), starts the real web server (uvicorn, the proxy
runs inside it), and measures:
  * connect: POST for a token → WebSocket open → RFB handshake → QEMU's ServerInit, N times;
  * throughput: the same RFB traffic (non-incremental raw framebuffer updates of the whole
    screen) read through /websockify and read directly from QEMU's VNC port.
With a second, password-less guest it also measures the websockify tier (the Procfile's `console:`
line) against the in-process proxy and direct TCP (--no-tier skips it).
Printed, not asserted. Run: .venv/bin/python bench/console_bench.py [--connects 40 --frames 60]
Only loopback traffic; the guest (vdtest-bench-*) is destroyed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VIRTDASH_TEST_ID", "bench-console")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"


def setup_django():
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_update_request(width: int, height: int) -> bytes:
    return bytes([3, 0]) + struct.pack(">HHHH", 0, 0, width, height)


async def read_update(read) -> int:
    """Read one FramebufferUpdate (raw/pseudo rects) from `read(n)`; returns its byte count."""
    header = await read(4)
    while header[0] != 0:  # skip anything else the server sends (bell, cut text are rare here)
        raise RuntimeError(f"unexpected server message {header[0]}")
    (count,) = struct.unpack(">H", header[2:4])
    total = 4
    for _ in range(count):
        rect = await read(12)
        _, _, w, h, enc = struct.unpack(">HHHHi", rect)
        total += 12
        if enc == 0:
            await read(w * h * 4)
            total += w * h * 4
    return total


class WsReader:
    def __init__(self, ws):
        self.ws, self.buffer = ws, bytearray()

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += await self.ws.recv()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


async def _rfb_start(ws):
    """RFB 3.8 with security None up to ServerInit: (reader, width, height)."""
    reader = WsReader(ws)
    assert await reader.read(12) == b"RFB 003.008\n"
    await ws.send(b"RFB 003.008\n")
    await reader.read(2)
    await ws.send(b"\x01")
    await reader.read(4)
    await ws.send(b"\x01")
    init = await reader.read(24)
    await reader.read(struct.unpack(">I", init[20:24])[0])
    width, height = struct.unpack(">HH", init[:4])
    return reader, width, height


async def proxy_session(base: str, port: int, guest_uuid: str, cookie: str):
    from websockets.asyncio.client import connect

    from tests.integration import console_guests as cg

    status, body = await asyncio.to_thread(cg.post_json, base, f"/consoles/{guest_uuid}/vnc/token", cookie,
                                           {"mode": "full"})
    assert status == 200, body
    ws = await connect(f"ws://127.0.0.1:{port}/websockify/{guest_uuid}", origin=base, max_size=None,
                       subprotocols=["binary", f"vd-token.{body['token']}"], additional_headers={"Cookie": cookie})
    return (ws, *await _rfb_start(ws))


async def tier_session(tier_port: int, origin: str, token: str):
    """The same RFB start through the websockify tier (token in ?token=, QEMU offers security None)."""
    from websockets.asyncio.client import connect

    ws = await connect(f"ws://127.0.0.1:{tier_port}/?token={token}", origin=origin, max_size=None,
                       subprotocols=["binary"])
    return (ws, *await _rfb_start(ws))


async def measure_tier(base: str, port: int, guest, user, cookie: str, vnc_port: int, tier_port: int, args):
    """A password-less guest: in-process proxy vs websockify tier vs direct TCP, alternating rounds."""
    from consoles import tokens
    from consoles.targets import Target

    def tier_token() -> str:
        return tokens.issue(tokens.ConsoleGrant(user_id=user.pk, guest_uuid=guest.uuid, host_id=guest.host_id,
                                                mode="full", target=Target("127.0.0.1", vnc_port)))

    connects = []
    for _ in range(args.connects):
        t0 = time.perf_counter()
        ws, _, _, _ = await tier_session(tier_port, base, await asyncio.to_thread(tier_token))
        connects.append((time.perf_counter() - t0) * 1000)
        await ws.close()
    rounds = []
    for _ in range(args.rounds):
        ws, reader, width, height = await proxy_session(base, port, guest.uuid, cookie)
        inprocess = await throughput(ws.send, reader.read, width, height, args.frames)
        await ws.close()
        ws, reader, width, height = await tier_session(tier_port, base, await asyncio.to_thread(tier_token))
        tier = await throughput(ws.send, reader.read, width, height, args.frames)
        await ws.close()
        dreader, dwriter, width, height = await direct_session(vnc_port, None)

        async def dsend(data, writer=dwriter):
            writer.write(data)
            await writer.drain()

        direct = await throughput(dsend, dreader.readexactly, width, height, args.frames)
        dwriter.close()
        rounds.append((inprocess, tier, direct))
    return connects, rounds


async def direct_session(vnc_port: int, password: str | None):
    from consoles import rfb

    reader, writer = await asyncio.open_connection("127.0.0.1", vnc_port, limit=1 << 20)
    await rfb.server_handshake(reader, writer, password)
    writer.write(b"\x01")
    init = await reader.readexactly(24)
    await reader.readexactly(struct.unpack(">I", init[20:24])[0])
    width, height = struct.unpack(">HH", init[:4])
    return reader, writer, width, height


async def throughput(send, read, width: int, height: int, frames: int) -> tuple[float, int]:
    await send(bytes([2, 0]) + struct.pack(">Hi", 1, 0))  # SetEncodings: raw only
    started, total = time.perf_counter(), 0
    for _ in range(frames):
        await send(raw_update_request(width, height))
        total += await read_update(read)
    return time.perf_counter() - started, total


async def measure(base: str, port: int, guest_uuid: str, cookie: str, vnc_port: int, password: str, args):
    connects = []
    for _ in range(args.connects):
        t0 = time.perf_counter()
        ws, _, _, _ = await proxy_session(base, port, guest_uuid, cookie)
        connects.append((time.perf_counter() - t0) * 1000)
        await ws.close()
    direct_connects = []
    for _ in range(args.connects):
        t0 = time.perf_counter()
        _, writer, _, _ = await direct_session(vnc_port, password)
        direct_connects.append((time.perf_counter() - t0) * 1000)
        writer.close()

    rounds = []  # alternate proxy and direct: the machine is shared, its load drifts
    for _ in range(args.rounds):
        ws, reader, width, height = await proxy_session(base, port, guest_uuid, cookie)
        proxy = await throughput(ws.send, reader.read, width, height, args.frames)
        await ws.close()
        dreader, dwriter, width, height = await direct_session(vnc_port, password)

        async def dsend(data, writer=dwriter):
            writer.write(data)
            await writer.drain()

        direct = await throughput(dsend, dreader.readexactly, width, height, args.frames)
        dwriter.close()
        rounds.append((proxy, direct))
    return connects, direct_connects, rounds, (width, height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=40)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tier", action="store_true", help="skip the websockify tier figures")
    args = parser.parse_args()
    setup_django()
    import libvirt

    from consoles.services import live_info
    from tests.conftest import make_user
    from tests.integration import console_guests as cg
    from tests.stack import Stack, ensure_libvirtd, ensure_redis, free_port, wait_for_port

    ensure_redis()
    ensure_libvirtd()
    cg.ensure_tiny_guest()
    conn = libvirt.open("qemu:///system")
    name = f"vdtest-bench-{os.getpid()}"
    web = Stack(port=free_port())
    try:
        dom = cg.define_and_start(conn, name)
        from django.contrib.auth import get_user_model

        get_user_model().objects.filter(username="bench-operator").delete()
        user = make_user("bench-operator", "operator")
        _, (guest,) = cg.inventory_rows("qemu:///system", [dom])
        vnc_port = live_info(guest).first("vnc").port
        web.start_web()
        cookie = cg.session_cookie(user)
        connects, direct_connects, rounds, (w, h) = asyncio.run(
            measure(web.url, web.port, guest.uuid, cookie, vnc_port, cg.VNC_PASSWORD, args))
        tier = None
        if not args.no_tier:  # the websockify tier serves password-less displays only: a second guest
            plain = cg.define_and_start(conn, name + "-plain", password=None)
            _, (plain_guest,) = cg.inventory_rows("qemu:///system", [plain])
            tier_port = free_port()
            command = next(line.partition(":")[2] for line in (REPO / "Procfile").read_text().splitlines()
                           if line.startswith("console:"))
            web.start("websockify", ["/bin/sh", "-c", command], VIRTDASH_WEBSOCKIFY_PORT=str(tier_port),
                      VIRTDASH_PUBLIC_ORIGIN=web.url)
            wait_for_port(tier_port, 30)
            tier = asyncio.run(measure_tier(web.url, web.port, plain_guest, user, cookie,
                                            live_info(plain_guest).first("vnc").port, tier_port, args))
    finally:
        web.stop_all()
        cg.destroy(conn, name)
        cg.destroy(conn, name + "-plain")
        conn.close()
    print(f"console connect through /websockify (token POST + WS + RFB auth to ServerInit), n={len(connects)}: "
          f"p50 {percentile(connects, 50):.1f} ms, p95 {percentile(connects, 95):.1f} ms")
    print(f"direct TCP connect + RFB auth to ServerInit, n={len(direct_connects)}: "
          f"p50 {percentile(direct_connects, 50):.1f} ms, p95 {percentile(direct_connects, 95):.1f} ms")
    for (pt, pb), (dt, db) in rounds:
        proxy_rate, direct_rate = pb / pt / 2**20, db / dt / 2**20
        print(f"throughput, {args.frames} raw full-screen updates of {w}x{h} ({pb / 2**20:.0f} MiB): "
              f"proxy {proxy_rate:.1f} MiB/s, direct {direct_rate:.1f} MiB/s, "
              f"ratio {proxy_rate / direct_rate * 100:.0f} %")
    ratios = [(pb / pt) / (db / dt) for (pt, pb), (dt, db) in rounds]
    print(f"median proxy/direct throughput ratio over {len(rounds)} rounds: {statistics.median(ratios) * 100:.0f} %")
    print(f"(mean connect {statistics.mean(connects):.1f} ms)")
    if tier is not None:
        tier_connects, tier_rounds = tier
        print(f"websockify tier connect (token + WS + RFB to ServerInit, no VNC password), n={len(tier_connects)}: "
              f"p50 {percentile(tier_connects, 50):.1f} ms, p95 {percentile(tier_connects, 95):.1f} ms")
        for (it, ib), (tt, tb), (dt, db) in tier_rounds:
            print(f"password-less guest throughput: in-process {ib / it / 2**20:.1f} MiB/s, "
                  f"websockify {tb / tt / 2**20:.1f} MiB/s, direct {db / dt / 2**20:.1f} MiB/s")
        for label, index in (("in-process", 0), ("websockify tier", 1)):
            ratios = [(r[index][1] / r[index][0]) / (r[2][1] / r[2][0]) for r in tier_rounds]
            print(f"median {label}/direct throughput ratio over {len(ratios)} rounds: "
                  f"{statistics.median(ratios) * 100:.0f} %")


if __name__ == "__main__":
    main()
