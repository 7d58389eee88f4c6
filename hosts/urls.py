from django.urls import path

from hosts import views, views_ssh_keys

app_name = "hosts"
urlpatterns = [
    path("", views.host_list, name="list"),
    path("add/", views.host_add, name="add"),
    path("<int:pk>/", views.host_detail, name="detail"),
    path("<int:pk>/edit/", views.host_edit, name="edit"),
    path("<int:pk>/remove/", views.host_delete, name="delete"),
    path("<int:pk>/ssh-host-key/", views_ssh_keys.host_key, name="ssh_host_key"),
    path("ssh-host-key/", views_ssh_keys.new_host_key, name="new_ssh_host_key"),
]
