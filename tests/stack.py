"""Start the real VirtDash processes for integration and end-to-end tests.

Each process runs with the test settings (shared file database, Redis DB 9) and logs to
artifacts/logs/<name>.log. Redis and libvirtd are reused when already running (CI may have
left them), otherwise started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("VIRTDASH_ARTIFACTS", REPO / "artifacts"))
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


READY_SECONDS = 60  # start-up of a Django process on a busy 2-core machine


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_for_log(proc: subprocess.Popen, path: Path, offset: int, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as log:
            log.seek(offset)
            if text.encode() in log.read():
                return
        if proc.poll() is not None:
            raise RuntimeError(f"{path.name}: the process exited ({proc.returncode}) before it was ready")
        time.sleep(0.1)
    raise TimeoutError(f"{path.name} did not show {text!r} within {timeout} s")


def ensure_redis() -> None:
    url = urllib.parse.urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"))
    port = url.port or 6379
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
    except OSError:
        pass
    subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                    "--daemonize", "yes"], check=True)
    wait_for_port(port, 10)


def ensure_libvirtd() -> None:
    subprocess.run([str(REPO / "scripts" / "libvirtd-up.sh")], check=True, stdout=subprocess.DEVNULL)


def test_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Stack:
    """The running processes; `url` is the web server's base URL."""

    port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, argv: list[str], *, ready: str | None = None, **env: str) -> subprocess.Popen:
        """Start a process logging to artifacts/logs/<name>.log; with `ready`, wait until its log
        shows that text (the tests' clocks must not include a busy machine's start-up)."""
        log_dir = ARTIFACTS / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"{name}.log"
        offset = path.stat().st_size if path.exists() else 0
        log = open(path, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=REPO, env=test_env(**{**self.env, **env}), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = proc
        if ready is not None:
            _wait_for_log(proc, path, offset, ready, READY_SECONDS)
        return proc

    def start_web(self, workers: int = 2) -> None:
        """Returns once a worker answers: uvicorn's master listens before its workers can serve."""
        proc = self.start("web", [str(VENV_BIN / "uvicorn"), "virtdash.asgi:application", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--workers", str(workers), "--no-access-log"])
        wait_for_port(self.port, READY_SECONDS)
        wait_until(lambda: proc.poll() is not None or _answers(f"{self.url}/healthz"), READY_SECONDS,
                   message="the web server answering /healthz")
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited ({proc.returncode}); see artifacts/logs/web.log")

    def start_worker(self, queues: list[str] | None = None, name: str = "worker") -> None:
        """`queues`: only these Celery queues (`-Q`, e.g. a zone's "zone.z1"); `name`: the process and log name."""
        node = f"test-{self.port}" if name == "worker" else f"test-{self.port}-{name}"
        self.start(name, [str(VENV_BIN / "celery"), "-A", "virtdash", "worker", "--loglevel", "INFO",
                          "--concurrency", "2", "--hostname", f"{node}@%h", "--without-gossip",
                          "--without-mingle", *(["-Q", ",".join(queues)] if queues else [])], ready=" ready.")

    def start_watcher(self) -> None:
        self.start("watcher", [str(VENV_BIN / "python"), "manage.py", "watch", "--sync-seconds", "0.5"],
                   ready="Watcher running.")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is not installed: run VIRTDASH_WITH_TEST_DEBS=1 scripts/install.sh")
    return path


def session_cookie(user) -> str:
    """A logged-in session id for `user` that the live web server accepts (shared database)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def http_get(url: str, session: str, timeout: float = 5) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout} s")


def in_thread(fn):
    """Run fn in a plain thread: Playwright's sync API owns an event loop in the test thread,
    and code that publishes live updates (async_to_sync) must not run inside it."""
    import threading

    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} still running after 60 s")
    if "error" in result:
        raise result["error"]
    return result.get("value")
