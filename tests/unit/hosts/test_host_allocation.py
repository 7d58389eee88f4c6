"""The host page sums what the guests a user may see are allocated, from the inventory alone."""

from guests.models import Guest
from hosts.models import Host


def _host_with_guests():
    host = Host.objects.create(name="h1", uri="test:///default", facts={"cpus": 8, "memory_total": 16 * 2**30})
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000001", name="web-1", state="running",
                         vcpus=4, max_memory_kib=4 * 2**20)
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000002", name="db-1", state="running",
                         vcpus=8, max_memory_kib=8 * 2**20)
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000003", name="old-1", state="shutoff",
                         vcpus=2, max_memory_kib=2 * 2**20)
    return host


def test_a_viewer_sees_running_and_defined_allocation_against_the_hosts_threads_and_memory(viewer_client):
    host = _host_with_guests()
    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "12 running / 14 defined on 8 threads" in page
    assert "1.50×" in page  # 12 vCPUs on 8 threads
    assert "12.0 GiB running / 14.0 GiB defined of 16.0 GiB" in page
    assert page.index("db-1") < page.index("web-1") < page.index("old-1")  # running first, then by name


def test_the_live_fragment_carries_the_same_figures(viewer_client):
    host = _host_with_guests()
    fragment = viewer_client.get(f"/hosts/{host.pk}/?partial=facts").content.decode()
    assert "12 running / 14 defined" in fragment
