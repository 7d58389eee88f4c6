"""Guest migration URLs, mounted at /guests/ next to guests/urls.py."""

from django.urls import path

from guests import views_migrate as views

app_name = "migrate"
urlpatterns = [
    path("<uuid:uuid>/migrate/", views.migrate, name="form"),
    path("<uuid:uuid>/migrate/status/", views.status, name="status"),
    path("<uuid:uuid>/migrate/<int:job_id>/cancel/", views.cancel, name="cancel"),
]
