from django.urls import path

from guests import views

app_name = "guests"
urlpatterns = [
    path("", views.guest_list, name="list"),
    path("rows/", views.guest_rows, name="rows"),
    path("bulk/", views.guest_bulk, name="bulk"),
    path("<uuid:uuid>/", views.guest_detail, name="detail"),
    path("<uuid:uuid>/overview/", views.guest_overview, name="overview"),
    path("<uuid:uuid>/samples/", views.guest_samples, name="samples"),
    path("<uuid:uuid>/action/<slug:name>/", views.guest_action, name="action"),
    path("<uuid:uuid>/delete/", views.guest_delete, name="delete"),
]
