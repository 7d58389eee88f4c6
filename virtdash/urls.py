from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core import views as core_views

handler403 = "core.views.error_403"
handler404 = "core.views.error_404"
handler500 = "core.views.error_500"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("hosts/", include("hosts.urls")),
    path("hosts/", include("hosts.urls_resources")),  # storage pools, volumes, networks
    path("guests/", include("guests.urls")),
    path("guests/", include("guests.urls_provision")),  # create, edit, clone, snapshots, history
    path("guests/", include("guests.urls_migrate")),  # move a guest to another host
    path("consoles/", include("consoles.urls")),
    path("reports/", include("reports.urls")),
    path("", include("core.urls")),
    path("admin/", admin.site.urls),
]
