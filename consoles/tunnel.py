"""Open the byte stream to a console target: a direct TCP connection or `ssh -W` to an SSH host.

Why `ssh -W host:port` and not `ssh -N -L`: -W forwards ssh's own stdin/stdout to the target,
so there is no local listening port that any other local process could connect to, no port
to allocate or race for, and the tunnel dies with the session. The argv is a list (no shell);
host keys must already be known (StrictHostKeyChecking=yes), no password prompt (BatchMode),
and the service account's key and known_hosts are used (VIRTDASH_SSH_KEY, VIRTDASH_SSH_KNOWN_HOSTS)
through `-F` with the very ssh_config libvirt's ssh transport uses (hosts/virt/ssh.py), where the
paths are quoted and their '%' escaped (on the command line ssh would split them at spaces and
expand %-tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from consoles import conf
from consoles.targets import Target, valid_address
from hosts.virt import ssh


class TargetUnreachable(Exception):
    pass


@dataclass
class Link:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    process: asyncio.subprocess.Process | None = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()

    async def ssh_error(self) -> str:
        if self.process is None or self.process.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.process.stderr.read(2000), 1)
        except (TimeoutError, OSError):
            return ""
        return data.decode("utf-8", "replace").strip()


def ssh_argv(target: Target) -> list[str]:
    if not (valid_address(target.ssh_host) and valid_address(target.host)):
        raise TargetUnreachable("invalid SSH tunnel address")
    dest = f"[{target.host}]" if ":" in target.host else target.host
    try:
        # conf's key and known_hosts (quoted), then ~/.ssh/config and the system's
        config = ssh.config_path(conf.SSH_KEY, conf.SSH_KNOWN_HOSTS)
    except OSError as exc:
        raise TargetUnreachable(f"cannot write the ssh configuration: {exc}") from None
    argv = ["ssh", "-W", f"{dest}:{int(target.port)}", "-F", str(config), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={conf.CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "PermitLocalCommand=no",
            "-p", str(int(target.ssh_port or 22))]
    if target.ssh_user:
        argv += ["-l", target.ssh_user]
    return [*argv, "--", target.ssh_host]


async def open_link(target: Target) -> Link:
    """Connect to the target named by a token (never by the client)."""
    if target.via_ssh:
        try:
            process = await asyncio.create_subprocess_exec(
                *ssh_argv(target), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise TargetUnreachable(f"cannot run ssh: {exc}") from None
        assert process.stdout is not None and process.stdin is not None
        return Link(process.stdout, process.stdin, process)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, limit=conf.CHUNK), conf.CONNECT_TIMEOUT)
    except (TimeoutError, OSError) as exc:
        raise TargetUnreachable(f"cannot connect to {target.describe()}: {exc or 'timed out'}") from None
    return Link(reader, writer)
