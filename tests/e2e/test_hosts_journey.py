"""An admin's first minutes in Chromium: log in, see the local host, add a demo and a dead host."""

import re

from hosts import services
from hosts.models import Host
from tests.e2e.conftest import login, screenshot
from tests.stack import in_thread, wait_until


def test_admin_adds_hosts_and_sees_them_live(stack, page, admin_user):
    local = Host.objects.create(name="local", uri="qemu:///system")
    wait_until(lambda: Host.objects.get(pk=local.pk).status == "connected", 20, message="local connected")
    login(page, stack.url, admin_user.username)
    page.goto(f"{stack.url}/hosts/")
    row = page.locator(f"tr[data-host-id='{local.pk}']")
    assert row.locator("[data-status]").inner_text() == "Connected"
    cpus = Host.objects.get(pk=local.pk).facts["cpus"]
    assert row.locator("[data-field=cpus]").inner_text() == str(cpus)

    page.click("text=+ Add host")
    page.fill("#id_name", "demo")
    page.fill("#id_uri", "test:///default")
    page.click("button[name=test]")
    assert "Connected: TEST" in page.locator(".messages").inner_text()
    page.click("button[name=save]")
    page.wait_for_url(re.compile(r"/hosts/\d+/$"))
    assert "1 running / 1" in page.locator("[data-field=guests]").inner_text()

    page.goto(f"{stack.url}/hosts/add/")
    page.fill("#id_name", "nowhere")
    page.fill("#id_uri", "qemu+tcp://127.0.0.1:1/system")
    page.click("button[name=save]")
    page.wait_for_url(re.compile(r"/hosts/\d+/$"))
    assert "Unreachable" in page.locator("#host-facts").inner_text()
    assert "refused" in page.locator("[data-field=last-error]").inner_text().lower()

    page.goto(f"{stack.url}/hosts/")
    page.wait_for_selector("#live-status.ok")
    # A change made elsewhere reaches the open page without a reload (live WebSocket).
    demo = Host.objects.get(name="demo")
    in_thread(lambda: services.record_status(demo, ok=False, error="simulated outage"))
    page.locator("tr", has_text="demo").locator("[data-status=unreachable]").wait_for(timeout=5000)
    screenshot(page, "hosts-list")

    page.goto(f"{stack.url}/hosts/{local.pk}/")
    screenshot(page, "host-detail")


def test_the_dark_theme_and_a_narrow_screen_render(stack, page, viewer_user):
    Host.objects.create(name="local", uri="qemu:///system")
    login(page, stack.url, viewer_user.username)
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto(f"{stack.url}/hosts/")
    assert page.locator("text=+ Add host").count() == 0  # viewers cannot add hosts
    screenshot(page, "hosts-dark-narrow")
