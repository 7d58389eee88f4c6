"""The home page shows a few hosts; its live refresh must re-read the same few, not the whole list."""

from hosts.models import Host


def test_the_home_pages_live_host_table_keeps_its_limit(viewer_client, monkeypatch):
    from core import views

    monkeypatch.setattr(views, "HOME_HOSTS", 2)
    for i in range(3):
        Host.objects.create(name=f"h{i}", uri=f"test:///default?n={i}")
    home = viewer_client.get("/").content.decode()
    assert home.count("data-host-id=") == 2
    assert 'data-live-src="/hosts/?partial=table&amp;limit=2"' in home
    assert viewer_client.get("/hosts/?partial=table&limit=2").content.decode().count("data-host-id=") == 2
    assert viewer_client.get("/hosts/?partial=table").content.decode().count("data-host-id=") == 3
