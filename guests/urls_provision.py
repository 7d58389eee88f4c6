"""Provisioning URLs, mounted at /guests/ next to guests/urls.py (issue 5)."""

from django.urls import path

from guests import views_provision as views

app_name = "provision"
urlpatterns = [
    path("new/", views.create, name="create"),
    path("<uuid:uuid>/edit/", views.edit_guest, name="edit"),
    path("<uuid:uuid>/edit/apply/", views.edit_apply, name="edit-apply"),
    path("<uuid:uuid>/edit/<slug:section>/", views.edit_preview, name="edit-preview"),
    path("<uuid:uuid>/xml/", views.raw_xml, name="raw-xml"),
    path("<uuid:uuid>/history/", views.history, name="history"),
    path("<uuid:uuid>/history/<int:version>/rollback/", views.rollback, name="rollback"),
    path("<uuid:uuid>/clone/", views.clone, name="clone"),
    path("<uuid:uuid>/snapshots/", views.snapshot_list, name="snapshots"),
    path("<uuid:uuid>/snapshots/new/", views.snapshot_create, name="snapshot-create"),
    path("<uuid:uuid>/snapshots/action/", views.snapshot_action, name="snapshot-action"),
]
