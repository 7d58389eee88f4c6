"""Provisioning URLs, mounted at /guests/ next to guests/urls.py (issue 5)."""

from django.urls import path

from guests import views_provision as views

app_name = "provision"
urlpatterns = [
    path("new/", views.create, name="create"),
    path("<int:pk>/edit/", views.edit_guest, name="edit"),
    path("<int:pk>/edit/apply/", views.edit_apply, name="edit-apply"),
    path("<int:pk>/edit/<slug:section>/", views.edit_preview, name="edit-preview"),
    path("<int:pk>/xml/", views.raw_xml, name="raw-xml"),
    path("<int:pk>/history/", views.history, name="history"),
    path("<int:pk>/history/<int:version>/rollback/", views.rollback, name="rollback"),
    path("<int:pk>/clone/", views.clone, name="clone"),
    path("<int:pk>/snapshots/", views.snapshot_list, name="snapshots"),
    path("<int:pk>/snapshots/new/", views.snapshot_create, name="snapshot-create"),
    path("<int:pk>/snapshots/action/", views.snapshot_action, name="snapshot-action"),
]
