"""Storage pools, volumes and networks of a host, mounted at /hosts/ (app "resources")."""

from django.urls import path

from hosts import views_networks as networks
from hosts import views_storage as storage

app_name = "resources"
POOL = "<int:pk>/storage/<str:pool>"
VOLUME = f"{POOL}/volumes/<str:volume>"
NETWORK = "<int:pk>/networks/<str:name>"

urlpatterns = [
    path("<int:pk>/storage/", storage.pool_list, name="storage"),
    path("<int:pk>/storage/add/", storage.pool_add, name="pool-add"),
    path(f"{POOL}/", storage.pool_detail, name="pool"),
    path(f"{POOL}/action/", storage.pool_action, name="pool-action"),
    path(f"{POOL}/delete/", storage.pool_delete, name="pool-delete"),
    path(f"{POOL}/upload/", storage.volume_upload, name="volume-upload"),
    path(f"{POOL}/volumes/add/", storage.volume_add, name="volume-add"),
    path(f"{VOLUME}/resize/", storage.volume_resize, name="volume-resize"),
    path(f"{VOLUME}/clone/", storage.volume_clone, name="volume-clone"),
    path(f"{VOLUME}/delete/", storage.volume_delete, name="volume-delete"),
    path(f"{VOLUME}/download/", storage.volume_download, name="volume-download"),
    path("<int:pk>/networks/", networks.network_list, name="networks"),
    path("<int:pk>/networks/add/", networks.network_add, name="network-add"),
    path(f"{NETWORK}/", networks.network_detail, name="network"),
    path(f"{NETWORK}/start/", networks.network_start, name="network-start"),
    path(f"{NETWORK}/action/", networks.network_action, name="network-action"),
]
