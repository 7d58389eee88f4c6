"""The RFB (VNC) pieces the proxy needs: it authenticates to the guest's VNC server itself.

The proxy speaks the security handshake on both sides: towards QEMU with the password from the
domain XML (VNC authentication), towards the browser with security type None. So the user never
types, sees or receives the VNC password, and noVNC needs no credentials. After the handshake
the bytes flow unchanged, except that a view-only session passes only the client messages that
cannot change the guest (pixel format, encodings, update requests, fences); any message this
filter does not know ends the session rather than guessing its length.
"""

from __future__ import annotations

import asyncio
import struct

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

VERSION_38 = b"RFB 003.008\n"
SEC_NONE, SEC_VNC = 1, 2


class RfbError(Exception):
    """The VNC server or client broke the protocol or refused us; the message says why."""


def vnc_response(password: str, challenge: bytes) -> bytes:
    """VNC authentication: DES-encrypt the challenge with the password, bits of each key byte reversed."""
    key = password.encode("latin-1", "replace")[:8].ljust(8, b"\0")
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in key)
    # single DES == TripleDES with three equal keys
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


async def _reason(reader: asyncio.StreamReader) -> str:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return (await reader.readexactly(min(length, 4096))).decode("utf-8", "replace")


async def server_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, password: str | None) -> None:
    """Authenticate to a VNC server (RFB 3.3/3.7/3.8); afterwards it expects ClientInit."""
    version = await reader.readexactly(12)
    if not version.startswith(b"RFB 003.") or not version[8:11].isdigit():
        raise RfbError("the graphics port does not speak VNC")
    minor = int(version[8:11])
    if minor >= 8:
        writer.write(VERSION_38)
    elif minor == 7:
        writer.write(b"RFB 003.007\n")
    else:
        writer.write(b"RFB 003.003\n")
    await writer.drain()
    if minor >= 7:
        (count,) = await reader.readexactly(1)
        if count == 0:
            raise RfbError(f"the VNC server refused the connection: {await _reason(reader)}")
        offered = set(await reader.readexactly(count))
        if password is None and SEC_NONE in offered:
            chosen = SEC_NONE
        elif SEC_VNC in offered and password is not None:
            chosen = SEC_VNC
        elif SEC_NONE in offered:
            chosen = SEC_NONE
        elif SEC_VNC in offered:
            raise RfbError("the VNC server wants a password but the guest's XML has none")
        else:
            raise RfbError(f"the VNC server offers only security types VirtDash does not speak ({sorted(offered)})")
        writer.write(bytes([chosen]))
        await writer.drain()
    else:
        (chosen,) = struct.unpack(">I", await reader.readexactly(4))
        if chosen == 0:
            raise RfbError(f"the VNC server refused the connection: {await _reason(reader)}")
        if chosen not in (SEC_NONE, SEC_VNC) or (chosen == SEC_VNC and password is None):
            raise RfbError(f"the VNC server wants security type {chosen}, which VirtDash cannot answer")
    if chosen == SEC_VNC:
        challenge = await reader.readexactly(16)
        writer.write(vnc_response(password or "", challenge))
        await writer.drain()
    if chosen == SEC_VNC or minor >= 8:
        (result,) = struct.unpack(">I", await reader.readexactly(4))
        if result != 0:
            reason = await _reason(reader) if minor >= 8 else "authentication failed"
            raise RfbError(f"the VNC server refused the password: {reason}")


class ByteQueue:
    """Exact-size reads over WebSocket messages (the browser may split or merge RFB messages)."""

    def __init__(self, next_message):
        self._next = next_message
        self._buffer = bytearray()

    async def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += await self._next()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def drain(self) -> bytes:
        data, self._buffer = bytes(self._buffer), bytearray()
        return data


async def client_handshake(client: ByteQueue, send) -> None:
    """Be the VNC server towards the browser: version 3.8, security None."""
    await send(VERSION_38)
    version = await client.read(12)
    if version not in (VERSION_38, b"RFB 003.007\n"):
        raise RfbError("the browser's VNC client speaks an unsupported RFB version")
    await send(bytes([1, SEC_NONE]))
    if (await client.read(1)) != bytes([SEC_NONE]):
        raise RfbError("the browser's VNC client chose another security type")
    if version == VERSION_38:
        await send(struct.pack(">I", 0))


async def client_refusal(client: ByteQueue, send, reason: str) -> None:
    """Tell the browser why there is no console, the RFB way (noVNC shows it as securityfailure)."""
    await send(VERSION_38)
    try:
        await asyncio.wait_for(client.read(12), 5)
    except (TimeoutError, ConnectionError):
        return
    text = reason.encode("utf-8")[:2000]
    await send(b"\x00" + struct.pack(">I", len(text)) + text)


class ViewOnlyFilter:
    """Passes the client→server messages that cannot change the guest; drops input; refuses the unknown."""

    _FIXED = {0: 20, 3: 10, 4: 8, 5: 6, 150: 10, 250: 4}
    _ALLOWED = {0, 2, 3, 150, 248}

    def __init__(self):
        self._buffer = bytearray()
        self._init_done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        if not self._init_done and self._buffer:
            out.append(1)  # ClientInit: always shared, a viewer never disconnects others
            del self._buffer[:1]
            self._init_done = True
        while self._buffer:
            size = self._size()
            if size is None or len(self._buffer) < size:
                break
            kind = self._buffer[0]
            if kind in self._ALLOWED:
                out += self._buffer[:size]
            del self._buffer[:size]
        if len(self._buffer) > 1 << 20:
            raise RfbError("client message too large")
        return bytes(out)

    def _size(self) -> int | None:
        b = self._buffer
        kind = b[0]
        if kind in self._FIXED:
            return self._FIXED[kind]
        if kind == 2:  # SetEncodings
            return None if len(b) < 4 else 4 + 4 * struct.unpack(">H", b[2:4])[0]
        if kind == 6:  # ClientCutText (negative length: extended clipboard)
            return None if len(b) < 8 else 8 + abs(struct.unpack(">i", b[4:8])[0])
        if kind == 248:  # ClientFence
            return None if len(b) < 9 else 9 + b[8]
        if kind == 251:  # SetDesktopSize
            return None if len(b) < 8 else 8 + 16 * b[6]
        if kind == 255:  # QEMU: extended key event, audio
            if len(b) < 2:
                return None
            if b[1] == 0:
                return 12
            if b[1] == 1:
                return None if len(b) < 4 else (10 if struct.unpack(">H", b[2:4])[0] == 2 else 4)
        raise RfbError(f"view-only session: unknown client message type {kind}")
