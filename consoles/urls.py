from django.urls import path

from consoles import views

app_name = "consoles"
urlpatterns = [
    path("<str:uuid>/vnc/", views.vnc_page, name="vnc"),
    path("<str:uuid>/vnc/token", views.vnc_token, name="vnc_token"),
    path("<str:uuid>/serial/", views.serial_page, name="serial"),
    path("<str:uuid>/thumbnail.png", views.thumbnail, name="thumbnail"),
    path("<str:uuid>/console.vv", views.spice_file, name="spice_file"),
]
