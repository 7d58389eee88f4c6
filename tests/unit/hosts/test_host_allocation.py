"""The host page sums what the guests a user may see are allocated, from the inventory alone,
counted as the capacity report counts it."""

import csv
import io

from guests.models import Guest
from hosts.models import Host

GIB_KIB = 2**20


def _host_with_guests():
    host = Host.objects.create(name="h1", uri="test:///default", facts={"cpus": 8, "memory_total": 16 * 2**30})
    # Current memory (what the balloon gives the guest now) differs from the maximum on purpose.
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000001", name="web-1", state="running",
                         vcpus=4, memory_kib=4 * GIB_KIB, max_memory_kib=6 * GIB_KIB)
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000002", name="db-1", state="running",
                         vcpus=8, memory_kib=8 * GIB_KIB, max_memory_kib=8 * GIB_KIB)
    Guest.objects.create(host=host, uuid="00000000-0000-0000-0000-000000000003", name="old-1", state="shutoff",
                         vcpus=2, memory_kib=2 * GIB_KIB, max_memory_kib=4 * GIB_KIB)
    return host


def test_a_viewer_sees_running_and_defined_allocation_against_the_hosts_threads_and_memory(viewer_client):
    host = _host_with_guests()
    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    assert "12 running / 14 defined on 8 threads" in page
    assert "1.50×" in page  # 12 vCPUs on 8 threads
    assert "12.0 GiB running / 14.0 GiB defined of 16.0 GiB" in page  # current memory, not the maximum
    assert page.index("db-1") < page.index("web-1") < page.index("old-1")  # running first, then by name


def test_the_host_page_and_the_capacity_report_give_the_same_allocation(viewer_client):
    host = _host_with_guests()
    page = viewer_client.get(f"/hosts/{host.pk}/").content.decode()
    report = viewer_client.get("/reports/overview.csv", {"host": host.pk})
    row = next(r for r in csv.DictReader(io.StringIO(report.content.decode())) if r["host"] == "h1")
    assert (int(row["vcpus_running"]), int(row["vcpus_all"])) == (12, 14)
    assert int(row["memory_allocated_running_bytes"]) == 12 * 2**30
    assert int(row["memory_allocated_all_bytes"]) == 14 * 2**30
    assert "12 running / 14 defined" in page and "12.0 GiB running / 14.0 GiB defined" in page


def test_the_live_fragment_carries_the_same_figures(viewer_client):
    host = _host_with_guests()
    fragment = viewer_client.get(f"/hosts/{host.pk}/?partial=facts").content.decode()
    assert "12 running / 14 defined" in fragment
