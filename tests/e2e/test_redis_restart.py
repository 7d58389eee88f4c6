"""Redis restarts under a running VirtDash: pages keep answering and live updates come back.

Runs its own Redis on a free port (never the shared one) for the web server and the watcher.
"""

import re
import subprocess
import time

import pytest

from hosts.models import Host
from tests.e2e.conftest import login, screenshot
from tests.stack import Stack, free_port, wait_for_port


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 10)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def redis_and_stack(services, transactional_db):
    redis = PrivateRedis()
    redis.start()
    running = Stack(port=free_port(), env={"REDIS_URL": redis.url})
    running.start_worker()
    running.start_watcher()
    running.start_web()
    yield redis, running
    running.stop_all()
    redis.kill()


def test_live_updates_recover_after_a_redis_restart(redis_and_stack, browser, admin_user):
    redis, stack = redis_and_stack
    Host.objects.create(name="demo", uri="test:///default")
    watcher_tab = browser.new_context().new_page()
    editor_tab = browser.new_context().new_page()
    for tab in (watcher_tab, editor_tab):
        login(tab, stack.url, admin_user.username)
    watcher_tab.goto(f"{stack.url}/hosts/")
    watcher_tab.wait_for_selector("#live-status.ok")

    redis.kill()
    time.sleep(1)
    editor_tab.goto(f"{stack.url}/hosts/")  # pages answer without Redis
    assert "demo" in editor_tab.content()
    redis.start()

    # An edit made in another tab after the restart reaches the open list without a reload.
    host = Host.objects.get(name="demo")
    restarted = time.monotonic()
    deadline = restarted + 30
    renamed, attempts = False, 0
    while time.monotonic() < deadline and not renamed:
        attempts += 1
        editor_tab.goto(f"{stack.url}/hosts/{host.pk}/edit/")
        editor_tab.fill("#id_name", "demo-renamed")
        editor_tab.click("button[name=save]")
        editor_tab.wait_for_url(re.compile(r"/hosts/\d+/$"))
        try:
            watcher_tab.locator("a", has_text="demo-renamed").wait_for(timeout=8000)
            renamed = True
        except Exception:
            Host.objects.filter(pk=host.pk).update(name="demo")  # try again with a fresh change
    print(f"live update seen {time.monotonic() - restarted:.1f} s after Redis restarted ({attempts} edit(s))")
    screenshot(watcher_tab, "hosts-after-redis-restart")
    assert renamed, "the open host list never received a live update after Redis restarted"
